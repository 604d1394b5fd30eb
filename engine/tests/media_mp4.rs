//! MP4 H.264: decoding Pika-style High-profile B-frame video and encoding animations.
//!
//! ffmpeg/ffprobe, when installed, are the independent reference: fixtures are made with them
//! at test time and our output is checked by them. Without ffmpeg, the committed fixture and
//! its reference statistics still cover decoding, and our own demuxer checks the encoder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use loopsmith_engine::media::decode::{
    DecodeLimits, DecodeWith, decode_mp4, decode_mp4_with, probe_mp4,
};
use loopsmith_engine::media::mp4::{AnimationLimits, encode_animation};
use loopsmith_engine::media::{Frames, MediaError, PixelFormat};

const FIXTURE: &str = "high_bframes_320x180_24fps.mp4";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mp4")
}

fn fixture_bytes() -> Vec<u8> {
    std::fs::read(fixture_dir().join(FIXTURE)).expect("the committed fixture is readable")
}

fn tool_present(tool: &str) -> bool {
    Command::new(tool)
        .arg("-version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn ffmpeg_present() -> bool {
    tool_present("ffmpeg")
}

/// Runs ffmpeg with `args` (after `-v error -y`) and panics with its message on failure.
fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffmpeg's own decode of `path` to RGB frames, one per coded picture.
fn ffmpeg_rgb(path: &Path, width: u32, height: u32) -> Vec<Vec<u8>> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-vsync", "0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frame = (width * height * 3) as usize;
    assert_eq!(out.stdout.len() % frame, 0);
    out.stdout.chunks_exact(frame).map(<[u8]>::to_vec).collect()
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    let mse = se / a.len() as f64;
    if mse == 0.0 {
        return 99.0;
    }
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// Per-frame PSNR against a reference, with a check that the comparison can tell frames apart
/// (so a wrong order would fail, not pass by similarity).
fn assert_matches_reference(ours: &Frames, reference: &[Vec<u8>], min_db: f64) -> Vec<f64> {
    assert_eq!(ours.frames.len(), reference.len(), "frame count");
    let scores: Vec<f64> = ours
        .frames
        .iter()
        .zip(reference)
        .map(|(a, b)| psnr(a, b))
        .collect();
    for (i, db) in scores.iter().enumerate() {
        assert!(
            *db >= min_db,
            "frame {i}: {db:.2} dB < {min_db} dB (all: {scores:.1?})"
        );
    }
    for i in 1..reference.len() {
        if reference[i] == reference[i - 1] {
            continue;
        }
        let shifted = psnr(&ours.frames[i], &reference[i - 1]);
        assert!(
            shifted < scores[i],
            "frame {i} matches the reference's frame {} as well ({shifted:.1} dB) as its own",
            i - 1
        );
    }
    scores
}

fn summary(scores: &[f64]) -> String {
    let min = scores.iter().cloned().fold(f64::INFINITY, f64::min);
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    format!("min {min:.2} dB, mean {mean:.2} dB")
}

/// Mean RGB of each cell of a 4×4 grid, the statistic stored beside the fixture.
fn grid_means(frame: &[u8], width: usize, height: usize) -> Vec<f64> {
    let (cw, ch) = (width / 4, height / 4);
    let mut out = Vec::new();
    for gy in 0..4 {
        for gx in 0..4 {
            let mut sum = [0u64; 3];
            for y in gy * ch..(gy + 1) * ch {
                for x in gx * cw..(gx + 1) * cw {
                    for c in 0..3 {
                        sum[c] += u64::from(frame[(y * width + x) * 3 + c]);
                    }
                }
            }
            out.extend(sum.iter().map(|&s| s as f64 / (cw * ch) as f64));
        }
    }
    out
}

#[test]
fn decodes_the_committed_high_profile_b_frame_fixture() {
    let bytes = fixture_bytes();
    let info = probe_mp4(&bytes).expect("probes");
    assert_eq!(
        (info.width, info.height, info.fps, info.frame_count),
        (320, 180, 24, 24)
    );
    assert_eq!(info.profile_idc, 100, "High profile");
    assert!(info.reordered, "the fixture has B-frames");

    let started = Instant::now();
    let frames = decode_mp4_with(&bytes, &DecodeLimits::DEFAULT, DecodeWith::OpenH264)
        .expect("openh264 decodes the fixture");
    eprintln!(
        "openh264 decoded 24 frames of 320x180 in {:?}",
        started.elapsed()
    );
    assert_eq!((frames.width, frames.height, frames.fps), (320, 180, 24));
    assert_eq!(frames.format, PixelFormat::Rgb8);
    assert_eq!(frames.frames.len(), 24);
    frames.validate().expect("valid frames");

    // Reference statistics from ffmpeg's decode, committed so this runs without ffmpeg.
    let text = std::fs::read_to_string(fixture_dir().join("high_bframes_320x180_24fps.grid.txt"))
        .expect("reference statistics");
    let reference: Vec<Vec<f64>> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .map(|v| v.parse().expect("number"))
                .collect()
        })
        .collect();
    assert_eq!(reference.len(), 24);
    for (i, (frame, want)) in frames.frames.iter().zip(&reference).enumerate() {
        let got = grid_means(frame, 320, 180);
        let worst = got
            .iter()
            .zip(want)
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= 3.0,
            "frame {i}: a grid cell's mean is off by {worst:.1}"
        );
    }

    if ffmpeg_present() {
        let reference = ffmpeg_rgb(&fixture_dir().join(FIXTURE), 320, 180);
        let scores = assert_matches_reference(&frames, &reference, 35.0);
        eprintln!(
            "openh264 vs ffmpeg on the committed fixture: {}",
            summary(&scores)
        );
    }
}

