//! An independent, pure-Rust reader of the files loopsmith makes: WebM (Matroska), MP4, PNG/APNG
//! and GIF.
//!
//! [`inspect`] reads only the container structure and the few codec headers that platform rules
//! depend on (codec, profile, chroma subsampling, size, frame count, duration, tracks, alpha,
//! fast start, loops). It never decodes pixels and shares no code with the encoders, so a bug in
//! a muxer cannot hide itself here.
//!
//! Every input is treated as hostile: each read is bounds-checked, every claimed length is
//! checked against what remains, element counts and nesting are capped, and anything that does
//! not add up is a [`MediaError::Malformed`] naming the container and what was wrong.

mod gif;
pub(crate) mod h264;
mod matroska;
mod mp4;
mod png;
mod vp9;

use super::MediaError;

/// The container [`inspect`] recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// Matroska with DocType `webm` (or the general `matroska`, which reads the same way).
    WebM,
    Mp4,
    /// PNG, animated (APNG) or not.
    Png,
    Gif,
}

impl Container {
    /// The name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Container::WebM => WEBM,
            Container::Mp4 => MP4,
            Container::Png => PNG,
            Container::Gif => GIF,
        }
    }
}

/// What a media file says about itself. For video containers everything describes the first
/// video track.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    pub container: Container,
    /// `"vp9"`, `"vp8"`, `"h264"`, `"apng"`, `"png"`, `"gif"`, or what the file names (a Matroska
    /// CodecID or an MP4 sample entry four-character code) when it is something else.
    pub codec: String,
    /// VP9 profile (0..=3) from the first frame header (or the CodecPrivate); VP8 version from
    /// the first frame tag; H.264 `profile_idc` from the avcC (66 baseline, 77 main, 100 high).
    pub profile: Option<u8>,
    /// Whether the video is 4:2:0; `None` when unknown or meaningless (images).
    pub chroma_420: Option<bool>,
    pub width: u32,
    pub height: u32,
    /// Video frames (Matroska blocks, MP4 samples, APNG/GIF images).
    pub frames: u32,
    /// Frames that can be decoded on their own; every frame for images.
    pub keyframes: u32,
    pub duration_secs: f64,
    /// Frames per second: exact when the file states a frame duration, else frames / duration;
    /// 0 when there is no duration.
    pub fps: f64,
    pub audio_tracks: u32,
    pub video_tracks: u32,
    pub alpha: bool,
    /// MP4 only: whether the `moov` box comes before the first `mdat`.
    pub fast_start: Option<bool>,
    /// APNG `num_plays` or the GIF NETSCAPE2.0 loop count (0 = forever); `None` when the file
    /// says nothing (a GIF then plays once).
    pub loops: Option<u32>,
    pub bytes: usize,
}

/// Reads what `bytes` say about themselves, sniffing the container from the first bytes.
pub fn inspect(bytes: &[u8]) -> Result<MediaInfo, MediaError> {
    if bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        matroska::inspect(bytes)
    } else if bytes.get(4..8) == Some(b"ftyp") {
        mp4::inspect(bytes)
    } else if bytes.starts_with(&png::SIGNATURE) {
        png::inspect(bytes)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        gif::inspect(bytes)
    } else if bytes.is_empty() {
        Err(MediaError::Malformed {
            what: "media",
            message: "the file is empty".into(),
        })
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02X}")).collect();
        Err(MediaError::Malformed {
            what: "media",
            message: format!(
                "not WebM, MP4, PNG or GIF (the file starts {})",
                head.join(" ")
            ),
        })
    }
}

const WEBM: &str = "WebM";
const MP4: &str = "MP4";
const PNG: &str = "PNG";
const GIF: &str = "GIF";

/// Upper bound on elements, boxes, chunks or blocks visited in one file, so a file made of
/// millions of tiny elements is refused instead of taking long.
const MAX_ITEMS: usize = 4_000_000;
/// Upper bound on tracks a file may declare.
const MAX_TRACKS: usize = 64;
/// Upper bound on nesting of the containers the parsers descend into.
const MAX_DEPTH: usize = 16;

fn malformed(what: &'static str, message: impl Into<String>) -> MediaError {
    MediaError::Malformed {
        what,
        message: message.into(),
    }
}

/// Counts visited items against [`MAX_ITEMS`].
#[derive(Debug)]
struct Budget {
    what: &'static str,
    left: usize,
}

impl Budget {
    fn new(what: &'static str) -> Budget {
        Budget {
            what,
            left: MAX_ITEMS,
        }
    }

    fn spend(&mut self) -> Result<(), MediaError> {
        match self.left.checked_sub(1) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(malformed(
                self.what,
                format!("more than {MAX_ITEMS} elements; refusing to read further"),
            )),
        }
    }
}

