//! The few bits of VP9 and VP8 frame headers that platform rules care about: profile,
//! chroma subsampling and (for key frames) the coded size.

use super::BitReader;

/// What a VP9 or VP8 frame header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FrameHeader {
    pub profile: u8,
    /// `None` when the header does not say (a VP9 non-key frame of profile 1 or 3).
    pub chroma_420: Option<bool>,
    /// Coded size, when the frame is a key frame.
    pub size: Option<(u32, u32)>,
}

const VP9_SYNC_CODE: u32 = 0x49_83_42;
const VP9_CS_RGB: u32 = 7;

/// Reads the uncompressed header at the start of a VP9 frame (or the first frame of a
/// superframe). `None` when the bytes are not a VP9 frame header.
pub(super) fn vp9_header(frame: &[u8]) -> Option<FrameHeader> {
    let mut r = BitReader::new(frame);
    if r.bits(2)? != 2 {
        return None; // frame_marker
    }
    let low = r.bits(1)?;
    let high = r.bits(1)?;
    let profile = (high << 1) | low;
    if profile == 3 && r.flag()? {
        return None; // reserved_zero
    }
    let profile = u8::try_from(profile).ok()?;
    // For profiles 0 and 2 the subsampling is fixed at 4:2:0.
    let fixed_420 = (profile == 0 || profile == 2).then_some(true);
    if r.flag()? {
        // show_existing_frame: nothing else in this header.
        return Some(FrameHeader {
            profile,
            chroma_420: fixed_420,
            size: None,
        });
    }
    let key_frame = !r.flag()?; // frame_type 0 = KEY_FRAME
    let _show_frame = r.flag()?;
    let _error_resilient = r.flag()?;
    if !key_frame {
        // Intra-only frames repeat the colour config only for profile > 0; the first frame of
        // a stream is a key frame, so this reader does not follow them.
        return Some(FrameHeader {
            profile,
            chroma_420: fixed_420,
            size: None,
        });
    }
    if r.bits(24)? != VP9_SYNC_CODE {
        return None;
    }
    // color_config()
    if profile >= 2 {
        let _ten_or_twelve_bit = r.flag()?;
    }
    let color_space = r.bits(3)?;
    let chroma_420 = if color_space != VP9_CS_RGB {
        let _color_range = r.flag()?;
        if profile == 1 || profile == 3 {
            let subsampling_x = r.flag()?;
            let subsampling_y = r.flag()?;
            if r.flag()? {
                return None; // reserved_zero
            }
            subsampling_x && subsampling_y
        } else {
            true
        }
    } else {
        // RGB is 4:4:4, only allowed in profiles 1 and 3.
        if profile == 1 || profile == 3 {
            if r.flag()? {
                return None;
            }
        } else {
            return None;
        }
        false
    };
    // frame_size()
    let width = r.bits(16)? + 1;
    let height = r.bits(16)? + 1;
    Some(FrameHeader {
        profile,
        chroma_420: Some(chroma_420),
        size: Some((width, height)),
    })
}

/// Reads a VP8 frame tag (RFC 6386 §9.1): the version counts as the profile; VP8 is always
/// 4:2:0.
pub(super) fn vp8_header(frame: &[u8]) -> Option<FrameHeader> {
    let tag = frame.get(..3)?;
    let (b0, b1, b2) = (tag.first()?, tag.get(1)?, tag.get(2)?);
    let raw = u32::from(*b0) | (u32::from(*b1) << 8) | (u32::from(*b2) << 16);
    let key_frame = raw & 1 == 0;
    let version = u8::try_from((raw >> 1) & 7).ok()?;
    if version > 3 {
        return None;
    }
    let size = if key_frame {
        if frame.get(3..6)? != [0x9D, 0x01, 0x2A] {
            return None;
        }
        let w = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3FFF;
        let h = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3FFF;
        Some((u32::from(w), u32::from(h)))
    } else {
        None
    };
    Some(FrameHeader {
        profile: version,
        chroma_420: Some(true),
        size,
    })
}

