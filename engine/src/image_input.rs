//! Pictures users send to animate (Telegram photos, Discord attachments): what they must be
//! before any backend sees them. Only the headers are read — nothing is decoded here — so a
//! decompression bomb costs nothing; its declared size is what gets it refused.

use loopsmith_protocol::ImageRef;
use sha2::{Digest, Sha256};

/// fal's storage and Pika take more, but a sticker's source picture needs no more than this,
/// and it bounds what one request can make the store hold.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// Smaller pictures animate into mush.
pub const MIN_SIDE: u32 = 64;
/// Larger ones are refused before anything decodes them (bombs declare huge sizes). The
/// limits are the reliability reference's image policy: 4096 px a side, 16 megapixels.
pub const MAX_SIDE: u32 = 4096;
/// Width × height at most this: 16 megapixels.
pub const MAX_PIXELS: u64 = 16_000_000;
/// Panoramas and slivers do not make stickers.
pub const MAX_ASPECT: f64 = 4.0;

/// A picture that passed [`inspect`], with its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct InputImage {
    pub bytes: Vec<u8>,
    pub info: ImageRef,
}

/// Why a picture cannot be used; `Display` is one sentence for the user.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    #[error("That picture is empty.")]
    Empty,
    #[error(
        "That picture is {mib:.1} MB; I take pictures up to {} MB.",
        MAX_IMAGE_BYTES / (1024 * 1024)
    )]
    TooLarge { mib: f64 },
    #[error("That file is not a picture I can use; send a JPEG, PNG or WebP image.")]
    NotAnImage,
    #[error("That {kind} picture is damaged or cut short; please send it again.")]
    Truncated { kind: &'static str },
    #[error(
        "That picture is {width}×{height}; pictures must be at least {MIN_SIDE} pixels on each side."
    )]
    TooSmall { width: u32, height: u32 },
    #[error(
        "That picture is {width}×{height}; pictures can be at most {MAX_SIDE} pixels on a side and 16 megapixels in all."
    )]
    TooBig { width: u32, height: u32 },
    #[error("That picture is animated; send a still image to animate.")]
    Animated,
    #[error(
        "That picture is {width}×{height}, too long and thin; use one no more than 4 times as wide as it is tall, or the other way round."
    )]
    Aspect { width: u32, height: u32 },
}

/// Checks a picture's type (by its bytes, never its name), size and dimensions.
pub fn inspect(bytes: Vec<u8>) -> Result<InputImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ImageError::TooLarge {
            mib: bytes.len() as f64 / (1024.0 * 1024.0),
        });
    }
    let (mime, (width, height)) = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        if png_is_animated(&bytes) {
            return Err(ImageError::Animated);
        }
        ("image/png", png_size(&bytes)?)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        ("image/jpeg", jpeg_size(&bytes)?)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        // VP8X's flags byte: bit 1 is "animation".
        if bytes.get(12..16) == Some(b"VP8X") && bytes.get(20).is_some_and(|f| f & 0x02 != 0) {
            return Err(ImageError::Animated);
        }
        ("image/webp", webp_size(&bytes)?)
    } else {
        return Err(ImageError::NotAnImage);
    };
    if width < MIN_SIDE || height < MIN_SIDE {
        return Err(ImageError::TooSmall { width, height });
    }
    if width > MAX_SIDE || height > MAX_SIDE || width as u64 * height as u64 > MAX_PIXELS {
        return Err(ImageError::TooBig { width, height });
    }
    let (long, short) = (width.max(height) as f64, width.min(height) as f64);
    if long / short > MAX_ASPECT {
        return Err(ImageError::Aspect { width, height });
    }
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let info = ImageRef {
        sha256,
        mime: mime.to_string(),
        width,
        height,
        bytes: bytes.len() as u64,
    };
    Ok(InputImage { bytes, info })
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as u32)
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(s[0] as u32 | (s[1] as u32) << 8 | (s[2] as u32) << 16)
}