/// A bounds-checked big-endian (or, on request, little-endian) reader over a byte slice.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// Where `data` starts in the file, for messages.
    base: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Cursor<'a> {
        Cursor {
            data,
            pos: 0,
            base: 0,
            what,
        }
    }

    /// The file offset of the next byte.
    fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// A cursor over the next `n` bytes, which this one skips.
    fn sub(&mut self, n: usize, context: &str) -> Result<Cursor<'a>, MediaError> {
        let base = self.offset();
        let data = self.take(n, context)?;
        Ok(Cursor {
            data,
            pos: 0,
            base,
            what: self.what,
        })
    }

    /// The bytes not read yet, without reading them.
    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes; `context` names what was being read for the error.
    fn take(&mut self, n: usize, context: &str) -> Result<&'a [u8], MediaError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len());
        match end.and_then(|end| self.data.get(self.pos..end).map(|s| (s, end))) {
            Some((slice, end)) => {
                self.pos = end;
                Ok(slice)
            }
            None => Err(malformed(
                self.what,
                format!(
                    "{context} needs {n} bytes at offset {} but only {} remain",
                    self.offset(),
                    self.remaining()
                ),
            )),
        }
    }

    fn skip(&mut self, n: usize, context: &str) -> Result<(), MediaError> {
        self.take(n, context).map(|_| ())
    }

    fn array<const N: usize>(&mut self, context: &str) -> Result<[u8; N], MediaError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, context)?);
        Ok(out)
    }

    fn u8(&mut self, context: &str) -> Result<u8, MediaError> {
        let [byte] = self.array::<1>(context)?;
        Ok(byte)
    }

    fn be_u16(&mut self, context: &str) -> Result<u16, MediaError> {
        Ok(u16::from_be_bytes(self.array(context)?))
    }

    fn le_u16(&mut self, context: &str) -> Result<u16, MediaError> {
        Ok(u16::from_le_bytes(self.array(context)?))
    }

    fn be_u32(&mut self, context: &str) -> Result<u32, MediaError> {
        Ok(u32::from_be_bytes(self.array(context)?))
    }

    fn be_u64(&mut self, context: &str) -> Result<u64, MediaError> {
        Ok(u64::from_be_bytes(self.array(context)?))
    }
}

/// An MSB-first bit reader for codec headers. Reading past the end is an error, never a panic.
#[derive(Debug)]
struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> BitReader<'a> {
        BitReader { data, bit: 0 }
    }

    fn bit(&mut self) -> Option<u8> {
        let byte = self.data.get(self.bit / 8)?;
        let value = (byte >> (7 - (self.bit % 8))) & 1;
        self.bit += 1;
        Some(value)
    }

    /// `n` (at most 32) bits as an unsigned number.
    fn bits(&mut self, n: u32) -> Option<u32> {
        if n > 32 {
            return None;
        }
        let mut value: u32 = 0;
        for _ in 0..n {
            value = (value << 1) | u32::from(self.bit()?);
        }
        Some(value)
    }

    fn flag(&mut self) -> Option<bool> {
        self.bit().map(|b| b == 1)
    }

    /// An unsigned exp-Golomb number, `ue(v)` in H.264 (at most 32 bits of value).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        let value = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(value).ok()
    }
}

/// Frames per second from a frame count and a duration; 0 when either is missing.
fn rate(frames: u32, duration_secs: f64) -> f64 {
    if frames > 0 && duration_secs.is_finite() && duration_secs > 0.0 {
        f64::from(frames) / duration_secs
    } else {
        0.0
    }
}

/// Saturating conversion for counts that a hostile file could make larger than `u32`.
fn count_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_refuses_unknown_and_empty_input() {
        for input in [&b""[..], b"hello world", b"\x1A\x45\xDF", b"GIF88a"] {
            match inspect(input) {
                Err(MediaError::Malformed { .. }) => {}
                other => panic!("{input:?} gave {other:?}"),
            }
        }
        let err = inspect(b"RIFF\0\0\0\0WEBP").unwrap_err().to_string();
        assert!(err.contains("52 49 46 46"), "{err}");
    }

    #[test]
    fn cursor_reads_are_bounds_checked() {
        let mut c = Cursor::new(&[1, 2, 3], "test");
        assert_eq!(c.be_u16("a").unwrap(), 0x0102);
        let err = c.be_u32("the field").unwrap_err().to_string();
        assert!(
            err.contains("the field needs 4 bytes at offset 2 but only 1 remain"),
            "{err}"
        );
        // A failed read does not move the cursor.
        assert_eq!(c.u8("b").unwrap(), 3);
        assert!(c.is_empty());
        assert!(c.take(usize::MAX, "huge").is_err());
    }

    #[test]
    fn budget_runs_out() {
        let mut b = Budget::new("test");
        b.left = 2;
        assert!(b.spend().is_ok());
        assert!(b.spend().is_ok());
        assert!(b.spend().is_err());
    }

    #[test]
    fn rate_handles_missing_durations() {
        assert_eq!(rate(10, 1.0), 10.0);
        assert_eq!(rate(10, 0.0), 0.0);
        assert_eq!(rate(0, 1.0), 0.0);
        assert_eq!(rate(10, f64::NAN), 0.0);
    }

    #[test]
    fn bit_reader_reads_bits_and_exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 ... = ue 0, 1, 2, 3, 4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(1));
        assert_eq!(r.ue(), Some(2));
        assert_eq!(r.ue(), Some(3));
        assert_eq!(r.ue(), Some(4));
        assert_eq!(r.bits(8), None);
        // Thirty-two leading zeros is not a number this reader accepts.
        let mut r = BitReader::new(&[0, 0, 0, 0, 0xFF]);
        assert_eq!(r.ue(), None);
        let mut r = BitReader::new(&[0xAB, 0xCD]);
        assert_eq!(r.bits(12), Some(0xABC));
        assert_eq!(r.bits(33), None);
    }
}
