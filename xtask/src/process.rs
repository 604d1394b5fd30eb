//! Running external commands: every one is echoed, and a failure names the command and its status.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::process::{Command, ExitStatus, Output, Stdio};

use anyhow::{Context, Result};

/// A command that ran but exited unsuccessfully; `main` turns it into xtask's own exit code.
#[derive(Debug)]
pub struct CommandFailed {
    pub command: String,
    pub status: ExitStatus,
}

impl CommandFailed {
    pub fn exit_code(&self) -> i32 {
        // Killed by a signal: there is no code to pass on.
        self.status.code().unwrap_or(1)
    }
}

impl fmt::Display for CommandFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` failed ({})", self.command, self.status)
    }
}

impl std::error::Error for CommandFailed {}

/// Runs `cmd` with the terminal attached; a non-zero exit is a [`CommandFailed`] error.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = echo(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    check(shown, status)
}

/// Runs `cmd` and returns its stdout; stderr still reaches the terminal.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let shown = echo(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    check(shown, output.status)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `cmd` quietly, for questions like "is this installed?". Only a failure to start is an
/// error, so callers can tell "not there" (`NotFound`) from "said no" (non-zero status).
pub fn probe(cmd: &mut Command) -> io::Result<Output> {
    echo(cmd);
    cmd.stdin(Stdio::null()).output()
}

fn echo(cmd: &Command) -> String {
    let shown = display(cmd);
    eprintln!("xtask: running: {shown}");
    shown
}

fn check(command: String, status: ExitStatus) -> Result<()> {
    if status.success() {
        Ok(())
    } else {
        Err(CommandFailed { command, status }.into())
    }
}

/// The command as a shell line the user could paste, including the variables we set for it.
pub fn display(cmd: &Command) -> String {
    let envs = cmd
        .get_envs()
        .filter_map(|(key, value)| Some(format!("{}={}", key.to_string_lossy(), quote(value?))));
    let program = std::iter::once(quote(cmd.get_program()));
    let args = cmd.get_args().map(quote);
    envs.chain(program)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_are_not_quoted() {
        assert_eq!(quote(OsStr::new("--no-fail-fast")), "--no-fail-fast");
        assert_eq!(
            quote(OsStr::new("onnxruntime==1.31.1")),
            "onnxruntime==1.31.1"
        );
    }

    #[test]
    fn shell_specials_are_single_quoted() {
        assert_eq!(quote(OsStr::new("${Status}")), "'${Status}'");
        assert_eq!(quote(OsStr::new("a cat")), "'a cat'");
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("")), "''");
    }

    #[test]
    fn display_shows_env_then_command() {
        let mut cmd = Command::new("cargo");
        cmd.env("ORT_DYLIB_PATH", "/x/lib.so")
            .args(["run", "--", "generate", "a cat"]);
        assert_eq!(
            display(&cmd),
            "ORT_DYLIB_PATH=/x/lib.so cargo run -- generate 'a cat'"
        );
    }
}