/// IHDR must be the first chunk; and the file must end with IEND, so a cut-off upload is
/// caught here rather than by fal.
fn png_size(b: &[u8]) -> Result<(u32, u32), ImageError> {
    let cut = ImageError::Truncated { kind: "PNG" };
    if b.get(12..16) != Some(b"IHDR") || !b.ends_with(b"IEND\xAE\x42\x60\x82") {
        return Err(cut);
    }
    Ok((be32(b, 16).ok_or(cut.clone())?, be32(b, 20).ok_or(cut)?))
}

/// An APNG declares itself with an `acTL` chunk before the first `IDAT`.
fn png_is_animated(b: &[u8]) -> bool {
    let mut at = 8;
    while let Some(len) = be32(b, at) {
        match b.get(at + 4..at + 8) {
            Some(b"acTL") => return true,
            Some(b"IDAT") | None => return false,
            _ => {}
        }
        at = match at.checked_add(12 + len as usize) {
            Some(next) => next,
            None => return false,
        };
    }
    false
}

/// Walks the marker segments to the first start-of-frame (SOF0–SOF15 but DHT, JPG and DAC),
/// and requires the end-of-image marker.
fn jpeg_size(b: &[u8]) -> Result<(u32, u32), ImageError> {
    let cut = ImageError::Truncated { kind: "JPEG" };
    if !b.ends_with(&[0xFF, 0xD9]) {
        return Err(cut);
    }
    let mut at = 2;
    while at + 4 <= b.len() {
        if b[at] != 0xFF {
            return Err(cut);
        }
        let marker = b[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        let len = be16(b, at + 2).ok_or(cut.clone())? as usize;
        if len < 2 {
            return Err(cut);
        }
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let height = be16(b, at + 5).ok_or(cut.clone())?;
            let width = be16(b, at + 7).ok_or(cut.clone())?;
            return Ok((width, height));
        }
        if marker == 0xDA {
            break; // scan data before any frame header
        }
        at += 2 + len;
    }
    Err(cut)
}

