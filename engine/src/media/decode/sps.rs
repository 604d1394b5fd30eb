//! The few H.264 sequence parameter set fields decoding depends on: the picture size after
//! cropping, the features openh264 cannot decode, and the colour signalling that picks the
//! YCbCr→RGB matrix.

use crate::media::inspect::h264::unescape;

/// What an SPS says about the pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sps {
    pub profile_idc: u8,
    pub level_idc: u8,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
    /// False for interlaced (field or MBAFF) coding.
    pub frame_mbs_only: bool,
    pub width: u32,
    pub height: u32,
    pub full_range: bool,
    /// `matrix_coefficients` from the VUI; 2 (unspecified) when absent.
    pub matrix_coefficients: u8,
}

impl Sps {
    /// Why openh264 cannot decode this stream, if it cannot.
    pub fn openh264_limitation(&self) -> Option<String> {
        if self.chroma_format_idc != 1 {
            let name = match self.chroma_format_idc {
                0 => "monochrome",
                2 => "4:2:2",
                _ => "4:4:4",
            };
            return Some(format!("it uses {name} chroma (only 4:2:0 is built in)"));
        }
        if self.bit_depth_luma != 8 || self.bit_depth_chroma != 8 {
            return Some(format!(
                "it has {}-bit samples (only 8-bit is built in)",
                self.bit_depth_luma.max(self.bit_depth_chroma)
            ));
        }
        if !self.frame_mbs_only {
            return Some("it is interlaced (only progressive video is built in)".to_string());
        }
        None
    }
}

/// Parses an SPS NAL unit (header byte included, emulation prevention still in place).
pub(crate) fn parse_sps(nal: &[u8]) -> Result<Sps, String> {
    let Some((&header, body)) = nal.split_first() else {
        return Err("the SPS is empty".to_string());
    };
    if header & 0x80 != 0 || header & 0x1f != 7 {
        return Err(format!("NAL unit type {} is not an SPS", header & 0x1f));
    }
    let rbsp = unescape(body, usize::MAX);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    let _constraints = r.bits(8)?;
    let level_idc = r.bits(8)? as u8;
    let _sps_id = r.ue()?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8;
    let mut bit_depth_chroma = 8;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(format!(
                "chroma_format_idc {chroma_format_idc} is out of range"
            ));
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        bit_depth_luma = 8 + r.ue()?;
        bit_depth_chroma = 8 + r.ue()?;
        if bit_depth_luma > 14 || bit_depth_chroma > 14 {
            return Err("the bit depth is out of range".to_string());
        }
        let _transform_bypass = r.flag()?;
        if r.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num = r.ue()?;
    match r.ue()? {
        0 => {
            let _log2_max_poc_lsb = r.ue()?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.flag()?;
            let _offset_for_non_ref_pic = r.se()?;
            let _offset_for_top_to_bottom_field = r.se()?;
            let cycle = r.ue()?;
            if cycle > 255 {
                return Err("the picture order count cycle is out of range".to_string());
            }
            for _ in 0..cycle {
                let _offset_for_ref_frame = r.se()?;
            }
        }
        2 => {}
        other => return Err(format!("pic_order_cnt_type {other} is out of range")),
    }
    let _max_num_ref_frames = r.ue()?;
    let _gaps_allowed = r.flag()?;
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        let _mbaff = r.flag()?;
    }
    let _direct_8x8_inference = r.flag()?;
    let (crop_left, crop_right, crop_top, crop_bottom) = if r.flag()? {
        (r.ue()?, r.ue()?, r.ue()?, r.ue()?)
    } else {
        (0, 0, 0, 0)
    };

    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let coded_width = width_mbs * 16;
    let coded_height = height_map_units * 16 * field_factor;
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (unit_x, unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let crop_x = unit_x * (u64::from(crop_left) + u64::from(crop_right));
    let crop_y = unit_y * (u64::from(crop_top) + u64::from(crop_bottom));
    if crop_x >= coded_width || crop_y >= coded_height {
        return Err("the cropping window leaves no picture".to_string());
    }
    let width = u32::try_from(coded_width - crop_x).map_err(|_| "the width is too large")?;
    let height = u32::try_from(coded_height - crop_y).map_err(|_| "the height is too large")?;

    // Colour signalling is optional and comes after everything above; a VUI cut short is
    // read as "not signalled" rather than rejecting a stream that decodes fine.
    let (full_range, matrix_coefficients) = read_colour(&mut r).unwrap_or((false, 2));

    Ok(Sps {
        profile_idc,
        level_idc,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        frame_mbs_only,
        width,
        height,
        full_range,
        matrix_coefficients,
    })
}

fn read_colour(r: &mut BitReader<'_>) -> Result<(bool, u8), String> {
    if !r.flag()? {
        return Ok((false, 2));
    }
    if r.flag()? {
        let aspect_ratio_idc = r.bits(8)?;
        if aspect_ratio_idc == 255 {
            let _sar = r.bits(32)?;
        }
    }
    if r.flag()? {
        let _overscan_appropriate = r.flag()?;
    }
    if !r.flag()? {
        return Ok((false, 2));
    }
    let _video_format = r.bits(3)?;
    let full_range = r.flag()?;
    let mut matrix = 2;
    if r.flag()? {
        let _primaries = r.bits(8)?;
        let _transfer = r.bits(8)?;
        matrix = r.bits(8)? as u8;
    }
    Ok((full_range, matrix))
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), String> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(r.se()?);
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn flag(&mut self) -> Result<bool, String> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| "the SPS ends early".to_string())?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    fn bits(&mut self, n: u32) -> Result<u32, String> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | u32::from(self.flag()?);
        }
        Ok(v)
    }

    /// Unsigned Exp-Golomb; values past 32 bits are corrupt for every field read here.
    fn ue(&mut self) -> Result<u32, String> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err("an Exp-Golomb code in the SPS is too long".to_string());
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    fn se(&mut self) -> Result<i32, String> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_libx264_high_profile_sps_with_cropping() {
        // 1920x1080 High profile 4:2:0 8-bit, coded as 1088 lines and cropped, BT.709 limited.
        let sps = [
            0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x5a, 0x80,
            0x80, 0x80, 0xa0, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00, 0x00, 0x06, 0x01, 0xe3, 0x06,
            0x32, 0xc0,
        ];
        let parsed = parse_sps(&sps).expect("parses");
        assert_eq!(parsed.profile_idc, 100);
        assert_eq!((parsed.width, parsed.height), (1920, 1080));
        assert_eq!(parsed.chroma_format_idc, 1);
        assert!(parsed.frame_mbs_only);
        assert_eq!(parsed.openh264_limitation(), None);
        assert_eq!(parsed.matrix_coefficients, 1);
        assert!(!parsed.full_range);
    }

    #[test]
    fn truncated_sps_is_an_error_not_a_panic() {
        let sps = [0x67, 0x64, 0x00, 0x28, 0xac];
        assert!(parse_sps(&sps).is_err());
        assert!(parse_sps(&[]).is_err());
        assert!(parse_sps(&[0x68, 0x00]).is_err());
    }

    #[test]
    fn unescape_drops_emulation_prevention() {
        assert_eq!(
            unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 3], usize::MAX),
            vec![0, 0, 1, 0, 0, 0, 3]
        );
    }
}
