//! The control server: the engine's side of the operator console's protocol
//! ([`loopsmith_protocol::control`]).
//!
//! It listens on a Unix socket created with mode 0600 (the file mode is the access check),
//! and optionally on a loopback TCP port where every client must present a token, compared in
//! constant time. `loopsmith console --embedded` skips both and talks to an in-process
//! [`Control`] over an in-memory stream ([`Control::connect_in_process`]).

mod backends;
mod commands;
mod logs;
mod preview;
mod session;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use loopsmith_config::ControlSettings;
use loopsmith_protocol::control::{Spend, Token};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use backends::{BackendInfo, ControlledBackend};
pub use logs::{LogTap, LogTapLayer};
pub use preview::{MAX_PREVIEW_FRAMES, MAX_PREVIEW_SIDE, preview};

use crate::Engine;

/// Shortest TCP token accepted: long enough that guessing it over a socket is hopeless.
pub const MIN_TOKEN_CHARS: usize = 16;
/// The environment variable that holds the control port's token, on both ends.
pub const TOKEN_ENV: &str = "LOOPSMITH_CONTROL_TOKEN";
/// Most jobs a snapshot carries; older ones stay in the store.
pub const SNAPSHOT_JOBS: usize = 10_000;

/// Why the control server could not start or keep listening.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot listen on {path}")]
    Bind {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("another loopsmith is already serving the control socket at {0}")]
    InUse(String),
    #[error("the control port must be on loopback (127.0.0.1 or ::1), not {0}")]
    NotLoopback(SocketAddr),
    #[error("the control port needs a token of at least {MIN_TOKEN_CHARS} characters")]
    WeakToken,
    #[error("control.tcp is set, so {TOKEN_ENV} must hold the token clients will send")]
    NoToken,
    #[error("control.tcp `{0}` is not an address with a port")]
    BadAddress(String),
}

/// What every console connection shares: the engine, the backends it may pause, the log tap.
#[derive(Debug, Clone)]
pub struct Control {
    inner: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) backends: Vec<Arc<ControlledBackend>>,
    pub(crate) logs: LogTap,
    pub(crate) server: String,
    pub(crate) spend: SpendSource,
}

/// Where today's spend comes from (the paid backend's ledger); the console shows "not
/// tracked" while there is none.
#[derive(Clone, Default)]
pub(crate) struct SpendSource(Option<Arc<dyn Fn() -> Option<Spend> + Send + Sync>>);

impl SpendSource {
    pub(crate) fn read(&self) -> Option<Spend> {
        self.0.as_ref().and_then(|f| f())
    }
}

impl std::fmt::Debug for SpendSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "SpendSource(set)"
        } else {
            "SpendSource(none)"
        })
    }
}

/// How a connection proved it may control the engine.
#[derive(Clone)]
pub(crate) enum Access {
    /// Unix socket (file mode) or in-process: nothing more to check.
    Trusted,
    /// TCP: the client's hello must carry this token.
    Token(Token),
}

impl Control {
    /// `backends` are the wrappers the engine's router was built over, so pausing one here
    /// pauses it for the router; `logs` is the tap installed in the process's subscriber.
    pub fn new(engine: Engine, backends: Vec<Arc<ControlledBackend>>, logs: LogTap) -> Self {
        Control {
            inner: Arc::new(Shared {
                engine,
                backends,
                logs,
                server: format!("loopsmith {}", env!("CARGO_PKG_VERSION")),
                spend: SpendSource::default(),
            }),
        }
    }

    /// Reports today's spend against the cap to consoles, read once a second and on attach.
    pub fn with_spend(self, source: impl Fn() -> Option<Spend> + Send + Sync + 'static) -> Self {
        let s = &*self.inner;
        Control {
            inner: Arc::new(Shared {
                engine: s.engine.clone(),
                backends: s.backends.clone(),
                logs: s.logs.clone(),
                server: s.server.clone(),
                spend: SpendSource(Some(Arc::new(source))),
            }),
        }
    }

    /// Serves one console over an in-memory stream; the returned end is the console's. The
    /// session ends when either end is dropped or `shutdown` fires.
    pub fn connect_in_process(&self, shutdown: CancellationToken) -> tokio::io::DuplexStream {
        // Large enough that a snapshot of many jobs does not ping-pong through tiny buffers.
        let (client, server) = tokio::io::duplex(1 << 20);
        let shared = self.inner.clone();
        tokio::spawn(async move {
            session::run(shared, server, Access::Trusted, shutdown).await;
        });
        client
    }

