//! Decoding through the ffmpeg command line, for the H.264 features openh264 lacks
//! (4:2:2/4:4:4, more than 8 bits, interlacing) or a stream it stumbles on.

use std::io::{ErrorKind, Read, Write};
use std::process::{Command, Stdio};

use crate::media::MediaError;

pub(crate) const MISSING: &str =
    "decoding this video needs ffmpeg, which is not installed: apt-get install ffmpeg";

/// Decodes an Annex B H.264 stream (parameter sets first) into `expected` RGB frames of
/// `width`×`height`. The elementary stream goes in through a pipe rather than the MP4 itself
/// because ffmpeg cannot seek a pipe to a `moov` at the end of a file.
/// Decodes with the ffmpeg command line; `out` is the size frames come back at (ffmpeg's
/// area scaler shrinks them when it differs from `native`).
pub(crate) fn decode_annexb(
    annexb: &[u8],
    native: (u32, u32),
    out: (u32, u32),
    expected: usize,
) -> Result<Vec<Vec<u8>>, MediaError> {
    let scale = (native != out).then(|| format!("scale={}:{}:flags=area", out.0, out.1));
    run("ffmpeg", annexb, out.0, out.1, scale.as_deref(), expected)
}

fn run(
    program: &str,
    annexb: &[u8],
    width: u32,
    height: u32,
    scale: Option<&str>,
    expected: usize,
) -> Result<Vec<Vec<u8>>, MediaError> {
    let frame_bytes = width as usize * height as usize * 3;
    let mut child = Command::new(program)
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-f",
            "h264",
            "-i",
            "pipe:0",
            // One output frame per coded picture: no duplicating or dropping to a frame rate.
            "-vsync",
            "0",
        ])
        .args(scale.map(|filter| ["-vf", filter]).into_iter().flatten())
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => MediaError::Unavailable(MISSING.to_string()),
            _ => MediaError::Unavailable(format!("cannot start ffmpeg to decode the video: {e}")),
        })?;

    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(MediaError::Decode("cannot talk to ffmpeg".to_string()));
    };

    // Reading one frame more than expected is enough to notice extra output without letting
    // a misbehaving ffmpeg fill memory.
    let limit = (frame_bytes as u64).saturating_mul(expected as u64 + 1);
    let (written, output, errors) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let result = stdin.write_all(annexb);
            drop(stdin);
            result
        });
        let errors = scope.spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut output = Vec::new();
        let read = stdout.take(limit).read_to_end(&mut output);
        let written = writer.join();
        let errors = errors.join().unwrap_or_default();
        (written, read.map(|_| output), errors)
    });
    let status = child.wait();
    let first_error = errors.lines().next().unwrap_or("").trim().to_string();

    let output =
        output.map_err(|e| MediaError::Decode(format!("reading from ffmpeg failed: {e}")))?;
    let ok = matches!(status, Ok(s) if s.success());
    if !ok || !matches!(written, Ok(Ok(()))) {
        let detail = if first_error.is_empty() {
            "no message".to_string()
        } else {
            first_error
        };
        return Err(MediaError::Decode(format!(
            "ffmpeg could not decode it: {detail}"
        )));
    }
    if output.len() % frame_bytes != 0 || output.len() / frame_bytes != expected {
        return Err(MediaError::Decode(format!(
            "ffmpeg returned {} bytes, not {expected} frames of {width}x{height}",
            output.len()
        )));
    }
    Ok(output
        .chunks_exact(frame_bytes)
        .map(<[u8]>::to_vec)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ffmpeg_says_how_to_install_it() {
        let err =
            run("loopsmith-no-such-ffmpeg", &[0, 0, 0, 1], 2, 2, None, 1).expect_err("missing");
        assert!(
            matches!(&err, MediaError::Unavailable(m) if m == MISSING),
            "{err}"
        );
    }
}