#[test]
fn decodes_pika_like_720p_and_1080p_against_ffmpeg() {
    if !ffmpeg_present() {
        eprintln!("skipped: ffmpeg is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // 720p untagged (BT.601 by default) with the moov at the end; 1080p tagged BT.709 the way
    // HD encoders tag it, moov first. 1080 is not a multiple of 16: the SPS crops it.
    let bt709 = "-colorspace bt709 -color_primaries bt709 -color_trc bt709";
    let cases = [
        (1280, 720, 24, ""),
        (1920, 1080, 8, &*format!("{bt709} -movflags +faststart")),
    ];
    for (w, h, count, extra) in cases {
        let path = dir.path().join(format!("{w}x{h}.mp4"));
        let command = format!(
            "-f lavfi -i testsrc2=size={w}x{h}:rate=24 -frames:v {count} -c:v libx264 \
             -profile:v high -bf 3 -pix_fmt yuv420p {extra}"
        );
        let mut args: Vec<&str> = command.split_whitespace().collect();
        args.push(path.to_str().expect("utf-8 path"));
        ffmpeg(&args);

        let bytes = std::fs::read(&path).expect("read");
        let info = probe_mp4(&bytes).expect("probes");
        assert_eq!(info.fast_start, !extra.is_empty());
        assert!(info.reordered);
        let started = Instant::now();
        let ours = decode_mp4_with(&bytes, &DecodeLimits::DEFAULT, DecodeWith::OpenH264)
            .expect("openh264 decodes it");
        let took = started.elapsed();
        assert_eq!((ours.width, ours.height, ours.fps), (w, h, 24));
        let reference = ffmpeg_rgb(&path, w, h);
        let scores = assert_matches_reference(&ours, &reference, 35.0);
        eprintln!(
            "{w}x{h}: openh264 decoded {count} frames in {took:?}; vs ffmpeg {}",
            summary(&scores)
        );
    }
}

/// A 3-channel gradient with a square moving across it: smooth like generated clips, with
/// motion so frames differ.
fn gradient_square(width: u32, height: u32, count: usize, fps: u32) -> Frames {
    let (w, h) = (width as usize, height as usize);
    let side = w.min(h) / 4;
    let frames = (0..count)
        .map(|i| {
            let sx = (i * 7) % (w - side);
            let sy = (i * 3) % (h - side);
            let mut f = vec![0u8; w * h * 3];
            for y in 0..h {
                for x in 0..w {
                    let p = (y * w + x) * 3;
                    if (sx..sx + side).contains(&x) && (sy..sy + side).contains(&y) {
                        f[p..p + 3].copy_from_slice(&[240, 240, 40]);
                    } else {
                        f[p] = (x * 255 / w) as u8;
                        f[p + 1] = (y * 255 / h) as u8;
                        f[p + 2] = 128;
                    }
                }
            }
            f
        })
        .collect();
    Frames {
        width,
        height,
        format: PixelFormat::Rgb8,
        fps,
        frames,
    }
}

/// Top-level box types in file order, read independently of the library's demuxer.
fn top_level_boxes(bytes: &[u8]) -> Vec<String> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        out.push(String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).into_owned());
        assert!(size >= 8, "box size {size}");
        pos += size;
    }
    out
}

