//! GIF87a/89a: header, logical screen and colour tables, extension blocks (Graphic Control for
//! delays and transparency, Application NETSCAPE2.0/ANIMEXTS1.0 for the loop count) and image
//! descriptors. LZW data is skipped sub-block by sub-block, never decoded.

use super::{Budget, Container, Cursor, GIF, MediaError, MediaInfo, malformed, rate};

/// Bytes of a colour table whose packed field is `packed`, if it has one.
fn colour_table_len(packed: u8) -> usize {
    if packed & 0x80 != 0 {
        3 << ((packed & 7) + 1)
    } else {
        0
    }
}

/// Skips data sub-blocks up to and including the zero-length terminator.
fn skip_sub_blocks(c: &mut Cursor<'_>, budget: &mut Budget) -> Result<(), MediaError> {
    loop {
        budget.spend()?;
        let len = c.u8("a data sub-block size")?;
        if len == 0 {
            return Ok(());
        }
        c.skip(usize::from(len), "a data sub-block")?;
    }
}

pub(super) fn inspect(data: &[u8]) -> Result<MediaInfo, MediaError> {
    let mut c = Cursor::new(data, GIF);
    let mut budget = Budget::new(GIF);
    c.skip(6, "the GIF header")?;
    let width = u32::from(c.le_u16("the logical screen width")?);
    let height = u32::from(c.le_u16("the logical screen height")?);
    let packed = c.u8("the logical screen flags")?;
    c.skip(2, "the background colour and aspect ratio")?;
    c.skip(colour_table_len(packed), "the global colour table")?;
    if width == 0 || height == 0 {
        return Err(malformed(
            GIF,
            format!("the logical screen is {width}×{height}"),
        ));
    }
    let mut frames = 0u32;
    let mut delay_hundredths = 0u64;
    let mut alpha = false;
    let mut loops = None;
    loop {
        budget.spend()?;
        let offset = c.offset();
        match c.u8("a block introducer")? {
            0x3B => break, // trailer
            0x21 => {
                let label = c.u8("an extension label")?;
                match label {
                    0xF9 => {
                        let size = c.u8("the graphic control block size")?;
                        if size != 4 {
                            return Err(malformed(
                                GIF,
                                format!(
                                    "a graphic control extension at offset {offset} has block size {size}, not 4"
                                ),
                            ));
                        }
                        let flags = c.u8("the graphic control flags")?;
                        let delay = c.le_u16("the graphic control delay")?;
                        c.skip(1, "the transparent colour index")?;
                        delay_hundredths = delay_hundredths.saturating_add(u64::from(delay));
                        alpha |= flags & 1 != 0;
                        skip_sub_blocks(&mut c, &mut budget)?;
                    }
                    0xFF => {
                        let size = c.u8("the application block size")?;
                        let id = c.take(usize::from(size), "the application identifier")?;
                        if size == 11 && (id == b"NETSCAPE2.0" || id == b"ANIMEXTS1.0") {
                            let mut sub = c.clone();
                            if let [3, 1, lo, hi, ..] =
                                sub.take(4, "a loop sub-block").unwrap_or_default()
                            {
                                loops = Some(u32::from(u16::from_le_bytes([*lo, *hi])));
                            }
                        }
                        skip_sub_blocks(&mut c, &mut budget)?;
                    }
                    _ => skip_sub_blocks(&mut c, &mut budget)?,
                }
            }
            0x2C => {
                c.skip(4, "the image position")?;
                let w = c.le_u16("the image width")?;
                let h = c.le_u16("the image height")?;
                if w == 0 || h == 0 {
                    return Err(malformed(
                        GIF,
                        format!(
                            "image {} at offset {offset} is {w}×{h}",
                            frames.saturating_add(1)
                        ),
                    ));
                }
                let packed = c.u8("the image flags")?;
                c.skip(colour_table_len(packed), "a local colour table")?;
                let min_code = c.u8("the LZW minimum code size")?;
                if !(1..=11).contains(&min_code) {
                    return Err(malformed(
                        GIF,
                        format!(
                            "image {} has LZW minimum code size {min_code}",
                            frames.saturating_add(1)
                        ),
                    ));
                }
                skip_sub_blocks(&mut c, &mut budget)?;
                frames = frames.saturating_add(1);
            }
            other => {
                return Err(malformed(
                    GIF,
                    format!("unknown block introducer 0x{other:02X} at offset {offset}"),
                ));
            }
        }
    }
    if frames == 0 {
        return Err(malformed(GIF, "no image in the file"));
    }
    let duration_secs = delay_hundredths as f64 / 100.0;
    Ok(MediaInfo {
        container: Container::Gif,
        codec: "gif".to_string(),
        profile: None,
        chroma_420: None,
        width,
        height,
        frames,
        keyframes: frames,
        duration_secs,
        fps: rate(frames, duration_secs),
        audio_tracks: 0,
        video_tracks: 1,
        alpha,
        fast_start: None,
        loops,
        bytes: data.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: &[u8] = b"GIF89a\x02\0\x02\0\x80\0\0\0\0\0\xFF\xFF\xFF";
    const IMAGE: &[u8] = b"\x2C\0\0\0\0\x02\0\x02\0\0\x02\x02\x44\x01\0";

    fn gif(blocks: &[&[u8]]) -> Vec<u8> {
        let mut out = SCREEN.to_vec();
        for b in blocks {
            out.extend_from_slice(b);
        }
        out.push(0x3B);
        out
    }

    fn error(bytes: &[u8]) -> String {
        match inspect(bytes) {
            Err(MediaError::Malformed { what, message }) => {
                assert_eq!(what, GIF);
                message
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn reads_frames_delays_transparency_and_loops() {
        let gce = b"\x21\xF9\x04\x01\x0A\0\0\0";
        let plain = b"\x21\xF9\x04\0\x05\0\0\0";
        let animexts = b"\x21\xFF\x0BANIMEXTS1.0\x03\x01\x05\0\0";
        let comment = b"\x21\xFE\x02hi\0";
        let info = inspect(&gif(&[animexts, comment, gce, IMAGE, plain, IMAGE])).unwrap();
        assert_eq!(
            (info.width, info.height, info.frames, info.keyframes),
            (2, 2, 2, 2)
        );
        assert_eq!((info.alpha, info.loops), (true, Some(5)));
        assert!((info.duration_secs - 0.15).abs() < 1e-9);
        let info = inspect(&gif(&[plain, IMAGE])).unwrap();
        assert_eq!((info.alpha, info.loops), (false, None));
    }

    #[test]
    fn refuses_what_does_not_add_up() {
        assert!(error(&gif(&[])).contains("no image"));
        assert!(error(&gif(&[b"\x21\xF9\x03\0\0\0\0", IMAGE])).contains("block size 3"));
        assert!(error(&gif(&[b"\x99"])).contains("block introducer 0x99"));
        let mut bad_lzw = IMAGE.to_vec();
        bad_lzw[10] = 12;
        assert!(error(&gif(&[&bad_lzw])).contains("LZW minimum code size 12"));
        let mut empty = IMAGE.to_vec();
        empty[5] = 0;
        assert!(error(&gif(&[&empty])).contains("0×2"));
        let mut no_trailer = gif(&[IMAGE]);
        no_trailer.pop();
        assert!(error(&no_trailer).contains("block introducer needs 1 bytes"));
    }
}
