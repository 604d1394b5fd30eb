//! A second, independent opinion on media files from ffprobe, when it is installed.
//!
//! Tests compare what `loopsmith_engine::media::inspect` reads with what ffprobe reports; on a
//! machine without ffprobe [`probe`] answers `None` and those comparisons are skipped.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// What ffprobe says about a file's first video stream (or its first stream, when there is no
/// video), plus stream counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// ffprobe's `codec_name`: `vp9`, `vp8`, `h264`, `apng`, `gif`…
    pub codec: String,
    /// ffprobe's profile name (`Profile 0`, `High`, `Constrained Baseline`…); `None` when it
    /// reports none or `unknown`.
    pub profile: Option<String>,
    /// `yuv420p`, `yuv444p`, `rgba`…; ffprobe's native VP9 decoder ignores alpha, so VP9 with
    /// alpha reads as `yuv420p`.
    pub pix_fmt: Option<String>,
    pub width: u32,
    pub height: u32,
    /// Frames ffprobe decoded (`-count_frames`).
    pub frames: Option<u32>,
    /// The stream's duration, else the container's.
    pub duration_secs: Option<f64>,
    /// The average frame rate.
    pub fps: Option<f64>,
    pub audio_streams: u32,
    pub video_streams: u32,
}

/// Whether `ffprobe -version` runs.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("ffprobe")
            .arg("-version")
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

/// Probes `path`; `None` when ffprobe is not installed. Panics with ffprobe's stderr when it
/// cannot read the file (this is test support).
pub fn probe(path: &Path) -> Option<Probe> {
    if !available() {
        return None;
    }
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe starts");
    if !out.status.success() {
        panic!(
            "ffprobe cannot read {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ffprobe printed something that is not JSON for {}: {e}",
            path.display()
        )
    });
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let of_type = |kind: &str| streams.iter().filter(|s| s["codec_type"] == kind).count() as u32;
    let main = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .or_else(|| streams.first())
        .unwrap_or_else(|| panic!("ffprobe found no streams in {}", path.display()));
    let text = |v: &Value| {
        v.as_str()
            .filter(|s| !s.is_empty() && *s != "unknown" && *s != "N/A")
            .map(str::to_string)
    };
    let number = |v: &Value| text(v).and_then(|s| s.parse::<f64>().ok());
    let fps = text(&main["avg_frame_rate"]).and_then(|r| {
        let (num, den) = r.split_once('/')?;
        let (num, den) = (num.parse::<f64>().ok()?, den.parse::<f64>().ok()?);
        (num > 0.0 && den > 0.0).then(|| num / den)
    });
    Some(Probe {
        codec: text(&main["codec_name"]).unwrap_or_default(),
        profile: text(&main["profile"]),
        pix_fmt: text(&main["pix_fmt"]),
        width: main["width"].as_u64().unwrap_or(0) as u32,
        height: main["height"].as_u64().unwrap_or(0) as u32,
        frames: text(&main["nb_read_frames"]).and_then(|s| s.parse().ok()),
        duration_secs: number(&main["duration"]).or_else(|| number(&json["format"]["duration"])),
        fps,
        audio_streams: of_type("audio"),
        video_streams: of_type("video"),
    })
}
