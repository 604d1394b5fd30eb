//! Telegram sticker encoding, side by side in one run with the ways people make stickers today:
//!
//! - (a) ffmpeg libvpx-vp9 two-pass at 600 kbit/s, the command sticker tools and guides use;
//! - (b) ffmpeg one-pass `-deadline good -cpu-used 5 -crf 40 -b:v 0 -pix_fmt yuv420p`;
//! - ours: in-process libvpx through `encode_sticker` (quality bisection included).
//!
//! Input: 48 frames of 512×512 generated-looking content at 16 fps (gradients, moving shapes,
//! mild noise). Each variant is timed over several runs (median); every output is decoded
//! by ffmpeg and scored against the source frames by index with the same PSNR and SSIM code,
//! so the referee is the same for all. Needs ffmpeg on PATH. Run: `cargo bench -p loopsmith-engine --bench sticker`.

// Shared with the tests, which use every variant; this benchmark uses one.
#[allow(dead_code)]
#[path = "../tests/common/content.rs"]
mod content;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use loopsmith_engine::media::discord::{self, DiscordStickerOptions, StickerFormat};
use loopsmith_engine::media::mp4::{AnimationLimits, encode_animation};
use loopsmith_engine::media::sticker::{StickerOptions, TELEGRAM_STICKER, encode_sticker};

const RUNS: usize = 5;
const FPS: u32 = 16;

struct Row {
    name: &'static str,
    time: Duration,
    bytes: usize,
    psnr: f64,
    ssim: f64,
}

fn main() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        eprintln!(
            "this benchmark compares against ffmpeg, which is not installed (apt-get install ffmpeg)"
        );
        std::process::exit(2);
    }
    let clip = content::clip(content::Content::Generated, 512, 512, FPS, 48, false);
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("source.rgb");
    std::fs::write(&raw, clip.frames.concat()).expect("write source");

    let ours_path = dir.path().join("ours.webm");
    let (ours_time, _) = median_of(|| {
        let s =
            encode_sticker(&clip, &TELEGRAM_STICKER, StickerOptions::default()).expect("encodes");
        std::fs::write(&ours_path, &s.bytes).expect("write");
        s.cq_level
    });
    let sticker =
        encode_sticker(&clip, &TELEGRAM_STICKER, StickerOptions::default()).expect("encodes");

    let two_pass = dir.path().join("two_pass.webm");
    let (two_pass_time, _) = median_of(|| {
        let log = dir.path().join("passlog");
        ffmpeg(
            &raw,
            &["-b:v", "600k", "-pass", "1", "-passlogfile"],
            Some(&log),
            Path::new("/dev/null"),
            true,
        );
        ffmpeg(
            &raw,
            &["-b:v", "600k", "-pass", "2", "-passlogfile"],
            Some(&log),
            &two_pass,
            false,
        );
    });
    let one_pass = dir.path().join("one_pass.webm");
    let (one_pass_time, _) = median_of(|| {
        ffmpeg(
            &raw,
            &[
                "-deadline",
                "good",
                "-cpu-used",
                "5",
                "-crf",
                "40",
                "-b:v",
                "0",
            ],
            None,
            &one_pass,
            false,
        );
    });

    let rows = [
        measure(
            "(a) ffmpeg 2-pass 600k",
            two_pass_time,
            &two_pass,
            &clip.frames,
        ),
        measure(
            "(b) ffmpeg good/5 crf 40",
            one_pass_time,
            &one_pass,
            &clip.frames,
        ),
        measure("loopsmith in-process", ours_time, &ours_path, &clip.frames),
    ];
    println!("Telegram sticker, 48 frames 512x512 @ {FPS} fps, median of {RUNS} runs");
    println!(
        "{:<26} {:>9} {:>10} {:>8} {:>7}",
        "encoder", "time (s)", "bytes", "PSNR dB", "SSIM"
    );
    for r in &rows {
        println!(
            "{:<26} {:>9.3} {:>10} {:>8.2} {:>7.4}",
            r.name,
            r.time.as_secs_f64(),
            r.bytes,
            r.psnr,
            r.ssim
        );
    }
    let (a, b, ours) = (&rows[0], &rows[1], &rows[2]);
    println!(
        "ours/(a): time {:.2}x, bytes {:.2}x, SSIM {:+.4}; ours/(b): time {:.2}x, bytes {:.2}x, SSIM {:+.4}",
        ours.time.as_secs_f64() / a.time.as_secs_f64(),
        ours.bytes as f64 / a.bytes as f64,
        ours.ssim - a.ssim,
        ours.time.as_secs_f64() / b.time.as_secs_f64(),
        ours.bytes as f64 / b.bytes as f64,
        ours.ssim - b.ssim,
    );
    println!(
        "ours: cq {}, {} encoder run(s), {} frames at {} fps",
        sticker.cq_level, sticker.attempts, sticker.frames, sticker.fps
    );

    // The other formats from the same clip (no peer run here; for the README's table).
    println!("other outputs from the same clip, median of {RUNS} runs");
    for format in [StickerFormat::Apng, StickerFormat::Gif] {
        let (time, encoded) = median_of(|| {
            discord::encode(&clip, &DiscordStickerOptions::default(), format).expect("encodes")
        });
        println!(
            "{:<26} {:>9.3} {:>10}   {} fps, {} colours, {} encode(s)",
            format!("Discord {format:?} 320x320"),
            time.as_secs_f64(),
            encoded.bytes.len(),
            encoded.fps,
            encoded.colours,
            encoded.attempts
        );
    }
    let (time, mp4) =
        median_of(|| encode_animation(&clip, &AnimationLimits::TELEGRAM).expect("encodes"));
    println!(
        "{:<26} {:>9.3} {:>10}",
        "Telegram MP4 (H.264)",
        time.as_secs_f64(),
        mp4.len()
    );
}