fn ffprobe_entries(path: &Path, entries: &str, stream: Option<&str>) -> String {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error"]);
    if let Some(s) = stream {
        cmd.args(["-select_streams", s]);
    }
    let out = cmd
        .args([
            "-count_frames",
            "-show_entries",
            entries,
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn animation_round_trip_512px_3s() {
    let clip = gradient_square(512, 512, 72, 24);
    let started = Instant::now();
    let bytes = encode_animation(&clip, &AnimationLimits::TELEGRAM).expect("encodes");
    let encode_time = started.elapsed();

    // Our own demuxer, always.
    let info = probe_mp4(&bytes).expect("reads back");
    assert_eq!(
        (info.width, info.height, info.fps, info.frame_count),
        (512, 512, 24, 72)
    );
    assert_eq!((info.video_tracks, info.other_tracks), (1, 0));
    assert!(info.fast_start);
    assert_eq!(info.profile_idc, 66, "Baseline");
    assert!(!info.reordered);
    assert!(
        (info.duration_secs - 3.0).abs() < 0.01,
        "{}",
        info.duration_secs
    );
    let boxes = top_level_boxes(&bytes);
    let moov = boxes.iter().position(|b| b == "moov").expect("moov");
    let mdat = boxes.iter().position(|b| b == "mdat").expect("mdat");
    assert!(moov < mdat, "fast start: {boxes:?}");
    assert_eq!(boxes[0], "ftyp");

    let started = Instant::now();
    let decoded = decode_mp4(&bytes).expect("decodes");
    let decode_time = started.elapsed();
    assert_eq!((decoded.width, decoded.height, decoded.fps), (512, 512, 24));
    let scores: Vec<f64> = clip
        .frames
        .iter()
        .zip(&decoded.frames)
        .map(|(a, b)| psnr(a, b))
        .collect();
    assert_eq!(scores.len(), 72);
    assert!(scores.iter().all(|&db| db >= 30.0), "{scores:.1?}");
    eprintln!(
        "512x512 24 fps 3 s: {} bytes; encode (with verification) {encode_time:?}, decode \
         {decode_time:?}; PSNR {}",
        bytes.len(),
        summary(&scores)
    );

    if tool_present("ffprobe") {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("animation.mp4");
        std::fs::write(&path, &bytes).expect("write");
        let video = ffprobe_entries(
            &path,
            "stream=codec_name,profile,pix_fmt,color_space,color_range,width,height,nb_frames,nb_read_frames,r_frame_rate,duration",
            Some("v"),
        );
        assert_eq!(field(&video, "codec_name"), "h264");
        assert_eq!(field(&video, "profile"), "Constrained Baseline");
        assert_eq!(field(&video, "pix_fmt"), "yuv420p");
        // Tagged with the matrix openh264 converted with, so HD players do not assume BT.709.
        assert_eq!(field(&video, "color_space"), "smpte170m");
        assert_eq!(field(&video, "color_range"), "tv");
        assert_eq!(field(&video, "width"), "512");
        assert_eq!(field(&video, "height"), "512");
        assert_eq!(field(&video, "nb_frames"), "72");
        assert_eq!(field(&video, "nb_read_frames"), "72");
        assert_eq!(field(&video, "r_frame_rate"), "24/1");
        let duration: f64 = field(&video, "duration").parse().expect("duration");
        assert!((duration - 3.0).abs() < 0.05, "{duration}");
        let all = ffprobe_entries(&path, "stream=codec_type", None);
        assert_eq!(all.trim(), "codec_type=video", "no audio or other streams");

        // A player's view: ffmpeg honours the colour signalling we wrote, so a wrong matrix
        // or range would show up here as a large error.
        let theirs = ffmpeg_rgb(&path, 512, 512);
        assert_eq!(theirs.len(), 72);
        let scores: Vec<f64> = clip
            .frames
            .iter()
            .zip(&theirs)
            .map(|(a, b)| psnr(a, b))
            .collect();
        assert!(scores.iter().all(|&db| db >= 30.0), "{scores:.1?}");
        eprintln!(
            "ffmpeg's decode of the animation vs the source: {}",
            summary(&scores)
        );
    }
}

fn noise(width: u32, height: u32, count: usize, fps: u32, seed: u64) -> Frames {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as u8
    };
    Frames {
        width,
        height,
        format: PixelFormat::Rgb8,
        fps,
        frames: (0..count)
            .map(|_| (0..width * height * 3).map(|_| next()).collect())
            .collect(),
    }
}

#[test]
fn max_bytes_is_never_exceeded() {
    let clip = noise(96, 96, 16, 24, 7);
    let mut fitted = 0;
    let mut refused = 0;
    for max_bytes in [400, 3_000, 12_000, 40_000, 400_000] {
        let limits = AnimationLimits {
            max_bytes,
            ..AnimationLimits::TELEGRAM
        };
        match encode_animation(&clip, &limits) {
            Ok(bytes) => {
                assert!(bytes.len() <= max_bytes, "{} > {max_bytes}", bytes.len());
                let info = probe_mp4(&bytes).expect("reads back");
                assert!(info.frame_count >= 2);
                fitted += 1;
            }
            Err(MediaError::TooBig { bytes, limit, .. }) => {
                assert_eq!(limit, max_bytes);
                assert!(bytes > max_bytes);
                refused += 1;
            }
            Err(other) => panic!("unexpected error for {max_bytes}: {other}"),
        }
    }
    assert!(refused >= 1, "400 bytes cannot hold 16 frames of noise");
    assert!(fitted >= 2, "the larger limits fit");
}

fn expect_error(result: Result<Frames, MediaError>, context: &str) -> MediaError {
    match result {
        Ok(frames) => panic!("{context}: decoded {frames:?} instead of failing"),
        Err(e) => e,
    }
}

#[test]
fn bad_input_gives_clear_errors() {
    let bytes = fixture_bytes();

    let err = expect_error(decode_mp4(&[]), "empty");
    assert!(err.to_string().contains("not an MP4"), "{err}");
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let err = expect_error(decode_mp4(&junk), "random bytes");
    assert!(matches!(err, MediaError::Malformed { .. }), "{err}");

    // Cut inside the moov, and inside the media data of this moov-first file.
    for cut in [100, 1000, bytes.len() / 2, bytes.len() - 1] {
        let err = expect_error(decode_mp4(&bytes[..cut]), &format!("cut at {cut}"));
        assert!(
            matches!(err, MediaError::Malformed { .. }),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains("truncated"), "cut at {cut}: {err}");
    }

    // The same file claiming another codec in its sample entry.
    let stsd = bytes
        .windows(4)
        .position(|w| w == b"stsd")
        .expect("an stsd box");
    let at = stsd
        + bytes[stsd..]
            .windows(4)
            .position(|w| w == b"avc1")
            .expect("avc1 entry");
    let mut mpeg4 = bytes.clone();
    mpeg4[at..at + 4].copy_from_slice(b"mp4v");
    let err = expect_error(decode_mp4(&mpeg4), "mp4v");
    assert!(err.to_string().contains("only H.264"), "{err}");

    // Damaged bytes anywhere: an error or concealed pictures, never a panic or a wrong count.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..10 {
        let mut damaged = bytes.clone();
        for _ in 0..1 + next() % 6 {
            let mut i = next() as usize % damaged.len();
            if case % 2 == 0 {
                i %= 2500; // the moov and the first frames
            }
            damaged[i] = next() as u8;
        }
        let _ = probe_mp4(&damaged);
        if let Ok(frames) = decode_mp4(&damaged) {
            frames.validate().expect("whatever decodes is well-formed");
        }
    }

    if ffmpeg_present() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mpeg4 = dir.path().join("mpeg4.mp4");
        let audio = dir.path().join("audio.mp4");
        let out = mpeg4.to_str().expect("utf-8");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x64:rate=8",
            "-frames:v",
            "4",
            "-c:v",
            "mpeg4",
            out,
        ]);
        let err = expect_error(decode_mp4(&std::fs::read(&mpeg4).expect("read")), "mpeg4");
        assert!(err.to_string().contains("MPEG-4 Part 2"), "{err}");
        let out = audio.to_str().expect("utf-8");
        ffmpeg(&["-f", "lavfi", "-i", "sine=duration=0.2", "-c:a", "aac", out]);
        let err = expect_error(
            decode_mp4(&std::fs::read(&audio).expect("read")),
            "audio only",
        );
        assert!(err.to_string().contains("no video track"), "{err}");
    }
}

