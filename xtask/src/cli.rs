//! Command-line parsing. Hand-written rather than clap: the surface is tiny, and xtask should
//! build before anything else in the workspace has been compiled.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::onnxruntime::VariantChoice;

pub const USAGE: &str = "\
Usage: cargo xtask <command> [options]

Commands:
  setup [--test] [--cpu|--gpu]
      Install what is missing: system packages (apt) and ONNX Runtime
      (into .loopsmith/onnxruntime/). A quick no-op when all is there.
  test [--cpu|--gpu] [-- <args>...]
      Run `setup --test`, then the whole test suite (cargo nextest when
      installed, else cargo test) and the doctests. <args> go to the
      nextest / cargo test run, not to the doctests.
  sticker <prompt> [--out <path>] [--cpu|--gpu]
      Run `setup`, then `cargo run --release -- generate <prompt>`
      (default --out: sticker.webm).
  reliability [--full] [--fuzz-seconds <n>] [--cpu|--gpu]
      Run `setup --test`, then every reliability suite (crash, shutdown,
      remote faults, bad input, spend cap, secrets, load, store soak) and
      print their figures in one summary. --full runs the full sizes and
      every fuzz target for 10 minutes (needs cargo-fuzz on nightly);
      --fuzz-seconds sets that time (0 skips fuzzing).
  help
      Show this message.

Options:
  --test  also install the system packages the test suite needs
  --cpu   use the CPU build of ONNX Runtime even when an NVIDIA GPU is present
  --gpu   use the CUDA build of ONNX Runtime even when no NVIDIA GPU is detected
";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Setup {
        test: bool,
        variant: VariantChoice,
    },
    Test {
        variant: VariantChoice,
        extra: Vec<String>,
    },
    Sticker {
        prompt: String,
        out: PathBuf,
        variant: VariantChoice,
    },
    Reliability {
        full: bool,
        fuzz_seconds: u64,
        variant: VariantChoice,
    },
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command> {
    let Some((name, rest)) = args.split_first() else {
        return Ok(Command::Help);
    };
    if rest.iter().take_while(|a| *a != "--").any(|a| is_help(a)) {
        return Ok(Command::Help);
    }
    match name.as_str() {
        "help" | "-h" | "--help" => Ok(Command::Help),
        "setup" => parse_setup(rest),
        "test" => parse_test(rest),
        "sticker" => parse_sticker(rest),
        "reliability" => parse_reliability(rest),
        other => bail!("unknown command `{other}`"),
    }
}

fn is_help(arg: &str) -> bool {
    arg == "-h" || arg == "--help"
}

fn parse_setup(args: &[String]) -> Result<Command> {
    let mut test = false;
    let mut variant = VariantFlags::default();
    for arg in args {
        match arg.as_str() {
            "--test" => test = true,
            other if variant.take(other) => {}
            other => bail!("unknown option `{other}` for `setup`"),
        }
    }
    Ok(Command::Setup {
        test,
        variant: variant.choice()?,
    })
}

fn parse_test(args: &[String]) -> Result<Command> {
    let (own, extra) = match args.iter().position(|a| a == "--") {
        Some(split) => (&args[..split], args[split + 1..].to_vec()),
        None => (args, Vec::new()),
    };
    let mut variant = VariantFlags::default();
    for arg in own {
        if !variant.take(arg) {
            bail!("unknown option `{arg}` for `test`; pass test-runner arguments after `--`");
        }
    }
    Ok(Command::Test {
        variant: variant.choice()?,
        extra,
    })
}

fn parse_sticker(args: &[String]) -> Result<Command> {
    let mut prompts = Vec::new();
    let mut out = None;
    let mut variant = VariantFlags::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--" => prompts.extend(args.by_ref().cloned()),
            "--out" => match args.next() {
                Some(path) => out = Some(PathBuf::from(path)),
                None => bail!("`--out` needs a path"),
            },
            other if other.starts_with("--out=") => {
                out = Some(PathBuf::from(&other["--out=".len()..]));
            }
            other if variant.take(other) => {}
            other if other.starts_with('-') => bail!("unknown option `{other}` for `sticker`"),
            other => prompts.push(other.to_owned()),
        }
    }
    let prompt = match prompts.as_slice() {
        [prompt] if !prompt.trim().is_empty() => prompt.clone(),
        [_] => bail!("the prompt is empty"),
        [] => bail!("`sticker` needs a prompt: cargo xtask sticker \"a cat waving\""),
        _ => bail!(
            "`sticker` takes one prompt; quote it: cargo xtask sticker \"{}\"",
            prompts.join(" ")
        ),
    };
    Ok(Command::Sticker {
        prompt,
        out: out.unwrap_or_else(|| PathBuf::from("sticker.webm")),
        variant: variant.choice()?,
    })
}

/// Fuzzing time per target at the full size: the 10 minutes.
const FULL_FUZZ_SECONDS: u64 = 600;

