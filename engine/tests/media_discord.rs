//! Discord stickers: every output is 320×320, at most 512 KiB and 5 s, loops, and decodes, as
//! read back by the png and gif crates (with our own compositing) and, where installed, by
//! ffprobe.

use std::io::Cursor;
use std::process::Command;

use loopsmith_engine::media::discord::{
    self, DiscordStickerOptions, EncodedSticker, MAX_BYTES, MAX_SECS, SIDE, StickerFormat,
};
use loopsmith_engine::media::{Fit, Frames, MediaError, PixelFormat, Timing};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Content {
    Flat([u8; 3]),
    /// A diagonal gradient drifting slowly: the banding and shimmer case.
    Gradient,
    /// Fresh noise every frame: the worst case for size.
    Noise,
    /// Large bright shapes jumping across the frame.
    FastMotion,
    /// An opaque moving disc on a fully transparent background (RGBA).
    Sprite,
    /// Gradient, moving shapes and mild noise, like a diffusion model's output.
    Generated,
}

/// A cheap deterministic hash, so noise needs no RNG crate and is the same on every run.
fn hash(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

fn clip(content: Content, w: u32, h: u32, fps: u32, frames: usize) -> Frames {
    let alpha = content == Content::Sprite;
    let bpp = if alpha { 4 } else { 3 };
    let (wf, hf) = (w as f32, h as f32);
    let frames = (0..frames)
        .map(|i| {
            let t = i as f32 / fps as f32;
            let mut f = vec![0u8; (w * h) as usize * bpp];
            let mut p = 0;
            for y in 0..h {
                let yf = y as f32 / hf;
                for x in 0..w {
                    let xf = x as f32 / wf;
                    let rgba: [u8; 4] = match content {
                        Content::Flat(c) => [c[0], c[1], c[2], 255],
                        Content::Gradient => {
                            let s = xf + yf + 0.1 * t;
                            [
                                (255.0 * (s * 0.5).fract()) as u8,
                                (255.0 * yf) as u8,
                                (255.0 * (1.0 - xf)) as u8,
                                255,
                            ]
                        }
                        Content::Noise => {
                            let v = hash(p as u32 ^ (i as u32).wrapping_mul(0x9e37_79b9));
                            [v as u8, (v >> 8) as u8, (v >> 16) as u8, 255]
                        }
                        Content::FastMotion => {
                            let cx = (t * 3.7).fract();
                            let cy = (t * 2.3).fract();
                            let inside = (xf - cx).abs() < 0.25 && (yf - cy).abs() < 0.2;
                            if inside {
                                [255, (200.0 * cx) as u8, 40, 255]
                            } else {
                                [20, 30, (120.0 + 100.0 * cy) as u8, 255]
                            }
                        }
                        Content::Sprite => {
                            let cx = 0.3 + 0.4 * (t * 1.3).sin().abs();
                            let d = (xf - cx).powi(2) + (yf - 0.5).powi(2);
                            if d < 0.04 {
                                [40, (255.0 * xf) as u8, 200, 255]
                            } else {
                                [0, 0, 0, 0]
                            }
                        }
                        Content::Generated => {
                            let g = 0.5 + 0.5 * (6.0 * xf + 4.0 * yf + 1.5 * t).sin();
                            let mut c =
                                [60.0 + 150.0 * g, 40.0 + 120.0 * yf, 200.0 - 120.0 * g * xf];
                            let cx = 0.5 + 0.3 * (t * 2.0).cos();
                            let cy = 0.5 + 0.3 * (t * 2.0).sin();
                            if (xf - cx).powi(2) + (yf - cy).powi(2) < 0.02 {
                                c = [250.0, 230.0, 90.0];
                            }
                            if (xf - 1.0 + cx).abs() < 0.08 && (yf - 0.3).abs() < 0.15 {
                                c = [30.0, 200.0, 120.0];
                            }
                            let n = hash(p as u32 ^ (i as u32) << 20) % 9;
                            let n = n as f32 - 4.0;
                            [
                                (c[0] + n).clamp(0.0, 255.0) as u8,
                                (c[1] + n).clamp(0.0, 255.0) as u8,
                                (c[2] + n).clamp(0.0, 255.0) as u8,
                                255,
                            ]
                        }
                    };
                    f[p * bpp..p * bpp + bpp].copy_from_slice(&rgba[..bpp]);
                    p += 1;
                }
            }
            f
        })
        .collect();
    Frames {
        width: w,
        height: h,
        format: if alpha {
            PixelFormat::Rgba8
        } else {
            PixelFormat::Rgb8
        },
        fps,
        frames,
    }
}

/// What a player shows: RGBA frames with their durations.
#[derive(Debug)]
struct Played {
    frames: Vec<Vec<u8>>,
    secs: Vec<f64>,
    loops_forever: bool,
}

impl Played {
    fn total_secs(&self) -> f64 {
        self.secs.iter().sum()
    }

    /// Mean (r, g, b, a) over every pixel of every frame.
    fn mean(&self) -> [f64; 4] {
        let mut sum = [0f64; 4];
        let mut n = 0f64;
        for f in &self.frames {
            for px in f.chunks_exact(4) {
                for c in 0..4 {
                    sum[c] += px[c] as f64;
                }
                n += 1.0;
            }
        }
        sum.map(|s| s / n)
    }
}

fn side() -> usize {
    SIDE as usize
}

/// Plays an APNG: decodes with the png crate and composites by the APNG rules.
fn play_apng(bytes: &[u8]) -> Played {
    let mut reader = png::Decoder::new(Cursor::new(bytes))
        .read_info()
        .expect("the APNG decodes");
    let info = reader.info();
    assert_eq!((info.width, info.height), (SIDE, SIDE));
    assert_eq!(info.color_type, png::ColorType::Indexed);
    let actl = info.animation_control.expect("animated");
    let palette = info.palette.as_ref().expect("palette").to_vec();
    let trns = info.trns.as_ref().map(|t| t.to_vec()).unwrap_or_default();
    let depth = info.bit_depth as u8 as usize;
    let rgba = |i: usize| {
        let a = trns.get(i).copied().unwrap_or(255);
        [palette[i * 3], palette[i * 3 + 1], palette[i * 3 + 2], a]
    };
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let mut canvas = vec![0u8; side() * side() * 4];
    let mut played = Played {
        frames: Vec::new(),
        secs: Vec::new(),
        loops_forever: actl.num_plays == 0,
    };
    for _ in 0..actl.num_frames {
        let out = reader.next_frame(&mut buf).expect("frame decodes");
        let fc = reader.info().frame_control.expect("fcTL");
        let (w, h) = (fc.width as usize, fc.height as usize);
        for y in 0..h {
            let row = &buf[y * out.line_size..];
            for x in 0..w {
                let bit = x * depth;
                let v = (row[bit / 8] >> (8 - depth - bit % 8)) & ((1u16 << depth) - 1) as u8;
                let px = rgba(v as usize);
                let at = ((fc.y_offset as usize + y) * side() + fc.x_offset as usize + x) * 4;
                if fc.blend_op == png::BlendOp::Source || px[3] == 255 {
                    canvas[at..at + 4].copy_from_slice(&px);
                } else {
                    assert_eq!(px[3], 0, "only binary alpha is written");
                }
            }
        }
        played.frames.push(canvas.clone());
        let den = if fc.delay_den == 0 { 100 } else { fc.delay_den };
        played.secs.push(fc.delay_num as f64 / den as f64);
        if fc.dispose_op == png::DisposeOp::Background {
            for y in 0..h {
                let at = ((fc.y_offset as usize + y) * side() + fc.x_offset as usize) * 4;
                canvas[at..at + w * 4].fill(0);
            }
        }
    }
    played
}

/// Plays a GIF: decodes with the gif crate and composites by the disposal rules.
fn play_gif(bytes: &[u8]) -> Played {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options
        .read_info(Cursor::new(bytes))
        .expect("the GIF decodes");
    assert_eq!(
        (decoder.width(), decoder.height()),
        (SIDE as u16, SIDE as u16)
    );
    let mut canvas = vec![0u8; side() * side() * 4];
    let mut frames = Vec::new();
    let mut secs = Vec::new();
    while let Some(f) = decoder.read_next_frame().expect("frame decodes") {
        let (w, h) = (f.width as usize, f.height as usize);
        for y in 0..h {
            for x in 0..w {
                let px = &f.buffer[(y * w + x) * 4..(y * w + x) * 4 + 4];
                if px[3] != 0 {
                    let at = ((f.top as usize + y) * side() + f.left as usize + x) * 4;
                    canvas[at..at + 4].copy_from_slice(px);
                }
            }
        }
        frames.push(canvas.clone());
        assert!(f.delay >= 2, "browsers stretch delays under 2 cs");
        secs.push(f.delay as f64 / 100.0);
        if f.dispose == gif::DisposalMethod::Background {
            for y in 0..h {
                let at = ((f.top as usize + y) * side() + f.left as usize) * 4;
                canvas[at..at + w * 4].fill(0);
            }
        }
    }
    Played {
        frames,
        secs,
        loops_forever: decoder.repeat() == gif::Repeat::Infinite,
    }
}

/// Encodes in `format` and checks everything Discord checks, independently of the encoder.
fn sticker(frames: &Frames, opts: DiscordStickerOptions, format: StickerFormat) -> Played {
    let encoded = discord::encode(frames, &opts, format).expect("encodes");
    check(&encoded, format)
}

fn check(encoded: &EncodedSticker, format: StickerFormat) -> Played {
    let bytes = &encoded.bytes;
    assert!(
        bytes.len() <= MAX_BYTES,
        "{} bytes is over the limit",
        bytes.len()
    );
    let played = match format {
        StickerFormat::Apng => play_apng(bytes),
        StickerFormat::Gif => play_gif(bytes),
    };
    assert!(played.loops_forever, "loops forever");
    assert!(!played.frames.is_empty());
    assert_eq!(played.frames.len(), encoded.stored_frames);
    assert!(
        played.total_secs() <= MAX_SECS + 1e-9,
        "lasts {} s",
        played.total_secs()
    );
    ffprobe(bytes, format, encoded.stored_frames);
    played
}

/// Checks with ffprobe when it is installed: the codec, 320×320, the frame count and at most
/// 5 s.
fn ffprobe(bytes: &[u8], format: StickerFormat, frames: usize) {
    let (ext, codec) = match format {
        StickerFormat::Apng => ("png", "apng"),
        StickerFormat::Gif => ("gif", "gif"),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("sticker.{ext}"));
    std::fs::write(&path, bytes).expect("write sticker");
    let Ok(out) = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(&path)
        .output()
    else {
        return; // not installed
    };
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let stream = &json["streams"][0];
    assert_eq!(stream["codec_name"], codec, "{json}");
    assert_eq!(stream["width"], SIDE, "{json}");
    assert_eq!(stream["height"], SIDE, "{json}");
    let read: usize = stream["nb_read_frames"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("frame count");
    assert_eq!(read, frames, "{json}");
    // ffprobe gives no container duration for APNG; the packets' end is the duration then.
    let duration: f64 = match json["format"]["duration"].as_str() {
        Some(d) => d.parse().expect("duration"),
        None => packets_end(&path),
    };
    assert!(duration <= MAX_SECS + 0.011, "ffprobe says {duration} s");
}

/// When the last packet ends, by ffprobe.
fn packets_end(path: &std::path::Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let packets = json["packets"].as_array().expect("packets");
    assert!(!packets.is_empty(), "{json}");
    packets
        .iter()
        .map(|p| {
            let field = |name: &str| {
                p[name]
                    .as_str()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or_else(|| panic!("packet {name}: {json}"))
            };
            field("pts_time") + field("duration_time")
        })
        .fold(0.0, f64::max)
}

const FORMATS: [StickerFormat; 2] = [StickerFormat::Apng, StickerFormat::Gif];

fn opts(fit: Fit, timing: Timing) -> DiscordStickerOptions {
    DiscordStickerOptions { fit, timing }
}

#[test]
fn every_kind_of_content_fits_both_formats() {
    let cases = [
        (Content::Flat([30, 140, 220]), 320, 320, 12, 24),
        (Content::Gradient, 320, 320, 12, 36),
        (Content::Noise, 320, 320, 12, 24),
        (Content::FastMotion, 160, 90, 24, 48),
        (Content::Sprite, 320, 320, 10, 30),
        (Content::Generated, 200, 320, 15, 30),
    ];
    for (content, w, h, fps, n) in cases {
        let frames = clip(content, w, h, fps, n);
        for format in FORMATS {
            let encoded = discord::encode(&frames, &DiscordStickerOptions::default(), format)
                .unwrap_or_else(|e| panic!("{content:?} as {format:?}: {e}"));
            eprintln!("{content:?} {format:?}: {encoded:?}");
            check(&encoded, format);
        }
    }
}

#[test]
fn long_fast_clips_are_trimmed_or_sped_up_to_five_seconds() {
    // 10 s at 30 fps.
    let frames = clip(Content::FastMotion, 80, 80, 30, 300);
    for timing in [Timing::Trim, Timing::SpeedUp] {
        for format in FORMATS {
            let played = sticker(&frames, opts(Fit::Pad, timing), format);
            let secs = played.total_secs();
            assert!(
                secs > 4.9 && secs <= 5.0 + 1e-9,
                "{timing:?} {format:?}: {secs} s"
            );
        }
    }
}

#[test]
fn a_tiny_input_is_scaled_up_and_cropped_or_padded() {
    let square = clip(Content::Gradient, 64, 64, 8, 16);
    let wide = clip(Content::FastMotion, 96, 48, 8, 16);
    for format in FORMATS {
        sticker(&square, opts(Fit::Pad, Timing::Trim), format);
        let padded = sticker(&wide, opts(Fit::Pad, Timing::Trim), format);
        // Padding is transparent: the top rows of a wide clip are empty.
        assert_eq!(padded.frames[0][3], 0, "{format:?} pads with transparency");
        let cropped = sticker(&wide, opts(Fit::Crop, Timing::Trim), format);
        assert_eq!(cropped.frames[0][3], 255, "{format:?} crops to fill");
    }
}

#[test]
fn noise_still_fits_by_shrinking_the_picture() {
    // Five seconds of fresh noise: nothing compresses, so only a smaller picture fits. At
    // 5 fps the ladder has only colours to step through before shrinking.
    let frames = clip(Content::Noise, 320, 320, 5, 25);
    for format in FORMATS {
        let encoded = discord::encode(&frames, &DiscordStickerOptions::default(), format)
            .expect("noise fits somehow");
        eprintln!("noise {format:?}: {encoded:?}");
        assert!(encoded.picture_side < SIDE, "{encoded:?}");
        check(&encoded, format);
    }
}

#[test]
fn flat_red_comes_back_red() {
    let frames = clip(Content::Flat([255, 0, 0]), 320, 320, 12, 12);
    for format in FORMATS {
        let played = sticker(&frames, DiscordStickerOptions::default(), format);
        let [r, g, b, a] = played.mean();
        assert!(
            r > 252.0 && g < 3.0 && b < 3.0 && a > 254.0,
            "{format:?}: {r} {g} {b} {a}"
        );
    }
}

#[test]
fn playback_matches_the_input() {
    // 320×320 input needs no resampling, so what plays back can be compared with the input.
    for content in [Content::Gradient, Content::FastMotion, Content::Sprite] {
        let frames = clip(content, 320, 320, 12, 24);
        for format in FORMATS {
            let encoded = discord::encode(&frames, &DiscordStickerOptions::default(), format)
                .expect("encodes");
            assert_eq!(encoded.fps, 12, "{content:?} {format:?} fits at full rate");
            let played = check(&encoded, format);
            let mut shown = Vec::new();
            for (f, &secs) in played.frames.iter().zip(&played.secs) {
                let n = (secs * 12.0).round() as usize;
                shown.extend(std::iter::repeat_n(f, n));
            }
            assert_eq!(shown.len(), frames.frames.len(), "{content:?} {format:?}");
            let bpp = frames.format.bytes_per_pixel();
            // Per pixel: palette, dithering and the "looks the same" tolerances. Per frame:
            // the average colour, which dithering keeps and a wrong palette or a stale canvas
            // would not.
            let mut pixel_err = 0f64;
            let mut pixels = 0f64;
            let mut worst_frame = 0f64;
            for (got, want) in shown.iter().zip(&frames.frames) {
                let mut sums = [0f64; 6];
                for (g, w) in got.chunks_exact(4).zip(want.chunks_exact(bpp)) {
                    let alpha = if bpp == 4 { w[3] } else { 255 };
                    assert_eq!(
                        g[3] >= 128,
                        alpha >= 128,
                        "{content:?} {format:?}: alpha kept"
                    );
                    if alpha >= 128 {
                        for c in 0..3 {
                            pixel_err += (g[c] as f64 - w[c] as f64).abs();
                            sums[c] += g[c] as f64;
                            sums[3 + c] += w[c] as f64;
                        }
                        pixels += 1.0;
                    }
                }
                let count = got.chunks_exact(4).filter(|p| p[3] >= 128).count().max(1) as f64;
                for c in 0..3 {
                    worst_frame = worst_frame.max((sums[c] - sums[3 + c]).abs() / count);
                }
            }
            let mean = pixel_err / (3.0 * pixels);
            eprintln!("{content:?} {format:?}: {mean:.2} per pixel, {worst_frame:.2} per frame");
            // A wide 3-D gradient spreads 255 colours thin, and a global palette then makes
            // whole frames lean one way as the gradient drifts through its cells; the flat
            // contents have few colours, so any error there is a stale or wrong pixel.
            let (pixel_limit, frame_limit) = match content {
                Content::Gradient => (8.0, 14.0),
                _ => (3.0, 5.0),
            };
            assert!(
                mean < pixel_limit,
                "{content:?} {format:?}: mean error {mean}"
            );
            assert!(
                worst_frame < frame_limit,
                "{content:?} {format:?}: a frame's average is off by {worst_frame}"
            );
        }
    }
}

#[test]
fn bad_input_is_refused_clearly() {
    let mut empty = clip(Content::Gradient, 32, 32, 12, 1);
    empty.frames.clear();
    let mut ragged = clip(Content::Gradient, 32, 32, 12, 3);
    ragged.frames[1].pop();
    let mut still = clip(Content::Gradient, 32, 32, 12, 3);
    still.fps = 0;
    for (frames, why) in [
        (empty, "no frames"),
        (ragged, "frame 1 has"),
        (still, "frame rate is 0"),
    ] {
        for format in FORMATS {
            match discord::encode(&frames, &DiscordStickerOptions::default(), format) {
                Err(MediaError::InvalidFrames(message)) => {
                    assert!(message.contains(why), "{message}")
                }
                other => panic!("{why}: expected InvalidFrames, got {other:?}"),
            }
        }
    }
    let mut empty = clip(Content::Gradient, 32, 32, 12, 1);
    empty.frames.clear();
    let opts = DiscordStickerOptions::default();
    assert!(matches!(
        discord::encode_apng(&empty, &opts),
        Err(MediaError::InvalidFrames(_))
    ));
    assert!(matches!(
        discord::encode_gif(&empty, &opts),
        Err(MediaError::InvalidFrames(_))
    ));
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        any::<[u8; 3]>().prop_map(Content::Flat),
        Just(Content::Gradient),
        Just(Content::Noise),
        Just(Content::FastMotion),
        Just(Content::Sprite),
        Just(Content::Generated),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn any_clip_becomes_a_valid_sticker(
        content in content(),
        w in 8u32..200,
        h in 8u32..200,
        fps in 1u32..60,
        secs in 0.05f64..8.0,
        crop in any::<bool>(),
        speed_up in any::<bool>(),
        gif in any::<bool>(),
    ) {
        let n = ((secs * fps as f64).round() as usize).max(1);
        let frames = clip(content, w, h, fps, n);
        let fit = if crop { Fit::Crop } else { Fit::Pad };
        let timing = if speed_up { Timing::SpeedUp } else { Timing::Trim };
        let format = if gif { StickerFormat::Gif } else { StickerFormat::Apng };
        let encoded = discord::encode(&frames, &opts(fit, timing), format)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        check(&encoded, format);
    }
}