#[test]
fn decode_limits_refuse_before_decoding() {
    let bytes = fixture_bytes();
    for (limits, needle) in [
        (
            DecodeLimits {
                max_frames: 10,
                ..DecodeLimits::DEFAULT
            },
            "more than 10 frames",
        ),
        (
            DecodeLimits {
                max_side: 256,
                ..DecodeLimits::DEFAULT
            },
            "at most 256 pixels",
        ),
        (
            DecodeLimits {
                max_rgb_bytes: 1_000_000,
                ..DecodeLimits::DEFAULT
            },
            "at most 1 MB",
        ),
    ] {
        let err = expect_error(decode_mp4_with(&bytes, &limits, DecodeWith::Auto), needle);
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn ffmpeg_takes_over_what_openh264_cannot_decode() {
    if !ffmpeg_present() {
        eprintln!("skipped: ffmpeg is not installed");
        return;
    }
    let bytes = fixture_bytes();
    let via_ffmpeg = decode_mp4_with(&bytes, &DecodeLimits::DEFAULT, DecodeWith::Ffmpeg)
        .expect("ffmpeg decodes the fixture");
    let via_openh264 = decode_mp4_with(&bytes, &DecodeLimits::DEFAULT, DecodeWith::OpenH264)
        .expect("openh264 decodes the fixture");
    assert_eq!(via_ffmpeg.fps, 24);
    assert_matches_reference(&via_openh264, &via_ffmpeg.frames, 35.0);

    // High 4:2:2 is beyond openh264; Auto goes to ffmpeg.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("422.mp4");
    let out = path.to_str().expect("utf-8");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=24",
        "-frames:v",
        "6",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv422p",
        "-profile:v",
        "high422",
        "-bf",
        "2",
        out,
    ]);
    let bytes = std::fs::read(&path).expect("read");
    let err = expect_error(
        decode_mp4_with(&bytes, &DecodeLimits::DEFAULT, DecodeWith::OpenH264),
        "4:2:2 through openh264",
    );
    assert!(err.to_string().contains("4:2:2"), "{err}");
    let frames = decode_mp4(&bytes).expect("Auto falls back to ffmpeg");
    assert_eq!(
        (frames.width, frames.height, frames.frames.len()),
        (64, 48, 6)
    );
    assert_matches_reference(&frames, &ffmpeg_rgb(&path, 64, 48), 40.0);
}

