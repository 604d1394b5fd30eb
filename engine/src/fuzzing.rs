//! The entry points of the engine's cargo-fuzz targets (fuzz/fuzz_targets/), shared with the
//! tests below that replay the committed seeds on stable. Each runs one parser on untrusted
//! bytes exactly as the product does and checks what must hold of its answer. Built only for
//! tests or with the `fuzzing` feature.
//!
//! A panic here is a bug in the code called: a parser's own panic, or an answer that breaks
//! the stated rule.

use crate::image_input::{self, ImageError, InputImage, MAX_PIXELS, MAX_SIDE, MIN_SIDE};
use crate::media::MediaError;
use crate::media::decode::{self, DecodeLimits, Mp4Info};
use crate::media::inspect::{self, MediaInfo};

/// A picture a user sent to animate (`image_input`): an accepted one is within the size rules
/// and is handed on byte for byte.
pub fn image_input(data: &[u8]) -> Result<InputImage, ImageError> {
    let result = image_input::inspect(data.to_vec());
    if let Ok(image) = &result {
        let (w, h) = (image.info.width, image.info.height);
        assert!(
            (MIN_SIDE..=MAX_SIDE).contains(&w) && (MIN_SIDE..=MAX_SIDE).contains(&h),
            "accepted {w}x{h}"
        );
        assert!(
            u64::from(w) * u64::from(h) <= MAX_PIXELS,
            "accepted {w}x{h}"
        );
        assert_eq!(image.bytes, data, "the accepted bytes changed");
        assert_eq!(image.info.bytes, data.len() as u64);
    }
    result
}

/// A media file read by the independent checker (`media_inspect`: WebM, MP4, PNG/APNG, GIF).
/// Durations and rates must be numbers of zero or more: the platform rules compare them, and a
/// NaN passes every comparison.
pub fn media_inspect(data: &[u8]) -> Result<MediaInfo, MediaError> {
    let result = inspect::inspect(data);
    if let Ok(info) = &result {
        assert_eq!(info.bytes, data.len());
        assert!(info.duration_secs >= 0.0, "duration {}", info.duration_secs);
        assert!(info.fps >= 0.0, "fps {}", info.fps);
    }
    result
}

/// An MP4 as a remote renderer (Pika) returns it (`mp4_demux`): read within the limits used for
/// remote clips and turned into the decoder's input, without running the decoder.
pub fn mp4_demux(data: &[u8]) -> Result<Mp4Info, MediaError> {
    let limits = DecodeLimits::REMOTE_CLIP;
    let result = decode::demux_within(data, &limits);
    if let Ok(info) = &result {
        assert!(info.frame_count <= limits.max_frames);
        assert!(info.width <= limits.max_side && info.height <= limits.max_side);
        assert!(info.duration_secs >= 0.0, "duration {}", info.duration_secs);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::path::Path;

    use super::*;

    /// Runs every seed of a fuzz target through its entry: none may panic, `ok-*` seeds must be
    /// accepted and `err-*` seeds refused with a message. Crashes the fuzzer found are kept as
    /// seeds, so they stay fixed on stable.
    fn replay<T: Debug, E: std::fmt::Display>(target: &str, entry: fn(&[u8]) -> Result<T, E>) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds")
            .join(target);
        let mut seen = 0;
        for seed in std::fs::read_dir(&dir).expect("the seed folder") {
            let path = seed.expect("a seed").path();
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .to_string();
            let data = std::fs::read(&path).expect("a readable seed");
            match (name.split('-').next(), entry(&data)) {
                (Some("ok"), Ok(_)) => {}
                (Some("err"), Err(e)) => assert!(!e.to_string().is_empty(), "{name}"),
                (Some("ok"), Err(e)) => panic!("{target}/{name} was refused: {e}"),
                (Some("err"), Ok(v)) => panic!("{target}/{name} was accepted: {v:?}"),
                _ => panic!("{target}/{name}: seed names start with ok- or err-"),
            }
            seen += 1;
        }
        assert!(seen > 0, "no seeds in {}", dir.display());
    }

    #[test]
    fn image_input_seeds() {
        replay("image_input", image_input);
    }

    #[test]
    fn media_inspect_seeds() {
        replay("media_inspect", media_inspect);
    }

    #[test]
    fn mp4_demux_seeds() {
        replay("mp4_demux", mp4_demux);
    }
}