/// Reads the WebM VP9 CodecPrivate (a list of `id, length, value` features): profile (1) and
/// chroma subsampling (4).
pub(super) fn vp9_codec_private(data: &[u8]) -> (Option<u8>, Option<bool>) {
    let mut profile = None;
    let mut chroma = None;
    let mut rest = data;
    while let [id, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let Some(value) = tail.get(..len) else { break };
        match (id, value) {
            (1, [p]) if *p <= 3 => profile = Some(*p),
            (4, [c]) => chroma = Some(*c <= 1),
            _ => {}
        }
        rest = tail.get(len..).unwrap_or_default();
    }
    if chroma.is_none() && matches!(profile, Some(0 | 2)) {
        chroma = Some(true);
    }
    (profile, chroma)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs bits, MSB first.
    fn pack(bits: &[(u32, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = 0usize;
        for &(value, width) in bits {
            for i in (0..width).rev() {
                if n.is_multiple_of(8) {
                    out.push(0);
                }
                if (value >> i) & 1 == 1
                    && let Some(last) = out.last_mut()
                {
                    *last |= 0x80 >> (n % 8);
                }
                n += 1;
            }
        }
        out
    }

    fn key_frame(profile: u32, color_space: u32, ss: Option<(u32, u32)>) -> Vec<u8> {
        let mut bits = vec![(2, 2), (profile & 1, 1), (profile >> 1, 1)];
        if profile == 3 {
            bits.push((0, 1));
        }
        bits.extend([(0, 1), (0, 1), (1, 1), (0, 1), (VP9_SYNC_CODE, 24)]);
        if profile >= 2 {
            bits.push((0, 1));
        }
        bits.push((color_space, 3));
        if color_space != VP9_CS_RGB {
            bits.push((0, 1));
            if let Some((x, y)) = ss {
                bits.extend([(x, 1), (y, 1), (0, 1)]);
            }
        } else {
            bits.push((0, 1));
        }
        bits.extend([(63, 16), (35, 16)]);
        pack(&bits)
    }

    #[test]
    fn reads_vp9_profiles_and_subsampling() {
        let h = vp9_header(&key_frame(0, 1, None)).unwrap();
        assert_eq!(
            h,
            FrameHeader {
                profile: 0,
                chroma_420: Some(true),
                size: Some((64, 36))
            }
        );
        let h = vp9_header(&key_frame(1, 1, Some((0, 0)))).unwrap();
        assert_eq!((h.profile, h.chroma_420), (1, Some(false)));
        let h = vp9_header(&key_frame(1, 1, Some((1, 1)))).unwrap();
        assert_eq!((h.profile, h.chroma_420), (1, Some(true)));
        let h = vp9_header(&key_frame(2, 2, None)).unwrap();
        assert_eq!(
            (h.profile, h.chroma_420, h.size),
            (2, Some(true), Some((64, 36)))
        );
        let h = vp9_header(&key_frame(3, 1, Some((1, 0)))).unwrap();
        assert_eq!((h.profile, h.chroma_420), (3, Some(false)));
        let h = vp9_header(&key_frame(1, VP9_CS_RGB, None)).unwrap();
        assert_eq!((h.profile, h.chroma_420), (1, Some(false)));
        // RGB in profile 0 is not allowed.
        assert_eq!(vp9_header(&key_frame(0, VP9_CS_RGB, None)), None);
    }

    #[test]
    fn rejects_what_is_not_a_vp9_header() {
        assert_eq!(vp9_header(&[]), None);
        assert_eq!(vp9_header(&[0x00]), None); // frame_marker 0
        let mut bad_sync = key_frame(0, 1, None);
        if let Some(b) = bad_sync.get_mut(1) {
            *b ^= 0xFF;
        }
        assert_eq!(vp9_header(&bad_sync), None);
        // Every prefix of a valid header is refused or read, never a panic.
        let full = key_frame(3, 1, Some((1, 1)));
        for n in 0..full.len() {
            let _ = vp9_header(&full[..n]);
        }
    }

    #[test]
    fn reads_vp8_key_frames() {
        // Key frame, version 0, shown, first partition size 0; 64×48.
        let frame = [0x10, 0x00, 0x00, 0x9D, 0x01, 0x2A, 64, 0, 48, 0];
        let h = vp8_header(&frame).unwrap();
        assert_eq!(
            (h.profile, h.chroma_420, h.size),
            (0, Some(true), Some((64, 48)))
        );
        assert_eq!(vp8_header(&frame[..5]), None);
        assert_eq!(vp8_header(&[0x10, 0, 0, 1, 2, 3, 0, 0, 0, 0]), None);
    }

    #[test]
    fn reads_vp9_codec_private() {
        assert_eq!(
            vp9_codec_private(&[1, 1, 2, 4, 1, 3]),
            (Some(2), Some(false))
        );
        assert_eq!(vp9_codec_private(&[1, 1, 0]), (Some(0), Some(true)));
        assert_eq!(vp9_codec_private(&[1, 9, 0]), (None, None));
        assert_eq!(vp9_codec_private(&[]), (None, None));
    }
}
