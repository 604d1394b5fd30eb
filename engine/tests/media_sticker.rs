//! Telegram stickers and emoji: every output is inside Telegram's rules, checked by the
//! encoder itself (our reader) and here again by ffprobe where it is installed.

mod common;

use std::path::Path;
use std::process::Command;

use common::content::{self, Content};
use common::ffprobe;
use loopsmith_engine::media::inspect::inspect;
use loopsmith_engine::media::sticker::{
    StickerOptions, StickerSpec, TELEGRAM_EMOJI, TELEGRAM_STICKER, check, encode_sticker,
};
use loopsmith_engine::media::{Fit, Frames, MediaError, PixelFormat, Timing};
use proptest::prelude::*;

/// Checks a sticker independently of the encoder: ffprobe when installed, our reader always.
fn assert_valid(bytes: &[u8], spec: &StickerSpec) {
    check(bytes, spec).expect("inside the rules");
    let info = inspect(bytes).expect("readable");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.webm");
    std::fs::write(&path, bytes).expect("write");
    if let Some(p) = ffprobe::probe(&path) {
        assert_eq!(p.codec, "vp9");
        assert_eq!(p.profile.as_deref(), Some("Profile 0"));
        assert_eq!(p.pix_fmt.as_deref(), Some("yuv420p"));
        assert_eq!((p.width, p.height), (info.width, info.height));
        assert_eq!(p.audio_streams, 0);
        assert_eq!(p.video_streams, 1);
        assert!(p.width.max(p.height) == spec.side && p.width.min(p.height) <= spec.side);
        let duration = p.duration_secs.expect("duration");
        assert!(duration < 3.0, "ffprobe says {duration} s");
        assert_eq!(p.frames, Some(info.frames));
    }
}

