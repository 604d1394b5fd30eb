//! H.264 decoder configuration (`avcC`) and just enough of the first sequence parameter set to
//! learn the chroma format.

use super::{BitReader, Cursor, MediaError, malformed};

/// Profiles whose SPS carries `chroma_format_idc`; all others are 4:2:0.
const CHROMA_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

/// The start of an SPS that is read: the few fields before `chroma_format_idc` fit easily.
const SPS_PREFIX: usize = 64;

/// What an `avcC` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AvcConfig {
    /// `AVCProfileIndication` (66 baseline, 77 main, 100 high…).
    pub profile: u8,
    /// From the first SPS; `None` when the record has no SPS and the profile allows others.
    pub chroma_420: Option<bool>,
}

/// Reads an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1).
pub(super) fn avc_config(data: &[u8], what: &'static str) -> Result<AvcConfig, MediaError> {
    let mut c = Cursor::new(data, what);
    let version = c.u8("the avcC version")?;
    if version != 1 {
        return Err(malformed(
            what,
            format!("avcC configurationVersion is {version}, not 1"),
        ));
    }
    let profile = c.u8("the avcC profile")?;
    c.skip(2, "the avcC compatibility and level")?;
    let _length_size = (c.u8("the avcC NAL length size")? & 3) + 1;
    let sps_count = c.u8("the avcC SPS count")? & 0x1F;
    let chroma_420 = if sps_count == 0 {
        (!CHROMA_PROFILES.contains(&profile)).then_some(true)
    } else {
        let len = usize::from(c.be_u16("the avcC SPS length")?);
        let sps = c.take(len, "the first SPS")?;
        let idc = chroma_format_idc(sps).ok_or_else(|| {
            malformed(
                what,
                format!("the first SPS ({len} bytes) cannot be read up to chroma_format_idc"),
            )
        })?;
        Some(idc == 1)
    };
    Ok(AvcConfig {
        profile,
        chroma_420,
    })
}

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`) from at most `limit` bytes.
/// Removes emulation prevention bytes (the 3 in 00 00 03) from at most `limit` bytes of a NAL
/// unit; shared with the decoder's SPS reader.
pub(crate) fn unescape(nal: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len().min(limit));
    let mut zeros = 0usize;
    for &b in nal.iter().take(limit) {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// `chroma_format_idc` of an SPS NAL unit (header byte included); 1 (4:2:0) when the profile
/// does not carry it. `None` when the bytes are not a readable SPS.
fn chroma_format_idc(nal: &[u8]) -> Option<u32> {
    let (&header, payload) = nal.split_first()?;
    if header & 0x80 != 0 || header & 0x1F != 7 {
        return None;
    }
    let rbsp = unescape(payload, SPS_PREFIX);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = u8::try_from(r.bits(8)?).ok()?;
    let _constraints_and_level = r.bits(16)?;
    let sps_id = r.ue()?;
    if sps_id > 31 {
        return None;
    }
    if !CHROMA_PROFILES.contains(&profile_idc) {
        return Some(1);
    }
    let idc = r.ue()?;
    (idc <= 3).then_some(idc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_emulation_prevention_bytes() {
        assert_eq!(
            unescape(&[0, 0, 3, 1, 0, 0, 3, 0, 3], 64),
            [0, 0, 1, 0, 0, 0, 3]
        );
        assert_eq!(unescape(&[0, 3, 0, 0, 3], 64), [0, 3, 0, 0]);
        assert_eq!(unescape(&[1, 2, 3, 4], 2), [1, 2]);
    }

    #[test]
    fn reads_chroma_format_from_sps() {
        // High (100), level 30, sps_id 0 (`1`), chroma_format_idc 3 (`00100`).
        let high444 = [0x67, 100, 0, 30, 0b1001_0000];
        assert_eq!(chroma_format_idc(&high444), Some(3));
        // chroma_format_idc 1 (`010`).
        assert_eq!(chroma_format_idc(&[0x67, 100, 0, 30, 0b1010_0000]), Some(1));
        // Baseline carries no chroma_format_idc.
        assert_eq!(chroma_format_idc(&[0x67, 66, 0, 30, 0b1000_0000]), Some(1));
        // Not an SPS, or cut short.
        assert_eq!(chroma_format_idc(&[0x68, 100, 0, 30, 0x80]), None);
        assert_eq!(chroma_format_idc(&[0x67, 100, 0]), None);
        assert_eq!(chroma_format_idc(&[]), None);
        // An emulation-prevention byte inside the fixed fields is removed first.
        assert_eq!(
            chroma_format_idc(&[0x67, 100, 0, 0, 3, 0b1010_0000]),
            Some(1)
        );
    }

    #[test]
    fn reads_avc_config() {
        let mut rec = vec![
            1,
            100,
            0,
            30,
            0xFF,
            0xE1,
            0,
            5,
            0x67,
            100,
            0,
            30,
            0b1001_0000,
        ];
        rec.extend([1, 0, 2, 0x68, 0xEE]);
        assert_eq!(
            avc_config(&rec, "MP4").unwrap(),
            AvcConfig {
                profile: 100,
                chroma_420: Some(false)
            }
        );
        let no_sps = [1, 66, 0, 30, 0xFF, 0xE0];
        assert_eq!(avc_config(&no_sps, "MP4").unwrap().chroma_420, Some(true));
        assert!(avc_config(&[2, 66, 0, 30, 0xFF, 0xE0], "MP4").is_err());
        let mut cut = rec.clone();
        cut.truncate(10);
        let err = avc_config(&cut, "MP4").unwrap_err().to_string();
        assert!(err.contains("the first SPS needs 5 bytes"), "{err}");
    }
}
