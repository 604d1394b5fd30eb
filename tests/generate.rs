//! `loopsmith generate` end to end with a real model bundle (the tiny random-weight
//! AnimateDiff parity fixture): the real ONNX pipeline, the engine, the encoders, a file.

use std::path::Path;
use std::process::Command;

use loopsmith_engine::media::inspect::inspect;
use loopsmith_engine::media::sticker::{TELEGRAM_STICKER, check};

fn fixture_bundle() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/fixtures/tiny-animatediff")
        .display()
        .to_string()
}

fn generate(dir: &Path, args: &[&str]) -> std::process::Output {
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "ORT_DYLIB_PATH must name libonnxruntime.so.1.31.x (`cargo xtask test` sets it)"
    );
    Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .arg("generate")
        .args(args)
        .current_dir(dir)
        .env("LOOPSMITH_LOCAL__MODEL", fixture_bundle())
        .env("LOOPSMITH_LOCAL__DEVICE", "cpu")
        .env_remove("LOOPSMITH_CONFIG")
        .output()
        .expect("the binary runs")
}

#[test]
fn a_prompt_becomes_a_valid_telegram_sticker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = generate(
        dir.path(),
        &["a red ball bouncing", "--out", "s.webm", "--seed", "42"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("wrote s.webm ("), "{stdout}");
    assert!(stdout.contains("seed 42, backend local"), "{stdout}");
    let bytes = std::fs::read(dir.path().join("s.webm")).expect("sticker written");
    check(&bytes, &TELEGRAM_STICKER).expect("a valid Telegram video sticker");
}

/// README's first command, with no configuration at all: the embedded model renders it into
/// a valid sticker (what it draws is checked in models/tests/tiny_conditioning.rs).
#[test]
fn the_quick_start_command_works_with_the_embedded_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .args([
            "generate",
            "a red ball bouncing on a blue background",
            "--out",
            "s.webm",
        ])
        .args(["--seed", "7"])
        .current_dir(dir.path())
        .env_remove("LOOPSMITH_CONFIG")
        .env_remove("LOOPSMITH_LOCAL__MODEL")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("backend local"), "{stdout}");
    let bytes = std::fs::read(dir.path().join("s.webm")).expect("sticker written");
    check(&bytes, &TELEGRAM_STICKER).expect("a valid Telegram video sticker");
}

#[test]
fn json_summary_and_other_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = generate(
        dir.path(),
        &[
            "a blue box",
            "--out",
            "clip.mp4",
            "--json",
            "--duration",
            "5",
            "--seed",
            "3",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(summary["path"], "clip.mp4");
    assert_eq!(summary["seed"], 3);
    assert_eq!(summary["backend"], "local");
    let bytes = std::fs::read(dir.path().join("clip.mp4")).expect("written");
    assert_eq!(summary["bytes"].as_u64(), Some(bytes.len() as u64));
    let info = inspect(&bytes).expect("readable");
    assert_eq!(info.codec, "h264");
    // The loop cross-fade folds up to half a second of the tail into the head.
    assert!(
        (4.5 - 0.05..=5.0 + 0.05).contains(&info.duration_secs),
        "{} s",
        info.duration_secs
    );
    assert!(summary["timings_ms"]["total"].as_u64().is_some());

    let out = generate(dir.path(), &["a blue box", "--out", "sticker.gif"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info = inspect(&std::fs::read(dir.path().join("sticker.gif")).expect("written"))
        .expect("readable");
    assert_eq!((info.width, info.height), (320, 320));
}

#[test]
fn a_bad_bundle_path_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .args(["generate", "x"])
        .current_dir(dir.path())
        .env("LOOPSMITH_LOCAL__MODEL", "/nowhere/bundle")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: local.model: ") && stderr.contains("/nowhere/bundle"),
        "{stderr}"
    );
}

#[test]
fn backend_order_decides_which_backends_may_render() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .args(["generate", "a red ball", "--out", "s.webm"])
        .current_dir(dir.path())
        .env("LOOPSMITH_LOCAL__MODEL", fixture_bundle())
        .env("LOOPSMITH_ENGINE__BACKEND_ORDER", "pika")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("engine.backend_order lists none of the backends this build has"),
        "{stderr}"
    );
    assert!(!dir.path().join("s.webm").exists());
}
