//! The binary from the outside: help texts, exit codes and messages.

use std::process::{Command, Output};

fn loopsmith(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .args(args)
        .current_dir(dir)
        .env_remove("LOOPSMITH_CONFIG")
        .env_remove("LOOPSMITH_LOG")
        .env_remove("TELEGRAM_BOT_TOKEN")
        .env_remove("DISCORD_TOKEN")
        .env_remove("FAL_KEY")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_texts() {
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in [
        "",
        "generate",
        "serve",
        "console",
        "doctor",
        "models",
        "models list",
        "models info",
        "models verify",
        "gen-config",
    ] {
        let mut args: Vec<&str> = sub.split_whitespace().collect();
        args.push("--help");
        let out = loopsmith(&args, dir.path());
        assert!(out.status.success(), "{sub} --help");
        let name = if sub.is_empty() {
            "help".to_string()
        } else {
            format!("help_{}", sub.replace(' ', "_"))
        };
        insta::assert_snapshot!(name, text(&out.stdout));
    }
}

#[test]
fn gen_config_prints_the_committed_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = loopsmith(&["gen-config"], dir.path());
    assert!(out.status.success());
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/loopsmith.example.toml"
    ))
    .expect("example file");
    assert_eq!(text(&out.stdout), example);
}

#[test]
fn generate_checks_the_request_then_says_plainly_when_no_backend_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = loopsmith(&["generate", "   "], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: Please describe the sticker you want; the prompt is empty.\n"
    );

    let out = loopsmith(&["generate", "a red ball", "--duration", "12"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: Duration must be between 3 and 10 seconds; you asked for 12.\n"
    );

    let out = loopsmith(
        &["generate", "a red ball", "--style", "vaporwave"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("There is no style called \"vaporwave\""));

    let out = loopsmith(&["generate", "a red ball", "--out", "s.jpg"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot tell the sticker format from `s.jpg`"));

    // With the local model off and no Pika, nothing can render: said plainly, exit 3.
    let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .args([
            "generate",
            "a red ball bouncing on a blue background",
            "--out",
            "s.webm",
        ])
        .current_dir(dir.path())
        .env_remove("LOOPSMITH_CONFIG")
        .env_remove("FAL_KEY")
        .env("LOOPSMITH_LOCAL__ENABLED", "false")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("not available: no render backend is available"),
        "{stderr}"
    );
    assert!(stderr.contains("Nothing was rendered."), "{stderr}");
    assert!(
        !dir.path().join("s.webm").exists(),
        "no file pretends to be a sticker"
    );
}

#[test]
fn later_capabilities_refuse_with_exit_code_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    // `console` exists now; tests/console.rs covers how it starts and refuses.
    let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("LOOPSMITH_CONFIG")
        .env_remove("FAL_KEY")
        .env("LOOPSMITH_LOCAL__ENABLED", "false")
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).starts_with("not available: "));
}

#[test]
fn a_bad_config_is_exit_code_2_naming_key_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[local]\ndevice = \"gpu\"\n").expect("write");
    let path = file.display().to_string();
    for args in [
        &["--config", path.as_str(), "serve"][..],
        &["generate", "x", "--config", path.as_str()],
    ] {
        let out = loopsmith(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("`local.device`")
                && stderr.contains(&path)
                && stderr.contains("auto, cpu or cuda:N"),
            "{stderr}"
        );
    }
}

#[test]
fn doctor_reports_each_check_and_never_prints_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let canary = "987654321:CANARY_TOKEN_that_must_never_be_printed_x";
    let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .arg("doctor")
        .current_dir(dir.path())
        .env("TELEGRAM_BOT_TOKEN", canary)
        .env("LOOPSMITH_TELEGRAM__ENABLED", "true")
        .env("LOOPSMITH_DISCORD__ENABLED", "true")
        .env_remove("DISCORD_TOKEN")
        .output()
        .expect("runs");
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("CANARY") && !text(&out.stderr).contains("CANARY"));
    assert!(
        stdout.contains("ok    TELEGRAM_BOT_TOKEN     set (value not shown)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAIL  DISCORD_TOKEN          missing, but discord.enabled = true"),
        "{stdout}"
    );
    assert!(stdout.contains("ok    database"), "{stdout}");
    assert_eq!(out.status.code(), Some(2), "a required secret is missing");

    let out = loopsmith(&["doctor"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn models_lists_and_explains_what_it_cannot_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = loopsmith(&["models", "list"], dir.path());
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    // The embedded model, found in the checkout this binary was built from, and listed.
    let checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny/bundle");
    assert!(
        stdout.contains(&format!("embedded    {}", checkout.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("tiny-pixel-shapes  pixel  32×32, 16 frames"),
        "{stdout}"
    );

    let out = loopsmith(&["models", "info", "no-such-bundle"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("no-such-bundle"),
        "{stderr}"
    );
}