fn median_of<T>(mut run: impl FnMut() -> T) -> (Duration, T) {
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let started = Instant::now();
        last = Some(run());
        times.push(started.elapsed());
    }
    times.sort();
    (times[RUNS / 2], last.expect("at least one run"))
}

/// One ffmpeg libvpx-vp9 encode of the raw source, as a user would type it.
fn ffmpeg(raw: &Path, mode: &[&str], passlog: Option<&Path>, out: &Path, null_output: bool) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        "512x512",
    ])
    .args(["-r", &FPS.to_string(), "-i"])
    .arg(raw)
    .args([
        "-t",
        "2.99",
        "-an",
        "-c:v",
        "libvpx-vp9",
        "-pix_fmt",
        "yuv420p",
    ])
    .args(mode);
    if let Some(log) = passlog {
        cmd.arg(log);
    }
    if null_output {
        cmd.args(["-f", "null"]);
    }
    cmd.arg(out);
    let status = cmd.status().expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg failed: {cmd:?}");
}

/// Size, and PSNR/SSIM of the decoded file against the source. Every output is decoded by
/// ffmpeg and compared with the source frame of the same index, by the same code: ffmpeg's
/// own filters pair frames by timestamp, and millisecond WebM timestamps can pair a frame with
/// its neighbour.
fn measure(name: &'static str, time: Duration, file: &Path, source: &[Vec<u8>]) -> Row {
    let bytes = std::fs::metadata(file).expect("output exists").len() as usize;
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "cannot decode {}", file.display());
    let decoded: Vec<&[u8]> = out.stdout.chunks(512 * 512 * 3).collect();
    let n = decoded.len().min(source.len());
    let psnr = (0..n).map(|i| psnr(&source[i], decoded[i])).sum::<f64>() / n as f64;
    let ssim = (0..n)
        .map(|i| ssim(&source[i], decoded[i], 512, 512))
        .sum::<f64>()
        / n as f64;
    Row {
        name,
        time,
        bytes,
        psnr,
        ssim,
    }
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}

/// Mean SSIM of the BT.601 luma over 8×8 windows at a stride of 4 (Wang et al. constants).
fn ssim(a: &[u8], b: &[u8], w: usize, h: usize) -> f64 {
    let luma = |f: &[u8]| -> Vec<f64> {
        f.chunks(3)
            .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
            .collect()
    };
    let (ya, yb) = (luma(a), luma(b));
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (mut total, mut count) = (0.0, 0.0);
    for y0 in (0..=h - 8).step_by(4) {
        for x0 in (0..=w - 8).step_by(4) {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for y in y0..y0 + 8 {
                for x in x0..x0 + 8 {
                    let (p, q) = (ya[y * w + x], yb[y * w + x]);
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let n = 64.0;
            let (ma, mb) = (sa / n, sb / n);
            let (va, vb, cov) = (saa / n - ma * ma, sbb / n - mb * mb, sab / n - ma * mb);
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            count += 1.0;
        }
    }
    total / count
}
