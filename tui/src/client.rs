//! The link to the engine: connect, handshake, pump frames both ways, and reconnect with
//! backoff when the link drops. The app only ever sees [`Net`] reports.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use loopsmith_protocol::control::{
    ClientMsg, FrameError, PROTOCOL_VERSION, ServerMsg, Token, read_frame, write_frame,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::Net;

/// A byte stream to the engine.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub type BoxStream = Box<dyn Stream>;
pub type Connecting<'a> = Pin<Box<dyn Future<Output = io::Result<BoxStream>> + Send + 'a>>;

/// How to reach the engine: a Unix socket, a loopback TCP port with a token, or an engine in
/// this process (given by the binary, since this crate never links the engine).
pub trait Connect: Send + Sync {
    fn connect(&self) -> Connecting<'_>;
    /// Sent in the hello; only TCP needs one.
    fn token(&self) -> Option<Token> {
        None
    }
    /// For the header: "socket loopsmith-data/control.sock".
    fn describe(&self) -> String;
}

#[derive(Debug, Clone)]
pub struct UnixSocket(pub PathBuf);

impl Connect for UnixSocket {
    fn connect(&self) -> Connecting<'_> {
        Box::pin(async move {
            let stream = tokio::net::UnixStream::connect(&self.0).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }

    fn describe(&self) -> String {
        format!("socket {}", self.0.display())
    }
}

/// A loopback TCP port. The token is held as a [`Token`], whose Debug prints nothing.
#[derive(Debug, Clone)]
pub struct Tcp {
    pub addr: String,
    pub token: Token,
}

impl Connect for Tcp {
    fn connect(&self) -> Connecting<'_> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(&self.addr).await?;
            Ok(Box::new(stream) as BoxStream)
        })
    }

    fn token(&self) -> Option<Token> {
        Some(self.token.clone())
    }

    fn describe(&self) -> String {
        format!("tcp {}", self.addr)
    }
}

/// Wait before reconnect attempt `n` (1-based): 250 ms doubling to a 10 s ceiling, so a
/// restarting server is found within a second and a dead one is not hammered.
pub fn backoff(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    Duration::from_millis(ms.min(10_000))
}

/// Runs until `stop` fires or the app goes away: keeps a link up, forwards what the server
/// says as [`Net`] reports, and sends the app's commands while connected. Commands given
/// while disconnected are dropped (the app refuses to send them and says so).
pub async fn run(
    connect: Box<dyn Connect>,
    operator: Option<String>,
    to_app: mpsc::Sender<Net>,
    mut commands: mpsc::Receiver<ClientMsg>,
    stop: CancellationToken,
) {
    let mut attempt = 1u32;
    loop {
        if to_app.send(Net::Connecting { attempt }).await.is_err() {
            return;
        }
        let reason = tokio::select! {
            _ = stop.cancelled() => return,
            reason = session(connect.as_ref(), operator.clone(), &to_app, &mut commands, &mut attempt) => reason,
        };
        let Some(reason) = reason else { return };
        let wait = backoff(attempt);
        let report = Net::Disconnected {
            reason,
            retry_in_ms: wait.as_millis() as u64,
        };
        if to_app.send(report).await.is_err() {
            return;
        }
        let sleep = tokio::time::sleep(wait);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = &mut sleep => break,
                // Drain, so the app never blocks on a full channel while we are away.
                command = commands.recv() => if command.is_none() { return },
            }
        }
        attempt = attempt.saturating_add(1);
    }
}

/// One connection's life. `None` when the app is gone; otherwise why the link ended.
async fn session(
    connect: &dyn Connect,
    operator: Option<String>,
    to_app: &mpsc::Sender<Net>,
    commands: &mut mpsc::Receiver<ClientMsg>,
    attempt: &mut u32,
) -> Option<String> {
    let stream = match connect.connect().await {
        Ok(stream) => stream,
        Err(e) => return Some(format!("cannot connect: {e}")),
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let hello = ClientMsg::Hello {
        protocol: PROTOCOL_VERSION,
        client: format!("loopsmith-console {}", env!("CARGO_PKG_VERSION")),
        operator,
        token: connect.token(),
    };
    if let Err(e) = write_frame(&mut writer, &hello).await {
        return Some(format!("handshake failed: {e}"));
    }
    match read_frame::<_, ServerMsg>(&mut reader).await {
        Ok(Some(ServerMsg::Welcome {
            server, operator, ..
        })) => {
            *attempt = 1;
            to_app
                .send(Net::Connected { server, operator })
                .await
                .ok()?;
        }
        Ok(Some(ServerMsg::Refused { reason })) => return Some(format!("refused: {reason}")),
        Ok(Some(_)) => return Some("the server did not start with a welcome".into()),
        Ok(None) => return Some("the server closed the connection during the handshake".into()),
        Err(e) => return Some(format!("handshake failed: {e}")),
    }
    // Reading is not cancel-safe, so frames come through their own task.
    let (frames_tx, mut frames) = mpsc::channel::<Result<ServerMsg, FrameError>>(256);
    let reader_task = tokio::spawn(async move {
        loop {
            let next = read_frame::<_, ServerMsg>(&mut reader).await;
            let end = !matches!(next, Ok(Some(_)) | Err(FrameError::Malformed(_)));
            let item = match next {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(FrameError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ))),
                Err(e) => Err(e),
            };
            if frames_tx.send(item).await.is_err() || end {
                return;
            }
        }
    });
    let reason = loop {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some(Ok(message)) => {
                    if to_app.send(Net::Message(Box::new(message))).await.is_err() {
                        reader_task.abort();
                        return None;
                    }
                }
                // A newer server may send something this console does not know; say so and
                // keep the link.
                Some(Err(FrameError::Malformed(problem))) => {
                    let note = ServerMsg::ProtocolError { message: format!("unreadable message from the server: {problem}") };
                    if to_app.send(Net::Message(Box::new(note))).await.is_err() {
                        reader_task.abort();
                        return None;
                    }
                }
                Some(Err(FrameError::Io(e))) => break e.to_string(),
                Some(Err(e)) => break e.to_string(),
                None => break "the connection ended".to_string(),
            },
            command = commands.recv() => match command {
                Some(command) => {
                    if let Err(e) = write_frame(&mut writer, &command).await {
                        break format!("cannot send: {e}");
                    }
                }
                None => {
                    reader_task.abort();
                    return None;
                }
            },
        }
    };
    reader_task.abort();
    Some(reason)
}