/// Decodes a WebM with ffmpeg into RGB frames, when ffmpeg is installed.
fn ffmpeg_decode(bytes: &[u8], width: u32, height: u32) -> Option<Vec<Vec<u8>>> {
    if !ffprobe::available() {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.webm");
    std::fs::write(&path, bytes).expect("write");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-c:v", "libvpx-vp9", "-i"])
        .arg(&path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgba", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        out.stdout
            .chunks((width * height * 4) as usize)
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

fn psnr_rgb(a: &[u8], a_bpp: usize, b: &[u8], b_bpp: usize) -> f64 {
    let (mut sum, mut n) = (0.0, 0.0);
    for (pa, pb) in a.chunks(a_bpp).zip(b.chunks(b_bpp)) {
        for c in 0..3 {
            let d = pa[c] as f64 - pb[c] as f64;
            sum += d * d;
            n += 1.0;
        }
    }
    10.0 * (255.0f64 * 255.0 / (sum / n).max(1e-9)).log10()
}

#[test]
fn a_generated_clip_becomes_a_faithful_valid_sticker() {
    let clip = content::clip(Content::Generated, 512, 512, 16, 48, false);
    let sticker =
        encode_sticker(&clip, &TELEGRAM_STICKER, StickerOptions::default()).expect("encodes");
    assert_valid(&sticker.bytes, &TELEGRAM_STICKER);
    assert_eq!(
        (sticker.frames, sticker.fps, sticker.attempts),
        (47, 16, 1),
        "3.0 s is cut to under 3 s"
    );
    assert!(
        sticker.bytes.len() < 150_000,
        "{} bytes",
        sticker.bytes.len()
    );
    if let Some(decoded) = ffmpeg_decode(&sticker.bytes, 512, 512) {
        assert_eq!(decoded.len(), 47);
        for (i, frame) in decoded.iter().enumerate() {
            let p = psnr_rgb(&clip.frames[i], 3, frame, 4);
            assert!(p > 32.0, "frame {i}: {p:.1} dB");
        }
    }
}

#[test]
fn shapes_fit_the_box_with_one_side_at_512() {
    for (w, h, fit, expect) in [
        (1280, 720, Fit::Pad, (512, 288)),
        (720, 1280, Fit::Pad, (288, 512)),
        (1280, 720, Fit::Crop, (512, 512)),
        (64, 64, Fit::Pad, (512, 512)),
        (300, 200, Fit::Pad, (512, 340)),
    ] {
        let clip = content::clip(Content::Gradient, w, h, 12, 12, false);
        let s = encode_sticker(
            &clip,
            &TELEGRAM_STICKER,
            StickerOptions {
                fit,
                timing: Timing::Trim,
            },
        )
        .expect("encodes");
        let info = inspect(&s.bytes).expect("readable");
        assert_eq!((info.width, info.height), expect, "{w}x{h} {fit:?}");
        assert_valid(&s.bytes, &TELEGRAM_STICKER);
    }
}

#[test]
fn custom_emoji_are_100_by_100() {
    let clip = content::clip(Content::FastMotion, 320, 180, 24, 30, false);
    for fit in [Fit::Pad, Fit::Crop] {
        let s = encode_sticker(
            &clip,
            &TELEGRAM_EMOJI,
            StickerOptions {
                fit,
                timing: Timing::Trim,
            },
        )
        .expect("encodes");
        let info = inspect(&s.bytes).expect("readable");
        assert_eq!((info.width, info.height), (100, 100));
        assert_valid(&s.bytes, &TELEGRAM_EMOJI);
    }
}

#[test]
fn long_clips_are_trimmed_or_sped_up_and_fast_ones_slowed_to_30_fps() {
    // 10 s at 60 fps: frame t shows brightness t/600 so a test can see which part survived.
    let mut clip = content::clip(Content::Flat, 64, 64, 60, 600, false);
    for (t, frame) in clip.frames.iter_mut().enumerate() {
        frame.fill((t * 255 / 600) as u8);
    }
    let trimmed =
        encode_sticker(&clip, &TELEGRAM_STICKER, StickerOptions::default()).expect("encodes");
    let fast = encode_sticker(
        &clip,
        &TELEGRAM_STICKER,
        StickerOptions {
            fit: Fit::Pad,
            timing: Timing::SpeedUp,
        },
    )
    .expect("encodes");
    for s in [&trimmed, &fast] {
        assert_valid(&s.bytes, &TELEGRAM_STICKER);
        assert_eq!((s.fps, s.frames), (30, 89));
    }
    if let (Some(a), Some(b)) = (
        ffmpeg_decode(&trimmed.bytes, 512, 512),
        ffmpeg_decode(&fast.bytes, 512, 512),
    ) {
        let last = |frames: &[Vec<u8>]| frames.last().expect("frames")[0];
        assert!(
            last(&a) < 90,
            "a trimmed clip ends early in the source: {}",
            last(&a)
        );
        assert!(
            last(&b) > 200,
            "a sped-up clip reaches the end: {}",
            last(&b)
        );
    }
}

#[test]
fn a_clip_too_rich_for_good_quality_still_fits() {
    let clip = content::clip(Content::Noise, 512, 512, 30, 90, false);
    let s =
        encode_sticker(&clip, &TELEGRAM_STICKER, StickerOptions::default()).expect("fits somehow");
    assert!(
        s.attempts > 1,
        "noise at 30 fps needs more than the first try"
    );
    assert!(s.bytes.len() <= 256_000);
    assert_valid(&s.bytes, &TELEGRAM_STICKER);
}

#[test]
fn transparency_survives_as_vp9_alpha() {
    let clip = content::clip(Content::Generated, 256, 256, 12, 24, true);
    let s = encode_sticker(&clip, &TELEGRAM_STICKER, StickerOptions::default()).expect("encodes");
    let info = inspect(&s.bytes).expect("readable");
    assert!(info.alpha, "AlphaMode is set");
    assert_valid(&s.bytes, &TELEGRAM_STICKER);
    if let Some(decoded) = ffmpeg_decode(&s.bytes, 512, 512) {
        let alpha: Vec<u8> = decoded[0].chunks(4).map(|p| p[3]).collect();
        let clear = alpha.iter().filter(|&&a| a < 16).count() as f64 / alpha.len() as f64;
        let solid = alpha.iter().filter(|&&a| a > 240).count();
        assert!(
            clear > 0.5,
            "most of the background is transparent: {clear:.2}"
        );
        assert!(solid > 1000, "the shape is opaque");
    }
}

#[test]
fn bad_frames_are_refused_clearly() {
    let empty = Frames {
        width: 64,
        height: 64,
        format: PixelFormat::Rgb8,
        fps: 24,
        frames: vec![],
    };
    let err = encode_sticker(&empty, &TELEGRAM_STICKER, StickerOptions::default())
        .expect_err("no frames");
    assert!(matches!(err, MediaError::InvalidFrames(_)));
    assert_eq!(err.to_string(), "invalid frames: there are no frames");
    let short = Frames {
        frames: vec![vec![0; 10]],
        ..empty
    };
    let err = encode_sticker(&short, &TELEGRAM_STICKER, StickerOptions::default())
        .expect_err("short frame");
    assert_eq!(
        err.to_string(),
        "invalid frames: frame 0 has 10 bytes; 64x64 Rgb8 needs 12288"
    );
}

#[test]
fn check_refuses_files_outside_the_rules() {
    let clip = content::clip(Content::Gradient, 64, 64, 12, 12, false);
    let emoji = encode_sticker(&clip, &TELEGRAM_EMOJI, StickerOptions::default()).expect("encodes");
    let err = check(&emoji.bytes, &TELEGRAM_STICKER).expect_err("100 px is not a 512 px sticker");
    assert_eq!(
        err.to_string(),
        "Telegram video sticker breaks a platform rule: it is 100x100; the box is 512 px"
    );
    let tiny = StickerSpec {
        max_bytes: 10,
        ..TELEGRAM_EMOJI
    };
    let err = check(&emoji.bytes, &tiny).expect_err("too big");
    assert!(err.to_string().contains("the limit is 10"), "{err}");
    let fixture = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/media/h264_high_faststart.mp4"),
    );
    if let Ok(mp4) = fixture {
        let err = check(&mp4, &TELEGRAM_STICKER).expect_err("not WebM");
        assert!(err.to_string().contains("rather than WebM"), "{err}");
    }
}

fn any_content() -> impl Strategy<Value = Content> {
    prop::sample::select(content::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// Random sizes, aspects, durations, rates and content: every sticker is valid.
    #[test]
    fn every_sticker_is_valid(
        w in 16u32..700, h in 16u32..700, fps in 8u32..61, secs in 0.3f64..6.0,
        what in any_content(), alpha in any::<bool>(), crop in any::<bool>(), speed in any::<bool>(), emoji in any::<bool>(),
    ) {
        let frames = ((secs * fps as f64) as usize).clamp(1, 120);
        let clip = content::clip(what, w & !1, h & !1, fps, frames, alpha);
        let spec = if emoji { TELEGRAM_EMOJI } else { TELEGRAM_STICKER };
        let options = StickerOptions {
            fit: if crop { Fit::Crop } else { Fit::Pad },
            timing: if speed { Timing::SpeedUp } else { Timing::Trim },
        };
        let s = encode_sticker(&clip, &spec, options).expect("encodes");
        assert_valid(&s.bytes, &spec);
    }
}
