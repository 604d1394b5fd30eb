//! README stays true: its configuration reference is the one the config crate generates, and
//! the `cargo run --release -- …` lines it shows that are quick and need no network or model
//! (help, gen-config, doctor, models) run as written and end as documented.
//!
//! After changing a setting, refresh the reference with
//! `UPDATE_README=1 cargo test --test readme`.

use std::path::Path;
use std::process::Command;

const START: &str = "<!-- config-reference:start -->\n";
const END: &str = "<!-- config-reference:end -->";

fn readme_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")
}

#[test]
fn the_configuration_reference_is_generated_from_the_schema() {
    let readme = std::fs::read_to_string(readme_path()).expect("README.md");
    let (head, rest) = readme
        .split_once(START)
        .expect("README has the start marker");
    let (current, tail) = rest.split_once(END).expect("README has the end marker");
    let generated = loopsmith_config::reference_markdown();
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(
            readme_path(),
            format!("{head}{START}{generated}{END}{tail}"),
        )
        .expect("write README.md");
        return;
    }
    assert_eq!(
        current, generated,
        "README's configuration reference is stale: run UPDATE_README=1 cargo test --test readme"
    );
}

#[test]
fn the_commands_readme_shows_run_as_documented() {
    let readme = std::fs::read_to_string(readme_path()).expect("README.md");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ran = 0;
    for line in readme.lines() {
        let Some(rest) = line.strip_prefix("cargo run --release -- ") else {
            continue;
        };
        let command = rest.split("  #").next().unwrap_or(rest).trim();
        let (command, redirect) = match command.split_once(" > ") {
            Some((c, file)) => (c.trim(), Some(file.trim())),
            None => (command, None),
        };
        let args: Vec<&str> = command.split_whitespace().collect();
        let sub = args
            .iter()
            .position(|a| !a.starts_with("--") && *a != "loopsmith.toml")
            .map(|i| args[i]);
        // serve and console run until stopped, generate needs a model; other tests cover them.
        let quick = matches!(sub, None | Some("gen-config" | "doctor" | "models"));
        if !quick || args.contains(&"path/to/bundle") {
            continue;
        }
        let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
            .args(&args)
            .current_dir(dir.path())
            .env_remove("LOOPSMITH_CONFIG")
            .env_remove("TELEGRAM_BOT_TOKEN")
            .env_remove("DISCORD_TOKEN")
            .env_remove("FAL_KEY")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{line}: {stderr}");
        match sub {
            // doctor's exit code is 2 when something required is missing (here: a model);
            // it must still have checked the config the README just generated.
            Some("doctor") => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    matches!(out.status.code(), Some(0 | 2)),
                    "{line}: {stdout}{stderr}"
                );
                assert!(
                    stdout.contains("ok    config                 loopsmith.toml"),
                    "{line}: {stdout}"
                );
            }
            _ => assert!(out.status.success(), "{line}: {stderr}"),
        }
        if let Some(file) = redirect {
            std::fs::write(dir.path().join(file), &out.stdout).expect("redirect");
        }
        ran += 1;
    }
    assert!(ran >= 4, "only {ran} README commands were found and run");
}
