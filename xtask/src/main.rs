//! `cargo xtask <command>`: set-up and developer tasks for loopsmith.
//!
//! Deliberately std + anyhow only, so it builds on a machine that has nothing else yet
//! (that is the machine `setup` exists for).

mod cli;
mod onnxruntime;
mod process;
mod reliability;
mod system;
mod tasks;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::cli::Command;
use crate::process::CommandFailed;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            eprintln!("xtask: run `cargo xtask help` for usage");
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

fn run(command: Command) -> Result<()> {
    if command == Command::Help {
        eprint!("{}", cli::USAGE);
        return Ok(());
    }
    let root = workspace_root()?;
    match command {
        Command::Help => Ok(()),
        Command::Setup { test, variant } => tasks::setup(&root, test, variant),
        Command::Test { variant, extra } => tasks::test(&root, variant, &extra),
        Command::Sticker {
            prompt,
            out,
            variant,
        } => tasks::sticker(&root, variant, &prompt, &out),
        Command::Reliability {
            full,
            fuzz_seconds,
            variant,
        } => {
            tasks::setup(&root, true, variant)?;
            reliability::reliability(&root, reliability::Size { full, fuzz_seconds })
        }
    }
}

fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent; cannot find the workspace root")
}

/// A failed child's own exit code is passed on, so callers (CI, scripts) see what the tool said.
fn exit_code(err: &anyhow::Error) -> u8 {
    let code = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<CommandFailed>())
        .map_or(1, CommandFailed::exit_code);
    u8::try_from(code).ok().filter(|&c| c != 0).unwrap_or(1)
}
