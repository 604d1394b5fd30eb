//! A console's side of the control protocol, and an engine to talk to, for these tests.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loopsmith_engine::control::{BackendInfo, Control, ControlError, ControlledBackend, LogTap};
use loopsmith_engine::media::MediaEncoder;
use loopsmith_engine::protocol::control::{
    ClientMsg, Outcome, PROTOCOL_VERSION, ServerMsg, Token, read_frame, write_frame,
};
use loopsmith_engine::protocol::{Job, JobId, Platform, UserKey};
use loopsmith_engine::{Engine, MemoryStore, Router};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

use crate::common::{FakeBackend, settings, start};

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Client<S> {
    pub reader: ReadHalf<S>,
    pub writer: WriteHalf<S>,
    next_req: u64,
}

impl<S: AsyncRead + AsyncWrite> Client<S> {
    pub fn new(stream: S) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Client {
            reader,
            writer,
            next_req: 1,
        }
    }

    pub async fn send(&mut self, message: &ClientMsg) {
        write_frame(&mut self.writer, message).await.expect("send");
    }

    pub async fn hello(&mut self, token: Option<&str>) -> ServerMsg {
        self.send(&ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "test".into(),
            operator: Some("tess".into()),
            token: token.map(Token::new),
        })
        .await;
        self.recv().await
    }

    pub async fn recv(&mut self) -> ServerMsg {
        tokio::time::timeout(WAIT, read_frame(&mut self.reader))
            .await
            .expect("a message within 30 s")
            .expect("a readable frame")
            .expect("the connection is open")
    }

    /// Reads until `pick` accepts a message; everything before it is skipped.
    pub async fn until<T>(&mut self, mut pick: impl FnMut(&ServerMsg) -> Option<T>) -> T {
        loop {
            let message = self.recv().await;
            if let Some(found) = pick(&message) {
                return found;
            }
        }
    }

    pub async fn command(&mut self, make: impl FnOnce(u64) -> ClientMsg) -> Outcome {
        let req = self.next_req;
        self.next_req += 1;
        self.send(&make(req)).await;
        self.until(|m| match m {
            ServerMsg::Reply { req: r, outcome } if *r == req => Some(outcome.clone()),
            _ => None,
        })
        .await
    }

    pub async fn until_job(&mut self, id: JobId, state: &str) -> Job {
        self.until(|m| match m {
            ServerMsg::Job(job) if job.id == id && job.state.name() == state => {
                Some((**job).clone())
            }
            _ => None,
        })
        .await
    }

    /// True once the server has closed the connection; frames still in flight are skipped.
    pub async fn closed(&mut self) -> bool {
        let end = async {
            loop {
                match read_frame::<_, ServerMsg>(&mut self.reader).await {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => return true,
                }
            }
        };
        tokio::time::timeout(WAIT, end)
            .await
            .expect("the server closes within 30 s")
    }
}

pub struct Rig {
    pub engine: Engine,
    pub control: Control,
    pub backend: Arc<ControlledBackend>,
    pub logs: LogTap,
    _dir: tempfile::TempDir,
    pub shutdown: CancellationToken,
}

pub fn rig(fake: Arc<FakeBackend>, real_media: bool) -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = ControlledBackend::new(
        fake,
        BackendInfo {
            model: "fake".into(),
            provider: "cpu".into(),
            device: "cpu".into(),
            capacity: 1,
        },
    );
    let router = Router::new(vec![backend.clone()], true);
    let settings = settings(dir.path());
    let store = Arc::new(MemoryStore::new());
    let engine = if real_media {
        Engine::start(&settings, store, Arc::new(router), Arc::new(MediaEncoder))
            .expect("engine starts")
    } else {
        start(&settings, store, Arc::new(router))
    };
    let logs = LogTap::new();
    let control = Control::new(engine.clone(), vec![backend.clone()], logs.clone());
    Rig {
        engine,
        control,
        backend,
        logs,
        _dir: dir,
        shutdown: CancellationToken::new(),
    }
}

/// Starts the Unix socket server and waits (bounded) until it accepts connections.
pub async fn serve_unix(
    rig: &Rig,
    path: &Path,
) -> tokio::task::JoinHandle<Result<(), ControlError>> {
    let control = rig.control.clone();
    let (p, token) = (path.to_path_buf(), rig.shutdown.clone());
    let task = tokio::spawn(async move { control.serve_unix(&p, token).await });
    let connectable = async {
        while UnixStream::connect(path).await.is_err() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, connectable)
        .await
        .expect("the socket accepts within 30 s");
    task
}

pub fn operator() -> UserKey {
    UserKey::new(Platform::Console, "tess")
}
