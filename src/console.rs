//! `loopsmith console`: the operator console, attached to a running `serve` over the control
//! socket, or with `--embedded` to an engine started in this process behind the same
//! protocol (an in-memory stream instead of a socket).
//!
//! While the UI is up nothing may write to the terminal, so logs go to
//! `<data_dir>/console.log` (and, embedded, to the Logs screen through the log tap).

use std::io::IsTerminal;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loopsmith_config::{Secrets, Settings};
use loopsmith_console::client::{BoxStream, Connect, Connecting, Tcp, UnixSocket};
use loopsmith_console::{Options, run as run_console};
use loopsmith_engine::control::{Control, LogTap, TOKEN_ENV};
use loopsmith_engine::media::MediaEncoder;
use loopsmith_engine::protocol::control::Token;
use loopsmith_engine::{Engine, SledStore, Store};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::backends::{self, Wanted};
use crate::cli::ConsoleArgs;
use crate::{Failure, error_chain};

pub fn run(settings: &Settings, args: ConsoleArgs) -> Result<(), Failure> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(Failure::Input(
            "the console needs a terminal (stdin and stdout must be a TTY)".into(),
        ));
    }
    let tap = LogTap::new();
    let log_path = init_file_logging(
        &settings.storage.data_dir,
        args.embedded.then(|| tap.clone()),
    )?;
    // Native libraries in the engine (openh264, libvpx) write straight to fd 2; under the UI
    // that would tear the screen, so fd 2 goes to the log file until the console exits.
    let _stderr = StderrToFile::redirect(&log_path)?;
    let operator = std::env::var("USER").ok();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;

    if args.embedded {
        return runtime.block_on(embedded(settings, tap, operator, &args));
    }
    let connect: Box<dyn Connect> = match &args.connect {
        Some(addr) => {
            let token = std::env::var(TOKEN_ENV).map_err(|_| {
                Failure::Input(format!(
                    "--connect needs the server's control token in {TOKEN_ENV}"
                ))
            })?;
            Box::new(Tcp {
                addr: addr.clone(),
                token: Token::new(token),
            })
        }
        None => Box::new(UnixSocket(
            args.socket
                .clone()
                .unwrap_or_else(|| settings.control.socket.clone()),
        )),
    };
    runtime
        .block_on(run_console(Options {
            connect,
            operator,
            mouse: !args.no_mouse,
            graphics: args.graphics.into(),
        }))
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("the console failed: {e}")))
}

/// An engine in this process, reached over an in-memory stream.
struct InProcess {
    control: Control,
    shutdown: CancellationToken,
}

impl Connect for InProcess {
    fn connect(&self) -> Connecting<'_> {
        let stream = self.control.connect_in_process(self.shutdown.child_token());
        Box::pin(async move { Ok(Box::new(stream) as BoxStream) })
    }

    fn describe(&self) -> String {
        "embedded engine".into()
    }
}

async fn embedded(
    settings: &Settings,
    tap: LogTap,
    operator: Option<String>,
    args: &ConsoleArgs,
) -> Result<(), Failure> {
    // The same backends `serve` builds (the local model, then Pika when it is configured), so
    // the newcomer's path falls back the way the server does.
    let secrets = Secrets::load(settings, loopsmith_config::process_env())
        .map_err(|e| Failure::Input(error_chain(&e)))?;
    let plan = backends::plan(settings, secrets, Wanted::All)?;
    if plan.is_empty() {
        return Err(Failure::Unavailable(format!(
            "`console --embedded` needs a render backend, and {}. Point local.model at a model \
             bundle folder, or attach to a running `loopsmith serve` with `loopsmith console`.",
            plan.missing()
        )));
    }
    let store: Arc<dyn Store> = Arc::new(
        SledStore::open(&settings.storage.data_dir.join("db")).map_err(|e| {
            Failure::Runtime(anyhow::anyhow!(
                "{} (is `loopsmith serve` using this data dir? Then attach with `loopsmith console`)",
                error_chain(&e)
            ))
        })?,
    );
    let shutdown = CancellationToken::new();
    let stopping = CancellationToken::new();
    let built = plan.into_router(settings, store.clone(), stopping.clone())?;
    let engine = Engine::start(settings, store, built.router, Arc::new(MediaEncoder))
        .map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
    let control = Control::new(engine.clone(), built.backends, tap);
    let result = run_console(Options {
        connect: Box::new(InProcess {
            control,
            shutdown: shutdown.clone(),
        }),
        operator,
        mouse: !args.no_mouse,
        graphics: args.graphics.into(),
    })
    .await;
    shutdown.cancel();
    // A Pika job keeps its paid request for the next start; running local jobs get the
    // configured grace; the rest stay queued.
    stopping.cancel();
    let grace = Duration::from_secs(settings.engine.shutdown_grace_secs);
    engine
        .shutdown(grace)
        .await
        .map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
    result.map_err(|e| Failure::Runtime(anyhow::anyhow!("the console failed: {e}")))
}

/// Logs to `<data_dir>/console.log`, never to the terminal; embedded, also to the log tap
/// that feeds the Logs screen. Filtered by LOOPSMITH_LOG (default `info`).
fn init_file_logging(data_dir: &Path, tap: Option<LogTap>) -> Result<PathBuf, Failure> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| Failure::Input(format!("cannot create {}: {e}", data_dir.display())))?;
    let path = data_dir.join("console.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| Failure::Input(format!("cannot open {}: {e}", path.display())))?;
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("LOOPSMITH_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .with_filter(filter());
    let registry = tracing_subscriber::registry().with(file_layer);
    let result = match tap {
        Some(tap) => registry.with(tap.layer().with_filter(filter())).try_init(),
        None => registry.try_init(),
    };
    result.map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot set up logging: {e}")))?;
    Ok(path)
}

/// Points fd 2 at a file while alive, and back at the terminal on drop or panic (so a panic
/// message is still seen: the UI's own hook restores the terminal first, then this one
/// restores fd 2, then the default hook prints).
struct StderrToFile {
    saved: OwnedFd,
}

impl StderrToFile {
    fn redirect(path: &Path) -> Result<StderrToFile, Failure> {
        let failed = |e: std::io::Error| {
            Failure::Runtime(anyhow::anyhow!(
                "cannot send stderr to {}: {e}",
                path.display()
            ))
        };
        let saved = rustix::io::dup(std::io::stderr()).map_err(|e| failed(e.into()))?;
        let for_panic = saved.try_clone().map_err(failed)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(failed)?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = rustix::stdio::dup2_stderr(&for_panic);
            previous(info);
        }));
        rustix::stdio::dup2_stderr(&file).map_err(|e| failed(e.into()))?;
        Ok(StderrToFile { saved })
    }
}

impl Drop for StderrToFile {
    fn drop(&mut self) {
        let _ = rustix::stdio::dup2_stderr(&self.saved);
    }
}

use tracing_subscriber::Layer as _;
