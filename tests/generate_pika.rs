//! `loopsmith generate --backend pika` end to end: the binary against a fake fal queue on
//! loopback, with no local model at all.

use std::process::Command;

#[path = "common/media.rs"]
mod media;

use loopsmith_engine::media::decode::decode_mp4;
use loopsmith_fakes::fal::{FakeFal, Media, Route};
use media::five_second_mp4;

const KEY: &str = "canary-cli-key-4d2e";

fn generate(fal: &FakeFal, dir: &std::path::Path, extra: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loopsmith"));
    command
        .args([
            "generate",
            "a red ball bouncing",
            "--backend",
            "pika",
            "--out",
            "s.mp4",
        ])
        .args(["--duration", "3", "--seed", "7", "--no-crossfade"])
        .current_dir(dir)
        .env_remove("LOOPSMITH_CONFIG")
        .env("LOOPSMITH_STORAGE__DATA_DIR", dir.join("data"))
        .env("LOOPSMITH_LOCAL__ENABLED", "false")
        .env("LOOPSMITH_PIKA__ENABLED", "true")
        .env("LOOPSMITH_PIKA__BASE_URL", fal.base_url())
        .env("LOOPSMITH_PIKA__STORAGE_URL", fal.base_url())
        .env("LOOPSMITH_PIKA__MEDIA_HOSTS", "127.0.0.1")
        .env("LOOPSMITH_PIKA__POLL_INTERVAL_MS", "20")
        .env("LOOPSMITH_LOG", "debug");
    for (k, v) in extra {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pika_alone_renders_a_sticker_and_never_prints_the_key() {
    let fal = FakeFal::start(KEY).await.expect("fake fal");
    fal.put_media(
        "result.mp4",
        Media::File {
            bytes: five_second_mp4().into(),
            content_type: "video/mp4".into(),
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let fal = std::sync::Arc::new(fal);
    let run = {
        let fal = fal.clone();
        tokio::task::spawn_blocking(move || generate(&fal, &path, &[("FAL_KEY", KEY)]))
    };
    let out = run.await.expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("backend pika"), "{stdout}");
    let clip =
        decode_mp4(&std::fs::read(dir.path().join("s.mp4")).expect("written")).expect("decodes");
    assert!(
        (clip.duration_secs() - 3.0).abs() < 0.2,
        "cut to 3 s: {}",
        clip.duration_secs()
    );
    assert_eq!(fal.count(Route::Submit), 1);
    assert!(
        !stdout.contains("canary") && !stderr.contains("canary"),
        "{stderr}"
    );
}

#[test]
fn pika_without_a_key_is_refused_plainly() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let fal = runtime.block_on(FakeFal::start(KEY)).expect("fake fal");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = generate(&fal, dir.path(), &[("FAL_KEY", "")]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Pika is enabled but FAL_KEY is not set"),
        "{stderr}"
    );
    assert!(fal.recorded().is_empty());
}