    /// Serves one already-accepted stream.
    async fn serve_stream<S>(&self, stream: S, access: Access, shutdown: CancellationToken)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        session::run(self.inner.clone(), stream, access, shutdown).await;
    }

    /// Listens on a Unix socket at `path`, created with mode 0600, until `shutdown` fires;
    /// then closes every session and removes the socket file.
    pub async fn serve_unix(
        &self,
        path: &Path,
        shutdown: CancellationToken,
    ) -> Result<(), ControlError> {
        let listener = bind_unix(path).await?;
        info!(socket = %path.display(), "control socket listening");
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let control = self.clone();
                        let token = shutdown.child_token();
                        sessions.spawn(async move {
                            control.serve_stream(stream, Access::Trusted, token).await;
                        });
                    }
                    Err(e) => warn!(error = %e, "control socket accept failed"),
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        sessions.shutdown().await;
        let _ = std::fs::remove_file(path);
        info!("control socket closed");
        Ok(())
    }

    /// Listens on a loopback TCP address; every client must send `token`. Returns the bound
    /// address (useful with port 0) and the serving future.
    pub async fn bind_tcp(
        &self,
        addr: SocketAddr,
        token: Token,
    ) -> Result<(SocketAddr, impl Future<Output = ()> + Send + use<>), ControlError> {
        if !addr.ip().is_loopback() {
            return Err(ControlError::NotLoopback(addr));
        }
        if token.expose().chars().count() < MIN_TOKEN_CHARS {
            return Err(ControlError::WeakToken);
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ControlError::Bind {
                path: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| ControlError::Bind {
            path: addr.to_string(),
            source,
        })?;
        info!(addr = %local, "control port listening (token required)");
        let control = self.clone();
        let serve = async move {
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) if peer.ip().is_loopback() => {
                            let control = control.clone();
                            let access = Access::Token(token.clone());
                            sessions.spawn(async move {
                                control.serve_stream(stream, access, CancellationToken::new()).await;
                            });
                        }
                        Ok((_, peer)) => warn!(%peer, "refused a control connection from off this machine"),
                        Err(e) => warn!(error = %e, "control port accept failed"),
                    },
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
        };
        Ok((local, serve))
    }
}

/// Serves `[control]` until `shutdown` fires: what `loopsmith serve` runs beside the bots.
/// Always the Unix socket; also the loopback TCP port when `control.tcp` is set, which then
/// needs `token` (read by the caller from [`TOKEN_ENV`]).
pub async fn serve(
    control: Control,
    settings: &ControlSettings,
    token: Option<Token>,
    shutdown: CancellationToken,
) -> Result<(), ControlError> {
    if settings.tcp.is_empty() {
        return control.serve_unix(&settings.socket, shutdown).await;
    }
    let addr: SocketAddr = settings
        .tcp
        .parse()
        .map_err(|_| ControlError::BadAddress(settings.tcp.clone()))?;
    let token = token.ok_or(ControlError::NoToken)?;
    let (_, tcp) = control.bind_tcp(addr, token).await?;
    tokio::select! {
        // The socket ends on shutdown; the TCP listener and its sessions are dropped with it.
        result = control.serve_unix(&settings.socket, shutdown) => result,
        () = tcp => Ok(()),
    }
}

/// Binds without ever exposing a socket with a looser mode: bind under a temporary name,
/// restrict it, then rename it into place (rename is atomic within a directory).
async fn bind_unix(path: &Path) -> Result<UnixListener, ControlError> {
    use std::os::unix::fs::PermissionsExt;

    let bind_err = |source| ControlError::Bind {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(bind_err)?;
    }
    if path.exists() {
        // A socket nobody answers on is left over from a crash; one that answers is in use.
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::InUse(path.display().to_string()));
        }
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "control.sock".into());
    let staging: PathBuf = path.with_file_name(format!(".{file_name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging).map_err(bind_err)?;
    let placed = std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&staging, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&staging);
        return Err(bind_err(e));
    }
    Ok(listener)
}
