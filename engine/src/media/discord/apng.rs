//! Writing the planned frames as an APNG, and reading one back to check it.

use std::io::Cursor;

use super::palette::{CLEAR, Palette};
use super::plan::Subframe;
use super::{MAX_SECS, SIDE, WHAT};
use crate::media::MediaError;

/// zlib level 9: about 3% smaller than the default 6 on generated clips, for about 0.1 s more
/// on a 3 s clip (release build).
const DEFLATE_LEVEL: u8 = 9;

fn encoder_error(e: png::EncodingError) -> MediaError {
    MediaError::Encoder {
        codec: "apng",
        message: e.to_string(),
    }
}

/// Encodes `subs` (at `fps` frames per second) with `palette`, looping forever.
pub(super) fn write(subs: &[Subframe], palette: &Palette, fps: u32) -> Result<Vec<u8>, MediaError> {
    let count = u32::try_from(subs.len()).map_err(|_| MediaError::Encoder {
        codec: "apng",
        message: format!("{} frames is too many", subs.len()),
    })?;
    let den = u16::try_from(fps).map_err(|_| MediaError::Encoder {
        codec: "apng",
        message: format!("{fps} fps does not fit a frame delay"),
    })?;
    let bits = bits_for(palette.len);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, SIDE, SIDE);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(match bits {
        1 => png::BitDepth::One,
        2 => png::BitDepth::Two,
        4 => png::BitDepth::Four,
        _ => png::BitDepth::Eight,
    });
    encoder.set_palette(palette.rgb.clone());
    // Only the first entry is transparent; a shorter tRNS leaves the rest opaque.
    encoder.set_trns(vec![0u8]);
    // Filters predict from neighbouring bytes, which means nothing for palette indices.
    encoder.set_filter(png::Filter::NoFilter);
    encoder.set_deflate_compression(png::DeflateCompression::Level(DEFLATE_LEVEL));
    encoder.set_animated(count, 0).map_err(encoder_error)?;
    let mut writer = encoder.write_header().map_err(encoder_error)?;
    for (i, sub) in subs.iter().enumerate() {
        let num = u16::try_from(sub.len).map_err(|_| MediaError::Encoder {
            codec: "apng",
            message: format!("a frame lasting {} frames does not fit a delay", sub.len),
        })?;
        writer.reset_frame_position().map_err(encoder_error)?;
        writer
            .set_frame_dimension(sub.rect.w, sub.rect.h)
            .map_err(encoder_error)?;
        writer
            .set_frame_position(sub.rect.x, sub.rect.y)
            .map_err(encoder_error)?;
        writer.set_frame_delay(num, den).map_err(encoder_error)?;
        writer
            .set_dispose_op(if sub.clear_after {
                png::DisposeOp::Background
            } else {
                png::DisposeOp::None
            })
            .map_err(encoder_error)?;
        // Over lets transparent pixels keep what the canvas shows; the first frame has no
        // canvas to keep.
        writer
            .set_blend_op(if i == 0 {
                png::BlendOp::Source
            } else {
                png::BlendOp::Over
            })
            .map_err(encoder_error)?;
        writer
            .write_image_data(&pack(&sub.data, sub.rect.w as usize, bits))
            .map_err(encoder_error)?;
    }
    writer.finish().map_err(encoder_error)?;
    Ok(out)
}

/// The smallest PNG bit depth that holds `len` palette entries.
fn bits_for(len: usize) -> u8 {
    match len {
        0..=2 => 1,
        3..=4 => 2,
        5..=16 => 4,
        _ => 8,
    }
}

/// Packs rows of indices `bits` to a byte, each row starting on a byte.
fn pack(data: &[u8], width: usize, bits: u8) -> Vec<u8> {
    if bits == 8 {
        return data.to_vec();
    }
    let per_byte = 8 / bits as usize;
    let row_bytes = width.div_ceil(per_byte);
    let mut out = Vec::with_capacity(row_bytes * data.len() / width.max(1));
    for row in data.chunks_exact(width) {
        for group in row.chunks(per_byte) {
            let mut byte = 0u8;
            for (i, &v) in group.iter().enumerate() {
                byte |= v << (8 - bits as usize * (i + 1));
            }
            out.push(byte);
        }
    }
    out
}

fn violation(rule: String) -> MediaError {
    MediaError::Violation { what: WHAT, rule }
}

/// Decodes `bytes` with the png crate and checks what Discord checks: 320×320, animated,
/// looping forever, `frames` frames, at most [`MAX_SECS`] in all.
pub(super) fn check(bytes: &[u8], frames: usize) -> Result<(), MediaError> {
    let undecodable = |e: png::DecodingError| violation(format!("the APNG does not decode: {e}"));
    let mut reader = png::Decoder::new(Cursor::new(bytes))
        .read_info()
        .map_err(undecodable)?;
    let info = reader.info();
    if (info.width, info.height) != (SIDE, SIDE) {
        return Err(violation(format!(
            "the APNG is {}x{}, not {SIDE}x{SIDE}",
            info.width, info.height
        )));
    }
    let Some(actl) = info.animation_control else {
        return Err(violation("the PNG is not animated".to_string()));
    };
    if actl.num_plays != 0 {
        return Err(violation(format!(
            "the APNG plays {} times instead of looping forever",
            actl.num_plays
        )));
    }
    if actl.num_frames as usize != frames {
        return Err(violation(format!(
            "the APNG declares {} frames; {frames} were written",
            actl.num_frames
        )));
    }
    let size = reader.output_buffer_size().ok_or_else(|| {
        violation("the APNG's frame size overflows this machine's memory".to_string())
    })?;
    let mut buf = vec![CLEAR; size];
    let mut secs = 0.0;
    for i in 0..actl.num_frames {
        reader.next_frame(&mut buf).map_err(undecodable)?;
        let Some(fctl) = reader.info().frame_control else {
            return Err(violation(format!("APNG frame {i} has no frame control")));
        };
        let den = if fctl.delay_den == 0 {
            100.0
        } else {
            fctl.delay_den as f64
        };
        secs += fctl.delay_num as f64 / den;
    }
    reader.finish().map_err(undecodable)?;
    if secs > MAX_SECS + 1e-9 {
        return Err(violation(format!(
            "the APNG lasts {secs:.3} s, over {MAX_SECS} s"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_puts_the_first_pixel_in_the_high_bits() {
        assert_eq!(
            pack(&[1, 2, 3, 0, 1, 1], 3, 4),
            vec![0x12, 0x30, 0x01, 0x10]
        );
        assert_eq!(
            pack(&[1, 0, 1, 1, 0, 0, 0, 0, 1], 9, 1),
            vec![0b1011_0000, 0b1000_0000]
        );
        assert_eq!(bits_for(16), 4);
        assert_eq!(bits_for(17), 8);
    }
}