/// VP8 (lossy), VP8L (lossless) or VP8X (extended) — the first chunk says which.
fn webp_size(b: &[u8]) -> Result<(u32, u32), ImageError> {
    let cut = ImageError::Truncated { kind: "WebP" };
    let riff_len = u32::from_le_bytes(b[4..8].try_into().map_err(|_| cut.clone())?) as usize;
    if riff_len + 8 > b.len() {
        return Err(cut);
    }
    let size = match b.get(12..16) {
        Some(b"VP8 ") if b.get(23..26) == Some(&[0x9D, 0x01, 0x2A]) => le16(b, 26)
            .zip(le16(b, 28))
            .map(|(w, h)| (w & 0x3FFF, h & 0x3FFF)),
        Some(b"VP8L") if b.get(20) == Some(&0x2F) => {
            let bits = b
                .get(21..25)
                .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")));
            bits.map(|v| ((v & 0x3FFF) + 1, ((v >> 14) & 0x3FFF) + 1))
        }
        Some(b"VP8X") => le24(b, 24).zip(le24(b, 27)).map(|(w, h)| (w + 1, h + 1)),
        _ => None,
    };
    size.ok_or(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real PNG from the png crate, so the header layout is not our own guess.
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgb);
        let mut w = enc.write_header().expect("header");
        w.write_image_data(&vec![0; (width * height * 3) as usize])
            .expect("data");
        w.finish().expect("finish");
        out
    }

    /// A baseline JPEG header (SOI, APP0, DQT-less SOF0, SOS) with a declared size; enough for
    /// a header reader, which never decodes.
    fn jpeg(width: u16, height: u16) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8];
        b.extend([0xFF, 0xE0, 0x00, 0x10]);
        b.extend(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        b.extend([0xFF, 0xC0, 0x00, 0x11, 0x08]);
        b.extend(height.to_be_bytes());
        b.extend(width.to_be_bytes());
        b.extend([0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        b.extend([0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34]);
        b.extend([0xFF, 0xD9]);
        b
    }

    /// A two-frame APNG from the png crate.
    fn apng() -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 80, 80);
        enc.set_color(png::ColorType::Rgb);
        enc.set_animated(2, 0).expect("animated");
        let mut w = enc.write_header().expect("header");
        for _ in 0..2 {
            w.write_image_data(&[0; 80 * 80 * 3]).expect("frame");
        }
        w.finish().expect("finish");
        out
    }

    fn webp_vp8x(width: u32, height: u32) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
        b.extend(10u32.to_le_bytes());
        b.extend([0, 0, 0, 0]);
        b.extend(&(width - 1).to_le_bytes()[..3]);
        b.extend(&(height - 1).to_le_bytes()[..3]);
        let len = (b.len() - 8) as u32;
        b[4..8].copy_from_slice(&len.to_le_bytes());
        b
    }

    #[test]
    fn reads_each_format_and_hashes_the_bytes() {
        let p = inspect(png(320, 200)).expect("png");
        assert_eq!(
            (p.info.mime.as_str(), p.info.width, p.info.height),
            ("image/png", 320, 200)
        );
        assert_eq!(p.info.sha256.len(), 64);
        assert_eq!(p.info.bytes, p.bytes.len() as u64);
        let j = inspect(jpeg(640, 480)).expect("jpeg");
        assert_eq!(
            (j.info.mime.as_str(), j.info.width, j.info.height),
            ("image/jpeg", 640, 480)
        );
        let w = inspect(webp_vp8x(512, 512)).expect("webp");
        assert_eq!((w.info.width, w.info.height), (512, 512));
        assert_ne!(p.info.sha256, j.info.sha256);
    }

    #[test]
    fn refuses_what_is_not_a_usable_picture() {
        assert_eq!(inspect(Vec::new()), Err(ImageError::Empty));
        assert_eq!(inspect(b"GIF89a....".to_vec()), Err(ImageError::NotAnImage));
        assert_eq!(inspect(b"%PDF-1.7".to_vec()), Err(ImageError::NotAnImage));
        let mut cut = png(100, 100);
        cut.truncate(cut.len() - 5);
        assert_eq!(inspect(cut), Err(ImageError::Truncated { kind: "PNG" }));
        let mut cut = jpeg(100, 100);
        cut.pop();
        assert_eq!(inspect(cut), Err(ImageError::Truncated { kind: "JPEG" }));
        let mut cut = webp_vp8x(100, 100);
        cut.truncate(20);
        assert_eq!(inspect(cut), Err(ImageError::Truncated { kind: "WebP" }));
        assert_eq!(
            inspect(png(32, 100)),
            Err(ImageError::TooSmall {
                width: 32,
                height: 100
            })
        );
        // A bomb: tiny file, huge declared size. Refused without decoding.
        assert_eq!(
            inspect(jpeg(60000, 60000)),
            Err(ImageError::TooBig {
                width: 60000,
                height: 60000
            })
        );
        assert_eq!(
            inspect(jpeg(4000, 4100)),
            Err(ImageError::TooBig {
                width: 4000,
                height: 4100
            })
        );
        // Within each side, over 16 megapixels.
        assert_eq!(
            inspect(jpeg(4096, 4000)),
            Err(ImageError::TooBig {
                width: 4096,
                height: 4000
            })
        );
        let mut animated = webp_vp8x(100, 100);
        animated[20] |= 0x02;
        assert_eq!(inspect(animated), Err(ImageError::Animated));
        assert_eq!(inspect(apng()), Err(ImageError::Animated));
        assert_eq!(
            inspect(png(1000, 200)),
            Err(ImageError::Aspect {
                width: 1000,
                height: 200
            })
        );
        let huge = vec![0xFF; MAX_IMAGE_BYTES + 1];
        assert!(matches!(inspect(huge), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn every_refusal_reads_as_one_sentence() {
        let e = ImageError::TooSmall {
            width: 10,
            height: 20,
        };
        assert_eq!(
            e.to_string(),
            "That picture is 10×20; pictures must be at least 64 pixels on each side."
        );
        assert_eq!(
            ImageError::TooLarge { mib: 12.25 }.to_string(),
            "That picture is 12.2 MB; I take pictures up to 10 MB."
        );
    }
}
