//! Preview frames for the console, decoded from a finished job's files.
//!
//! The engine keeps no frames after encoding, only artifact files. MP4 (H.264) and GIF can be
//! decoded here; WebM (VP9) and APNG cannot yet, and a job with only those says so.

use std::io::Cursor;
use std::path::Path;

use loopsmith_protocol::control::PreviewFrames;
use loopsmith_protocol::{Artifact, JobId, OutputKind};

use crate::media::decode::{DecodeLimits, DecodeWith, decode_mp4_with};
use crate::media::{Frames, PixelFormat};

/// Enough for a smooth loop in a terminal, small enough for one frame on the wire.
pub const MAX_PREVIEW_FRAMES: usize = 48;
pub const MAX_PREVIEW_SIDE: u32 = 256;
/// Artifacts are bounded by platform limits (a few MB); anything larger is not ours to read.
const MAX_ARTIFACT_BYTES: u64 = 64 * 1024 * 1024;

/// Decodes the first previewable artifact into at most [`MAX_PREVIEW_FRAMES`] frames whose
/// longer side is at most `max_side`. Runs on a blocking thread: decoding takes milliseconds
/// to seconds.
pub fn preview(job: JobId, artifacts: &[Artifact], max_side: u32) -> Result<PreviewFrames, String> {
    let max_side = max_side.clamp(8, MAX_PREVIEW_SIDE);
    let pick = |kind| artifacts.iter().find(|a| a.kind == kind);
    let frames = if let Some(mp4) = pick(OutputKind::Mp4) {
        let bytes = read(&mp4.path)?;
        let limits = DecodeLimits {
            max_output_side: max_side.max(16),
            ..DecodeLimits::DEFAULT
        };
        decode_mp4_with(&bytes, &limits, DecodeWith::Auto).map_err(|e| e.to_string())?
    } else if let Some(gif) = pick(OutputKind::Gif) {
        decode_gif(&read(&gif.path)?)?
    } else {
        let kinds: Vec<&str> = artifacts.iter().map(|a| a.kind.as_str()).collect();
        return Err(format!(
            "no preview: the console can play MP4 and GIF files, and this job made {}",
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            }
        ));
    };
    frames.validate().map_err(|e| e.to_string())?;
    let frames = frames.to_rgb();
    let (w, h) = fit(frames.width, frames.height, max_side);
    let frames = frames.resize(w, h);
    let (picked, fps) = subsample(frames.frames.len(), frames.fps);
    let chosen: Vec<Vec<u8>> = picked
        .into_iter()
        .map(|i| frames.frames[i].clone())
        .collect();
    Ok(PreviewFrames::from_rgb(
        job,
        frames.width,
        frames.height,
        fps,
        &chosen,
    ))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.len() > MAX_ARTIFACT_BYTES {
        return Err(format!("{} is too large to preview", path.display()));
    }
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The longer side becomes `max_side` (never upscaled), aspect kept, each side at least 1.
fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longer = width.max(height);
    if longer <= max_side {
        return (width, height);
    }
    let scale = max_side as f64 / longer as f64;
    let side = |v: u32| ((v as f64 * scale).round() as u32).max(1);
    (side(width), side(height))
}

/// Which frames to keep, evenly spread, and the rate that keeps the loop's duration.
fn subsample(count: usize, fps: u32) -> (Vec<usize>, u32) {
    if count <= MAX_PREVIEW_FRAMES {
        return ((0..count).collect(), fps.max(1));
    }
    let picked = (0..MAX_PREVIEW_FRAMES)
        .map(|i| i * count / MAX_PREVIEW_FRAMES)
        .collect();
    let fps = ((fps as usize * MAX_PREVIEW_FRAMES) / count).max(1) as u32;
    (picked, fps)
}

/// Decodes a GIF onto a full canvas per frame. Disposal methods are ignored: our own GIFs
/// write whole frames, and a preview only needs to be recognisable.
fn decode_gif(bytes: &[u8]) -> Result<Frames, String> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options
        .read_info(Cursor::new(bytes))
        .map_err(|e| format!("cannot read the GIF: {e}"))?;
    let (width, height) = (u32::from(decoder.width()), u32::from(decoder.height()));
    if width == 0 || height == 0 {
        return Err("the GIF has no picture".into());
    }
    let mut canvas = vec![0u8; width as usize * height as usize * 4];
    let mut frames = Vec::new();
    let mut delay_cs = 0u32;
    while let Some(frame) = decoder
        .read_next_frame()
        .map_err(|e| format!("cannot read the GIF: {e}"))?
    {
        delay_cs = delay_cs.max(u32::from(frame.delay));
        let (left, top) = (u32::from(frame.left), u32::from(frame.top));
        let (fw, fh) = (u32::from(frame.width), u32::from(frame.height));
        for y in 0..fh {
            for x in 0..fw {
                let (cx, cy) = (left + x, top + y);
                if cx >= width || cy >= height {
                    continue;
                }
                let src = ((y * fw + x) * 4) as usize;
                let dst = ((cy * width + cx) * 4) as usize;
                if let Some(px) = frame.buffer.get(src..src + 4)
                    && px[3] > 0
                {
                    canvas[dst..dst + 4].copy_from_slice(px);
                }
            }
        }
        frames.push(canvas.clone());
        if frames.len() > 2000 {
            return Err("the GIF has too many frames to preview".into());
        }
    }
    let fps = 100u32.checked_div(delay_cs).map_or(10, |f| f.max(1));
    Ok(Frames {
        width,
        height,
        format: PixelFormat::Rgba8,
        fps,
        frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_keeps_aspect_and_never_upscales() {
        assert_eq!(fit(512, 256, 64), (64, 32));
        assert_eq!(fit(32, 16, 64), (32, 16));
        assert_eq!(fit(1000, 1, 10), (10, 1));
    }

    #[test]
    fn long_clips_are_subsampled_keeping_their_duration() {
        let (picked, fps) = subsample(96, 24);
        assert_eq!(picked.len(), MAX_PREVIEW_FRAMES);
        assert_eq!(picked[1], 2);
        assert_eq!(fps, 12);
        assert_eq!(subsample(10, 8), ((0..10).collect(), 8));
    }

    #[test]
    fn a_job_without_a_playable_file_says_which_files_it_has() {
        let artifacts = vec![Artifact {
            kind: OutputKind::WebmSticker,
            path: "/nowhere.webm".into(),
            bytes: 1,
        }];
        let err = preview(JobId(1), &artifacts, 64).expect_err("no preview");
        assert!(err.contains("webm_sticker"), "{err}");
    }

    #[test]
    fn garbage_gif_is_an_error_not_a_panic() {
        assert!(decode_gif(b"GIF89a\x00").is_err());
        assert!(decode_gif(b"").is_err());
    }
}
