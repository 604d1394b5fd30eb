//! `loopsmith doctor` on a healthy and on a broken set-up: its whole output, snapshot-tested
//! with the machine-specific parts (temporary folders, library path, free space) masked.

use std::path::Path;
use std::process::{Command, Output};

fn doctor(config: &Path, dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .arg("--config")
        .arg(config)
        .arg("doctor")
        .current_dir(dir)
        .env_remove("LOOPSMITH_CONFIG")
        .env_remove("LOOPSMITH_LOG")
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("DISCORD_TOKEN")
        .env_remove("FAL_KEY")
        // Keep the GPU lines the same on a machine with a driver.
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("the binary runs")
}

fn fixture_bundle() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/fixtures/tiny-animatediff")
        .display()
        .to_string()
}

/// The report with what differs between machines replaced by placeholders; the ONNX Runtime
/// search listing (every candidate path of this machine) is dropped.
fn normalized(out: &Output, tmp: &Path) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout)
        .replace(&tmp.display().to_string(), "[tmp]")
        .replace(&fixture_bundle(), "[fixture]");
    let mut lines = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("      ") {
            continue;
        }
        let line = if let Some((head, _)) = line.split_once(" from /") {
            format!("{head} from [library]")
        } else if line.starts_with("ok    disk space") {
            let (_, tail) = line.split_once(" GiB free").expect("free space");
            format!("ok    disk space             [n] GiB free{tail}")
        } else if line.starts_with("ok    libvpx") {
            "ok    libvpx                 [version] (VP9 encoder for stickers)".to_string()
        } else if line.starts_with("--    execution provider") {
            "--    execution provider     cpu ([why not CUDA])".to_string()
        } else {
            line.to_string()
        };
        lines.push(line);
    }
    format!("exit code: {:?}\n{}\n", out.status.code(), lines.join("\n"))
}

#[test]
fn doctor_on_a_healthy_set_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("loopsmith.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = \"{}/data\"\n[local]\nmodel = \"{}\"\ndevice = \"cpu\"\n",
            dir.path().display(),
            fixture_bundle()
        ),
    )
    .expect("config");
    let out = doctor(&config, dir.path());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        normalized(&out, dir.path())
    );
    insta::assert_snapshot!(normalized(&out, dir.path()));
}

#[test]
fn doctor_on_a_broken_set_up_names_each_problem_and_its_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on: bind one, then let it go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    std::fs::write(dir.path().join("a-file"), b"not a folder").expect("file");
    let config = dir.path().join("loopsmith.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = \"{tmp}/a-file/data\"\n\
             [local]\nmodel = \"{tmp}/no-such-bundle\"\ndevice = \"cpu\"\n\
             [telegram]\nenabled = true\napi_url = \"http://127.0.0.1:{closed}\"\n",
            tmp = dir.path().display()
        ),
    )
    .expect("config");
    let out = doctor(&config, dir.path());
    assert_eq!(out.status.code(), Some(2));
    let report = normalized(&out, dir.path()).replace(&closed.to_string(), "[port]");
    insta::assert_snapshot!(report);
}
