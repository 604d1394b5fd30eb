//! PNG and APNG: the chunk sequence with every CRC checked, IHDR, tRNS, acTL and fcTL. Image
//! data (IDAT, fdAT) is checked only for its CRC, never inflated.

use super::{Budget, Container, Cursor, MediaError, MediaInfo, PNG, malformed, rate};

pub(super) const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// PNG's limit on a chunk length and on each dimension.
const MAX_U31: u32 = 0x7FFF_FFFF;

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// The CRC-32 PNG uses (ISO 3309), over several slices in turn.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for part in parts {
        for &b in *part {
            let i = usize::from((c as u8) ^ b);
            c = CRC_TABLE.get(i).copied().unwrap_or(0) ^ (c >> 8);
        }
    }
    c ^ 0xFFFF_FFFF
}

pub(super) fn inspect(data: &[u8]) -> Result<MediaInfo, MediaError> {
    let mut c = Cursor::new(data, PNG);
    c.skip(SIGNATURE.len(), "the PNG signature")?;
    let mut budget = Budget::new(PNG);
    let mut ihdr: Option<(u32, u32, u8)> = None;
    let mut actl: Option<(u32, u32)> = None;
    let mut fctl_count = 0u64;
    let mut delay_secs = 0.0f64;
    let mut trns = false;
    let mut seen_idat = false;
    let mut seen_iend = false;
    while !c.is_empty() {
        budget.spend()?;
        let offset = c.offset();
        let len = c.be_u32("a chunk length")?;
        let kind = c.array::<4>("a chunk type")?;
        let name = String::from_utf8_lossy(&kind).into_owned();
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(malformed(
                PNG,
                format!("invalid chunk type {kind:02X?} at offset {offset}"),
            ));
        }
        if len > MAX_U31 || len as usize > c.remaining().saturating_sub(4) {
            return Err(malformed(
                PNG,
                format!(
                    "chunk '{name}' at offset {offset} claims {len} bytes but only {} remain",
                    c.remaining().saturating_sub(4)
                ),
            ));
        }
        let mut body = c.sub(len as usize, "a chunk")?;
        let stored = c.be_u32("a chunk CRC")?;
        let computed = crc32(&[&kind, body.rest()]);
        if stored != computed {
            return Err(malformed(
                PNG,
                format!(
                    "chunk '{name}' at offset {offset} has CRC {stored:08X} but its bytes give {computed:08X}"
                ),
            ));
        }
        if ihdr.is_none() && &kind != b"IHDR" {
            return Err(malformed(
                PNG,
                format!("the first chunk is '{name}', not IHDR"),
            ));
        }
        match &kind {
            b"IHDR" => {
                if ihdr.is_some() || len != 13 {
                    return Err(malformed(PNG, format!("a second or {len}-byte IHDR")));
                }
                let width = body.be_u32("the IHDR width")?;
                let height = body.be_u32("the IHDR height")?;
                let depth = body.u8("the IHDR bit depth")?;
                let colour = body.u8("the IHDR colour type")?;
                let valid_depth: &[u8] = match colour {
                    0 => &[1, 2, 4, 8, 16],
                    3 => &[1, 2, 4, 8],
                    2 | 4 | 6 => &[8, 16],
                    _ => &[],
                };
                if !valid_depth.contains(&depth) {
                    return Err(malformed(
                        PNG,
                        format!("colour type {colour} with bit depth {depth} is not valid"),
                    ));
                }
                if width == 0 || height == 0 || width > MAX_U31 || height > MAX_U31 {
                    return Err(malformed(PNG, format!("the image is {width}×{height}")));
                }
                ihdr = Some((width, height, colour));
            }
            b"acTL" => {
                if actl.is_some() || seen_idat || len != 8 {
                    return Err(malformed(
                        PNG,
                        "acTL is repeated, after IDAT or not 8 bytes",
                    ));
                }
                let frames = body.be_u32("the acTL frame count")?;
                let plays = body.be_u32("the acTL play count")?;
                if frames == 0 {
                    return Err(malformed(PNG, "acTL says 0 frames"));
                }
                actl = Some((frames, plays));
            }
            b"fcTL" => {
                if len != 26 {
                    return Err(malformed(PNG, format!("an fcTL of {len} bytes (not 26)")));
                }
                body.skip(4, "the fcTL sequence number")?;
                let w = body.be_u32("the fcTL width")?;
                let h = body.be_u32("the fcTL height")?;
                let x = body.be_u32("the fcTL x offset")?;
                let y = body.be_u32("the fcTL y offset")?;
                let num = body.be_u16("the fcTL delay numerator")?;
                let den = body.be_u16("the fcTL delay denominator")?;
                if let Some((width, height, _)) = ihdr {
                    let fits = |pos: u32, size: u32, total: u32| {
                        size > 0 && pos.checked_add(size).is_some_and(|end| end <= total)
                    };
                    if !fits(x, w, width) || !fits(y, h, height) {
                        return Err(malformed(
                            PNG,
                            format!(
                                "an fcTL frame {w}×{h} at ({x}, {y}) leaves the {width}×{height} canvas"
                            ),
                        ));
                    }
                }
                let den = if den == 0 { 100 } else { den };
                delay_secs += f64::from(num) / f64::from(den);
                fctl_count += 1;
            }
            b"tRNS" => trns = true,
            b"IDAT" => seen_idat = true,
            b"IEND" => {
                seen_iend = true;
                break;
            }
            _ => {}
        }
    }
    let Some((width, height, colour)) = ihdr else {
        return Err(malformed(PNG, "no IHDR chunk"));
    };
    if !seen_idat {
        return Err(malformed(PNG, "no IDAT chunk"));
    }
    if !seen_iend {
        return Err(malformed(PNG, "the file ends without an IEND chunk"));
    }
    let alpha = colour == 4 || colour == 6 || trns;
    let (codec, frames, duration_secs, loops) = match actl {
        Some((frames, plays)) => {
            if u64::from(frames) != fctl_count {
                return Err(malformed(
                    PNG,
                    format!("acTL says {frames} frames but there are {fctl_count} fcTL chunks"),
                ));
            }
            ("apng", frames, delay_secs, Some(plays))
        }
        None => ("png", 1, 0.0, None),
    };
    Ok(MediaInfo {
        container: Container::Png,
        codec: codec.to_string(),
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

    #[test]
    fn crc_matches_the_png_specification() {
        // The CRC of an empty IEND chunk, as every PNG ends.
        assert_eq!(crc32(&[b"IEND"]), 0xAE42_6082);
        assert_eq!(crc32(&[b"IE", b"ND"]), 0xAE42_6082);
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
    }
}
