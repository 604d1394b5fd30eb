//! `cargo xtask reliability`: every reliability suite of issue #11 in one run, at the CI size
//! or the full one, with the fuzz targets at the end; the figures each suite prints are
//! gathered into one summary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::process::{display, probe};
use crate::tasks::cargo_with_ort;

/// One suite: a name for the summary and the `cargo test` arguments that run it.
struct Suite {
    name: &'static str,
    args: &'static [&'static str],
}

const SUITES: &[Suite] = &[
    Suite {
        name: "crash (SIGKILL)",
        args: &["--test", "crash"],
    },
    Suite {
        name: "shutdown (SIGTERM)",
        args: &["--test", "shutdown"],
    },
    Suite {
        name: "remote faults",
        args: &["-p", "loopsmith-engine", "--test", "pika_faults"],
    },
    Suite {
        name: "bad input",
        args: &["--test", "bad_input"],
    },
    Suite {
        name: "spend cap",
        args: &["-p", "loopsmith-engine", "--test", "pika_budget"],
    },
    Suite {
        name: "webhook secret",
        args: &["--test", "telegram", "webhook"],
    },
    Suite {
        name: "allow-list and admin gates",
        args: &["--test", "telegram", "gates"],
    },
    Suite {
        name: "secrets",
        args: &["-p", "loopsmith-engine", "--test", "pika_logs"],
    },
    Suite {
        name: "load",
        args: &["-p", "loopsmith-engine", "--test", "load"],
    },
    Suite {
        name: "store soak",
        args: &["-p", "loopsmith-engine", "--test", "soak"],
    },
];

/// How much to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// The full sizes (`RELIABILITY_SIZE=full`): 500 kills, 200 SIGTERMs, 200 jobs, …
    pub full: bool,
    /// Seconds per fuzz target; 0 skips fuzzing.
    pub fuzz_seconds: u64,
}

struct Outcome {
    name: String,
    passed: bool,
    seconds: f64,
    figures: Vec<String>,
}

pub fn reliability(root: &Path, size: Size) -> Result<()> {
    let mut outcomes = Vec::new();
    for suite in SUITES {
        let mut cmd = cargo_with_ort(root);
        cmd.arg("test")
            .args(suite.args)
            .args(["--", "--nocapture", "--test-threads=1"]);
        if size.full {
            cmd.env("RELIABILITY_SIZE", "full");
        }
        outcomes.push(run_suite(suite.name, &mut cmd)?);
    }
    if size.fuzz_seconds > 0 {
        outcomes.extend(fuzz(root, size.fuzz_seconds)?);
    }
    eprintln!();
    eprintln!(
        "xtask: reliability summary ({} size)",
        if size.full { "full" } else { "CI" }
    );
    for o in &outcomes {
        eprintln!(
            "  {} {} ({:.0} s)",
            if o.passed { "PASS" } else { "FAIL" },
            o.name,
            o.seconds
        );
        for line in &o.figures {
            eprintln!("       {line}");
        }
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| o.name.as_str())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("{} suite(s) failed: {}", failed.len(), failed.join(", "))
    }
}

/// Runs one suite with its output shown as it comes, keeping what is not test-runner chatter.
fn run_suite(name: &str, cmd: &mut Command) -> Result<Outcome> {
    let shown = display(cmd);
    eprintln!("xtask: running: {shown}");
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let mut figures = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading the suite's output")?;
            println!("{line}");
            if is_figure(&line) {
                figures.push(line.trim().to_string());
            }
        }
    }
    let status = child.wait().context("waiting for the suite")?;
    Ok(Outcome {
        name: name.to_string(),
        passed: status.success(),
        seconds: started.elapsed().as_secs_f64(),
        figures,
    })
}

/// A suite's own printed figure, as opposed to libtest's lines around it.
fn is_figure(line: &str) -> bool {
    let line = line.trim();
    !(line.is_empty()
        || line.starts_with("running ")
        || line.starts_with("test ")
        || line.starts_with("test result:")
        || line.starts_with("successes:")
        || line.starts_with("failures:")
        || line.starts_with("---- "))
}

/// Every fuzz target under `fuzz/`, `seconds` each, through cargo-fuzz on nightly.
fn fuzz(root: &Path, seconds: u64) -> Result<Vec<Outcome>> {
    let manifest = root.join("fuzz/Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("no fuzz targets: cannot read {}", manifest.display()))?;
    let targets = fuzz_targets(&text);
    if targets.is_empty() {
        bail!("{} names no [[bin]] fuzz targets", manifest.display());
    }
    let has_fuzz = probe(
        Command::new("cargo")
            .args(["+nightly", "fuzz", "--version"])
            .current_dir(root),
    )
    .is_ok_and(|out| out.status.success());
    if !has_fuzz {
        bail!(
            "fuzzing needs cargo-fuzz on a nightly toolchain: \
             `rustup toolchain install nightly && cargo install cargo-fuzz`"
        );
    }
    let mut outcomes = Vec::new();
    for target in targets {
        let seeds = root.join("fuzz/seeds").join(&target);
        let corpus = root.join("fuzz/corpus").join(&target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root)
            // No sanitizer: the crates deny unsafe code and the targets reach no C code, so
            // a panic is what there is to find, and the build is a third of ASan's.
            .args(["+nightly", "fuzz", "run", "-s", "none", &target])
            .arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.arg("--").args([
            format!("-max_total_time={seconds}"),
            "-timeout=10".to_string(),
            "-rss_limit_mb=2048".to_string(),
            "-print_final_stats=1".to_string(),
        ]);
        outcomes.push(run_suite(&format!("fuzz {target}"), &mut cmd)?);
    }
    Ok(outcomes)
}

/// The `name` of each `[[bin]]` in a cargo-fuzz manifest.
fn fuzz_targets(manifest: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
            continue;
        }
        if in_bin
            && let Some(value) = line.strip_prefix("name")
            && let Some(value) = value.trim_start().strip_prefix('=')
        {
            targets.push(value.trim().trim_matches('"').to_string());
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_targets_are_read_from_the_bin_sections_only() {
        let manifest = r#"
[package]
name = "loopsmith-fuzz"

[[bin]]
name = "options"
path = "fuzz_targets/options.rs"

[dependencies]
name = "not-a-target"

[[bin]]
name = "config"
"#;
        assert_eq!(fuzz_targets(manifest), ["options", "config"]);
    }

    #[test]
    fn libtest_chatter_is_not_a_figure() {
        assert!(!is_figure("running 1 test"));
        assert!(!is_figure("test crash ... ok"));
        assert!(!is_figure("test result: ok. 1 passed"));
        assert!(!is_figure("   "));
        assert!(is_figure(
            "crash suite: 50 SIGKILLs (after 117–1490 ms) in 240 s"
        ));
    }
}
