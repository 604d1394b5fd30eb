//! `loopsmith`: wiring only. Each subcommand loads settings, builds what it needs from the
//! library crates and reports plainly what it could not do.

mod backends;
mod cli;
mod console;
mod doctor;
mod generate;
mod models;
mod serve;

use std::process::ExitCode;

use clap::Parser;
use loopsmith_config::Settings;

use cli::{Cli, Command};

/// How a command ended, mapped onto the documented exit codes.
#[derive(Debug)]
pub enum Failure {
    /// Bad input or configuration (exit 2).
    Input(String),
    /// The capability is not available on this build or set-up (exit 3).
    Unavailable(String),
    /// Something failed while running (exit 1).
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The console draws on the terminal; it logs to a file (and its Logs screen) instead.
    // `serve` also feeds its log lines to attached consoles.
    let tap = loopsmith_engine::control::LogTap::new();
    match cli.command {
        Command::Console(_) => {}
        Command::Serve => init_logging(Some(&tap)),
        _ => init_logging(None),
    }
    match run(cli, tap) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Unavailable(message)) => {
            eprintln!("not available: {message}");
            ExitCode::from(3)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli, tap: loopsmith_engine::control::LogTap) -> Result<(), Failure> {
    let load = || {
        Settings::load_from_process(cli.config.as_deref())
            .map_err(|e| Failure::Input(error_chain(&e)))
    };
    match cli.command {
        Command::GenConfig => {
            print!("{}", loopsmith_config::example_config());
            Ok(())
        }
        Command::Doctor => doctor::run(cli.config.as_deref()),
        Command::Generate(args) => generate::run(&load()?, args),
        Command::Serve => serve::run(&load()?, tap),
        Command::Console(args) => console::run(&load()?, args),
        Command::Models(command) => models::run(&load()?, command),
    }
}

pub use loopsmith_engine::error_chain;

/// Caps serenity's own logging whatever LOOPSMITH_LOG asks for: its HTTP spans record each
/// request's route with the interaction token in it (valid 15 minutes for editing and
/// following up that interaction), and its gateway logs an undecodable event's whole text,
/// tokens included. Its other warnings and errors carry no secrets and stay.
fn without_secrets(filter: tracing_subscriber::EnvFilter) -> tracing_subscriber::EnvFilter {
    [
        "serenity=warn",
        "serenity::http=error",
        "serenity::gateway::ws=off",
    ]
    .into_iter()
    .filter_map(|d| d.parse().ok())
    .fold(filter, |filter, directive| filter.add_directive(directive))
}

/// Logs go to stderr, filtered by LOOPSMITH_LOG (e.g. `info`, `loopsmith_engine=debug`).
fn init_logging(tap: Option<&loopsmith_engine::control::LogTap>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = || {
        without_secrets(
            tracing_subscriber::EnvFilter::try_from_env("LOOPSMITH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
    };
    // Colour only for a person at a terminal: journald, files and pipes get plain text.
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter());
    let registry = tracing_subscriber::registry().with(stderr);
    // Attached consoles see `info` and up unless LOOPSMITH_LOG says otherwise.
    let _ = match tap {
        Some(tap) => {
            let console_filter = without_secrets(
                tracing_subscriber::EnvFilter::try_from_env("LOOPSMITH_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            );
            registry
                .with(tap.layer().with_filter(console_filter))
                .try_init()
        }
        None => registry.try_init(),
    };
}