fn parse_reliability(args: &[String]) -> Result<Command> {
    let mut full = false;
    let mut fuzz_seconds = None;
    let mut variant = VariantFlags::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--full" => full = true,
            "--fuzz-seconds" => {
                let Some(value) = args.next() else {
                    bail!("`--fuzz-seconds` needs a number of seconds");
                };
                match value.parse::<u64>() {
                    Ok(n) => fuzz_seconds = Some(n),
                    Err(_) => bail!("`--fuzz-seconds {value}` is not a whole number of seconds"),
                }
            }
            other if variant.take(other) => {}
            other => bail!("unknown option `{other}` for `reliability`"),
        }
    }
    Ok(Command::Reliability {
        full,
        fuzz_seconds: fuzz_seconds.unwrap_or(if full { FULL_FUZZ_SECONDS } else { 0 }),
        variant: variant.choice()?,
    })
}

#[derive(Debug, Default)]
struct VariantFlags {
    cpu: bool,
    gpu: bool,
}

impl VariantFlags {
    /// Records `arg` if it is `--cpu` or `--gpu`.
    fn take(&mut self, arg: &str) -> bool {
        match arg {
            "--cpu" => self.cpu = true,
            "--gpu" => self.gpu = true,
            _ => return false,
        }
        true
    }

    fn choice(&self) -> Result<VariantChoice> {
        Ok(match (self.cpu, self.gpu) {
            (true, true) => bail!("`--cpu` and `--gpu` cannot be used together"),
            (true, false) => VariantChoice::Cpu,
            (false, true) => VariantChoice::Gpu,
            (false, false) => VariantChoice::Auto,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(args: &[&str]) -> Result<Command> {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        parse(&args)
    }

    #[test]
    fn no_args_and_help_print_usage() {
        for args in [&[][..], &["help"], &["--help"], &["setup", "-h"]] {
            assert_eq!(parse_str(args).ok(), Some(Command::Help), "{args:?}");
        }
    }

    #[test]
    fn setup_flags() {
        assert_eq!(
            parse_str(&["setup"]).ok(),
            Some(Command::Setup {
                test: false,
                variant: VariantChoice::Auto
            })
        );
        assert_eq!(
            parse_str(&["setup", "--gpu", "--test"]).ok(),
            Some(Command::Setup {
                test: true,
                variant: VariantChoice::Gpu
            })
        );
        assert!(parse_str(&["setup", "--cpu", "--gpu"]).is_err());
        assert!(parse_str(&["setup", "--tset"]).is_err());
    }

    #[test]
    fn test_passes_everything_after_double_dash() {
        assert_eq!(
            parse_str(&["test", "--cpu", "--", "-p", "loopsmith-engine", "--help"]).ok(),
            Some(Command::Test {
                variant: VariantChoice::Cpu,
                extra: vec!["-p".into(), "loopsmith-engine".into(), "--help".into()],
            })
        );
        assert!(parse_str(&["test", "-p", "x"]).is_err());
    }

    #[test]
    fn sticker_prompt_and_out() {
        assert_eq!(
            parse_str(&["sticker", "a cat"]).ok(),
            Some(Command::Sticker {
                prompt: "a cat".into(),
                out: PathBuf::from("sticker.webm"),
                variant: VariantChoice::Auto,
            })
        );
        assert_eq!(
            parse_str(&["sticker", "--out=x.webm", "--cpu", "a cat"]).ok(),
            Some(Command::Sticker {
                prompt: "a cat".into(),
                out: PathBuf::from("x.webm"),
                variant: VariantChoice::Cpu,
            })
        );
        assert_eq!(
            parse_str(&["sticker", "--out", "y.webm", "--", "-dash first"]).ok(),
            Some(Command::Sticker {
                prompt: "-dash first".into(),
                out: PathBuf::from("y.webm"),
                variant: VariantChoice::Auto,
            })
        );
    }

    #[test]
    fn sticker_rejects_bad_prompts() {
        assert!(parse_str(&["sticker"]).is_err());
        assert!(parse_str(&["sticker", "  "]).is_err());
        assert!(parse_str(&["sticker", "a", "cat"]).is_err());
        assert!(parse_str(&["sticker", "a cat", "--out"]).is_err());
    }

    #[test]
    fn reliability_sizes() {
        let parsed = |args: &[&str]| parse_str(args).ok();
        assert_eq!(
            parsed(&["reliability"]),
            Some(Command::Reliability {
                full: false,
                fuzz_seconds: 0,
                variant: VariantChoice::Auto
            })
        );
        assert_eq!(
            parsed(&["reliability", "--full"]),
            Some(Command::Reliability {
                full: true,
                fuzz_seconds: 600,
                variant: VariantChoice::Auto
            })
        );
        assert_eq!(
            parsed(&["reliability", "--fuzz-seconds", "30", "--cpu"]),
            Some(Command::Reliability {
                full: false,
                fuzz_seconds: 30,
                variant: VariantChoice::Cpu
            })
        );
        assert!(parse_str(&["reliability", "--fuzz-seconds"]).is_err());
        assert!(parse_str(&["reliability", "--fuzz-seconds", "ten"]).is_err());
        assert!(parse_str(&["reliability", "--quick"]).is_err());
    }

    #[test]
    fn unknown_command_is_an_error() {
        assert!(parse_str(&["build"]).is_err());
    }
}