#[test]
fn large_remote_clips_are_scaled_down_as_they_are_decoded() {
    let bytes = fixture_bytes();
    let limits = DecodeLimits {
        max_output_side: 160,
        ..DecodeLimits::REMOTE_CLIP
    };
    let native =
        decode_mp4_with(&bytes, &DecodeLimits::DEFAULT, DecodeWith::OpenH264).expect("native");
    let small = decode_mp4_with(&bytes, &limits, DecodeWith::OpenH264).expect("scaled");
    assert_eq!((small.width, small.height, small.fps), (160, 90, 24));
    assert_eq!(small.frames.len(), native.frames.len());
    small.validate().expect("consistent frames");
    // Scaling each picture as it arrives is the same as scaling the decoded clip.
    assert_eq!(small.frames, native.resize(160, 90).frames);
    if ffmpeg_present() {
        let via_ffmpeg =
            decode_mp4_with(&bytes, &limits, DecodeWith::Ffmpeg).expect("ffmpeg scales too");
        assert_eq!((via_ffmpeg.width, via_ffmpeg.height), (160, 90));
        assert_eq!(via_ffmpeg.frames.len(), small.frames.len());
        // Two different scalers on testsrc2's sharp edges differ in detail (about 26 dB), but
        // the same picture must come out: same average colour, same frame order.
        let mean = |f: &[u8]| f.iter().map(|&v| v as f64).sum::<f64>() / f.len() as f64;
        for (a, b) in via_ffmpeg.frames.iter().zip(&small.frames) {
            let p = psnr(a, b);
            assert!(
                p > 24.0,
                "ffmpeg's scaler and ours show the same picture: {p:.1} dB"
            );
            assert!((mean(a) - mean(b)).abs() < 2.0, "same average colour");
        }
    }
}
