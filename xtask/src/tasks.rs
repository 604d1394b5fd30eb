//! The `setup`, `test` and `sticker` commands.

use std::env;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::onnxruntime::{self, VariantChoice};
use crate::process::{probe, run};
use crate::system::{self, Apt};

pub fn setup(root: &Path, with_test: bool, variant: VariantChoice) -> Result<()> {
    let started = Instant::now();
    let mut apt = Apt::default();
    system::ensure_packages(&mut apt, with_test)?;
    onnxruntime::ensure_installed(root, variant, &mut apt)?;
    eprintln!(
        "xtask: setup done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs every step even after a failure, so one run shows all that is broken; the first
/// failure decides the exit code.
pub fn test(root: &Path, variant: VariantChoice, extra: &[String]) -> Result<()> {
    setup(root, true, variant)?;

    let nextest =
        probe(cargo(root).args(["nextest", "--version"])).is_ok_and(|out| out.status.success());
    let mut suite = cargo_with_ort(root);
    if nextest {
        suite.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        eprintln!("xtask: cargo-nextest not installed; using cargo test");
        suite.args(["test", "--workspace", "--no-fail-fast"]);
    }
    suite.args(extra);
    let mut doctests = cargo_with_ort(root);
    doctests.args(["test", "--workspace", "--doc"]);

    // Doctests first: CI reads the last test runner's closing line, and that should be the
    // whole suite's summary rather than a crate with no doctests.
    let results = [
        run(&mut doctests).context("the doctests failed"),
        run(&mut suite).context("the test suite failed"),
    ];
    let failed = results.iter().filter(|r| r.is_err()).count();
    match results.into_iter().find_map(Result::err) {
        Some(first) => {
            eprintln!("xtask: {failed} of 2 test steps failed");
            Err(first)
        }
        None => {
            eprintln!("xtask: all tests passed");
            Ok(())
        }
    }
}

pub fn sticker(root: &Path, variant: VariantChoice, prompt: &str, out: &Path) -> Result<()> {
    setup(root, false, variant)?;
    // The child runs in the workspace root, so a relative --out is resolved against where
    // the user typed the command.
    let out = std::path::absolute(out)
        .with_context(|| format!("could not resolve --out {}", out.display()))?;
    run(cargo_with_ort(root)
        .args([
            "run",
            "--release",
            "--quiet",
            "--",
            "generate",
            prompt,
            "--out",
        ])
        .arg(&out))
    .context("`generate` failed")
}

/// The cargo that is running us (it sets `CARGO`), so a `cargo +toolchain xtask` stays on it.
fn cargo(root: &Path) -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(program);
    cmd.current_dir(root);
    cmd
}

pub(crate) fn cargo_with_ort(root: &Path) -> Command {
    let mut cmd = cargo(root);
    cmd.env("ORT_DYLIB_PATH", onnxruntime::library_path(root));
    cmd
}
