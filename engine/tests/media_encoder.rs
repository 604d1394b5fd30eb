//! One clip in, every platform's file out: the encoder entry point directly, and a whole job
//! through the engine with the real encoders.

mod common;

use std::sync::Arc;

use common::content::{self, Content};
use common::*;
use loopsmith_engine::media::inspect::{Container, inspect};
use loopsmith_engine::media::sticker::{TELEGRAM_EMOJI, TELEGRAM_STICKER, check};
use loopsmith_engine::media::{Encoder, MediaEncoder};
use loopsmith_engine::protocol::{
    Aspect, BackendChoice, Fit, JobState, OutputKind, Params, Platform, Timing,
};
use loopsmith_engine::{Clip, Engine, GenerationRequest, MemoryStore};

fn params(outputs: Vec<OutputKind>) -> Params {
    Params {
        prompt: "x".into(),
        user_prompt: "x".into(),
        negative_prompt: String::new(),
        duration_secs: 4.0,
        fps: 24,
        aspect: Aspect::Square,
        motion: 2,
        seed: 1,
        guidance: None,
        style: "none".into(),
        outputs,
        backend: BackendChoice::Auto,
        fit: Fit::Pad,
        timing: Timing::Trim,
        seamless_loop: true,
        image: None,
    }
}

/// Checks one artifact against its platform's rules with our reader, and ffprobe if present.
fn assert_artifact_valid(kind: OutputKind, bytes: &[u8], path: &std::path::Path) {
    let info = inspect(bytes).expect("readable");
    match kind {
        OutputKind::WebmSticker => check(bytes, &TELEGRAM_STICKER).expect("valid sticker"),
        OutputKind::WebmEmoji => check(bytes, &TELEGRAM_EMOJI).expect("valid emoji"),
        OutputKind::Mp4 => {
            assert_eq!(
                (info.container, info.codec.as_str()),
                (Container::Mp4, "h264")
            );
            assert_eq!(info.chroma_420, Some(true));
            assert_eq!(info.fast_start, Some(true));
            assert_eq!(info.audio_tracks, 0);
            assert!(bytes.len() <= 50_000_000);
        }
        OutputKind::Apng | OutputKind::Gif => {
            assert_eq!((info.width, info.height), (320, 320));
            assert!(bytes.len() <= 524_288, "{} bytes", bytes.len());
            assert!(info.duration_secs <= 5.0, "{} s", info.duration_secs);
            assert_eq!(info.loops, Some(0), "loops forever");
        }
    }
    if let Some(p) = ffprobe::probe(path) {
        let expected = match kind {
            OutputKind::WebmSticker | OutputKind::WebmEmoji => "vp9",
            OutputKind::Mp4 => "h264",
            OutputKind::Apng => "apng",
            OutputKind::Gif => "gif",
        };
        assert_eq!(p.codec, expected);
        assert_eq!((p.width, p.height), (info.width, info.height));
        assert_eq!(p.audio_streams, 0);
    }
}

#[test]
fn one_clip_becomes_every_requested_file() {
    let frames = content::clip(Content::Generated, 256, 144, 24, 96, false);
    let clip = Clip {
        width: 256,
        height: 144,
        fps: 24,
        frames: frames.frames,
        seed: 1,
        backend: "test".into(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let all = OutputKind::ALL.to_vec();
    let artifacts = MediaEncoder
        .encode(&clip, &params(all.clone()), dir.path())
        .expect("encodes");
    let mut kinds: Vec<_> = artifacts.iter().map(|a| a.kind).collect();
    kinds.sort();
    assert_eq!(kinds, all, "exactly the outputs asked for");
    for a in &artifacts {
        let bytes = std::fs::read(&a.path).expect("artifact on disk");
        assert_eq!(bytes.len() as u64, a.bytes);
        assert_artifact_valid(a.kind, &bytes, &a.path);
    }
    // Only the files themselves are left: no partial files.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");

    let only_emoji = MediaEncoder
        .encode(&clip, &params(vec![OutputKind::WebmEmoji]), dir.path())
        .expect("encodes");
    assert_eq!(only_emoji.len(), 1);
}

#[test]
fn a_malformed_clip_is_an_error_not_a_file() {
    let clip = Clip {
        width: 16,
        height: 16,
        fps: 24,
        frames: vec![vec![0; 10]],
        seed: 1,
        backend: "test".into(),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let err = MediaEncoder
        .encode(&clip, &params(vec![OutputKind::WebmSticker]), dir.path())
        .expect_err("bad frame");
    assert!(
        err.to_string()
            .starts_with("invalid frames: frame 0 has 10 bytes"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}

#[tokio::test]
async fn a_job_through_the_engine_ends_with_valid_stickers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path());
    let engine = Engine::start(
        &settings,
        Arc::new(MemoryStore::new()),
        FakeBackend::new("local"),
        Arc::new(MediaEncoder),
    )
    .expect("engine starts");
    let mut req = GenerationRequest::new(user(Platform::Telegram, "1"), "a red ball");
    req.overrides.outputs = Some(vec![OutputKind::WebmSticker, OutputKind::Mp4]);
    let mut submitted = engine.submit(req).await.expect("accepted");
    let events = until_finished(&mut submitted).await;
    let JobState::Done { artifacts } = final_state(&events) else {
        panic!("expected done: {events:?}");
    };
    assert_eq!(artifacts.len(), 2);
    for a in &artifacts {
        let bytes = std::fs::read(&a.path).expect("artifact");
        assert_artifact_valid(a.kind, &bytes, &a.path);
    }
}
