//! One console connection: handshake, snapshot, then commands in and updates out.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use loopsmith_protocol::control::{
    BackendRow, ClientMsg, FrameError, PROTOCOL_VERSION, ServerMsg, Snapshot,
    frame::read_frame_limited, read_frame, write_frame,
};
use loopsmith_protocol::{JobEvent, JobId, Platform, UserKey};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::commands::{execute, user_row};
use super::{Access, SNAPSHOT_JOBS, Shared};
use crate::Error;

/// An unauthenticated peer gets this long, and this many bytes, to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HELLO_MAX_BYTES: usize = 64 * 1024;
/// Backend health has no events; it is looked at this often and sent only when it changed.
const BACKEND_POLL: Duration = Duration::from_secs(1);
const OUTBOX: usize = 512;

pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    stream: S,
    access: Access,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let operator = match handshake(&shared, &mut reader, &mut writer, &access).await {
        Ok(operator) => operator,
        Err(reason) => {
            let _ = write_frame(&mut writer, &ServerMsg::Refused { reason }).await;
            return;
        }
    };

    // Reading is not cancel-safe (a frame half read would be lost), so it gets its own task.
    let (in_tx, mut inbox) = mpsc::channel::<Result<ClientMsg, String>>(64);
    // Aborted when this session ends in any way, its own task being aborted included: the
    // read half keeps the connection open for as long as it lives.
    let reader_task = AbortOnDrop(tokio::spawn(async move {
        loop {
            match read_frame::<_, ClientMsg>(&mut reader).await {
                Ok(Some(message)) => {
                    if in_tx.send(Ok(message)).await.is_err() {
                        return;
                    }
                }
                // The length prefix kept the stream in step: report the bad frame, carry on.
                Err(FrameError::Malformed(problem)) => {
                    if in_tx.send(Err(problem)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    warn!(error = %e, "control session ended");
                    return;
                }
            }
        }
    }));
    let (out, mut outbox) = mpsc::channel::<ServerMsg>(OUTBOX);
    let writer_task = tokio::spawn(async move {
        while let Some(message) = outbox.recv().await {
            if write_frame(&mut writer, &message).await.is_err() {
                return;
            }
        }
    });

    let session = Session {
        shared: shared.clone(),
        operator,
        out,
    };
    session.serve(&mut inbox, shutdown).await;
    drop(reader_task);
    // Let what was queued go out (a final reply), then close.
    drop(session);
    let _ = writer_task.await;
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn handshake<R, W>(
    shared: &Shared,
    reader: &mut R,
    writer: &mut W,
    access: &Access,
) -> Result<UserKey, String>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let first = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        read_frame_limited::<_, ClientMsg>(reader, HELLO_MAX_BYTES),
    )
    .await
    .map_err(|_| "no hello within 10 seconds".to_string())?
    .map_err(|e| e.to_string())?;
    let Some(ClientMsg::Hello {
        protocol,
        client,
        operator,
        token,
    }) = first
    else {
        return Err("the first message must be a hello".into());
    };
    if protocol != PROTOCOL_VERSION {
        return Err(format!(
            "this server speaks control protocol {PROTOCOL_VERSION} and the console speaks \
             {protocol}; run the same loopsmith version on both ends"
        ));
    }
    if let Access::Token(expected) = access {
        let given = token.as_ref().map(|t| t.expose().as_bytes()).unwrap_or(b"");
        // Constant time in the token's content; only a length mismatch returns early.
        if !bool::from(given.ct_eq(expected.expose().as_bytes())) {
            warn!(client = %client, "control connection refused: wrong or missing token");
            return Err("a valid control token is required".into());
        }
    }
    let operator = UserKey::new(Platform::Console, operator_name(operator.as_deref()));
    info!(client = %client, operator = %operator, "console attached");
    write_frame(
        writer,
        &ServerMsg::Welcome {
            protocol: PROTOCOL_VERSION,
            server: shared.server.clone(),
            operator: operator.clone(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(operator)
}

/// A login-like name, or `operator`: it ends up in job records and log lines.
fn operator_name(given: Option<&str>) -> String {
    match given {
        Some(name)
            if !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) =>
        {
            name.to_string()
        }
        _ => "operator".to_string(),
    }
}

struct Session {
    shared: Arc<Shared>,
    operator: UserKey,
    out: mpsc::Sender<ServerMsg>,
}

impl Session {
    async fn serve(
        &self,
        inbox: &mut mpsc::Receiver<Result<ClientMsg, String>>,
        shutdown: CancellationToken,
    ) {
        // Subscribe before the snapshot is taken so nothing between the two is missed.
        let mut events = self.shared.engine.subscribe();
        let (recent_logs, mut logs) = self.shared.logs.subscribe();
        let mut known = Seen::default();
        if !self.send_snapshot(recent_logs, &mut known).await {
            return;
        }
        let mut last_status = self.status();
        let mut poll = tokio::time::interval(BACKEND_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let alive = tokio::select! {
                _ = shutdown.cancelled() => false,
                message = inbox.recv() => match message {
                    None => false,
                    Some(Err(problem)) => self.send(ServerMsg::ProtocolError { message: problem }).await,
                    Some(Ok(ClientMsg::Refresh)) => {
                        let (recent, _) = self.shared.logs.subscribe();
                        self.send_snapshot(recent, &mut known).await
                    }
                    Some(Ok(command)) => {
                        self.command(command);
                        true
                    }
                },
                event = events.recv() => match event {
                    Ok(event) => self.forward(event, &mut known).await,
                    // Fell behind: a snapshot is cheaper to reason about than a gap.
                    Err(RecvError::Lagged(_)) => {
                        let (recent, _) = self.shared.logs.subscribe();
                        self.send_snapshot(recent, &mut known).await
                    }
                    Err(RecvError::Closed) => false,
                },
                line = logs.recv() => match line {
                    Ok(line) => self.send(ServerMsg::Log(line)).await,
                    Err(RecvError::Lagged(_)) => true,
                    Err(RecvError::Closed) => true,
                },
                _ = poll.tick() => {
                    let status = self.status();
                    if status == last_status {
                        true
                    } else {
                        last_status = status.clone();
                        self.send(status).await
                    }
                }
            };
            if !alive {
                return;
            }
        }
    }

    async fn send(&self, message: ServerMsg) -> bool {
        self.out.send(message).await.is_ok()
    }

    fn status(&self) -> ServerMsg {
        status(&self.shared)
    }

    async fn send_snapshot(
        &self,
        logs: Vec<loopsmith_protocol::control::LogLine>,
        known: &mut Seen,
    ) -> bool {
        match snapshot(&self.shared, logs).await {
            Ok((snapshot, totals)) => {
                known.states.clear();
                known
                    .states
                    .extend(snapshot.jobs.iter().map(|j| (j.id, j.state.name())));
                known.totals = totals;
                self.send(ServerMsg::Snapshot(Box::new(snapshot))).await
            }
            Err(e) => {
                warn!(error = %e, source = ?std::error::Error::source(&e), "cannot build a console snapshot");
                self.send(ServerMsg::ProtocolError {
                    message: format!("the server could not read its jobs: {e}"),
                })
                .await
            }
        }
    }

    /// A progress tick goes out as the event; a job's first appearance or a change of state
    /// goes out as the full record, which carries the timings and artifacts the event lacks.
    async fn forward(&self, event: JobEvent, known: &mut Seen) -> bool {
        let name = event.state.name();
        let first = !known.states.contains_key(&event.job);
        if known.states.get(&event.job) == Some(&name) {
            return self.send(ServerMsg::Event(event)).await;
        }
        known.states.insert(event.job, name);
        let engine = &self.shared.engine;
        match engine.job(event.job).await {
            Ok(Some(mut job)) => {
                // The broadcast may be ahead of the store (a progress tick is not saved).
                job.state = event.state.clone();
                if !self.send(ServerMsg::Job(Box::new(job))).await {
                    return false;
                }
                if (event.position.is_some() || event.eta_ms.is_some())
                    && !self.send(ServerMsg::Event(event.clone())).await
                {
                    return false;
                }
                if first {
                    // Counted here rather than by re-reading every job from the store.
                    let total = known.totals.entry(event.user.clone()).or_default();
                    *total += 1;
                    let total = *total;
                    if let Ok(row) = user_row(engine, &event.user, Some(total)).await {
                        return self.send(ServerMsg::User(row)).await;
                    }
                }
                true
            }
            _ => self.send(ServerMsg::Event(event)).await,
        }
    }

    /// Runs a command on its own task so a slow one (a preview decode) never holds up updates.
    fn command(&self, command: ClientMsg) {
        let shared = self.shared.clone();
        let operator = self.operator.clone();
        let out = self.out.clone();
        tokio::spawn(async move {
            for message in execute(&shared, &operator, command).await {
                if out.send(message).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Backend rows, queue depth and spend, as one message.
pub(super) fn status(shared: &Shared) -> ServerMsg {
    ServerMsg::Backends {
        backends: shared
            .backends
            .iter()
            .map(|b| b.row())
            .collect::<Vec<BackendRow>>(),
        queue_len: shared.engine.queue_len() as u64,
        spend: shared.spend.read(),
    }
}

/// What a session has told its console: each job's kind of state, and each user's job count.
#[derive(Default)]
struct Seen {
    states: HashMap<JobId, &'static str>,
    totals: HashMap<UserKey, u64>,
}

/// The snapshot, and every user's job count (the snapshot's jobs may be capped; counts not).
async fn snapshot(
    shared: &Shared,
    logs: Vec<loopsmith_protocol::control::LogLine>,
) -> Result<(Snapshot, HashMap<UserKey, u64>), Error> {
    let engine = &shared.engine;
    let mut jobs = engine.jobs().await?;
    let mut per_user: BTreeMap<UserKey, u64> = BTreeMap::new();
    for job in &jobs {
        *per_user.entry(job.user.clone()).or_default() += 1;
    }
    if jobs.len() > SNAPSHOT_JOBS {
        jobs.drain(..jobs.len() - SNAPSHOT_JOBS);
    }
    let mut users = Vec::with_capacity(per_user.len());
    for (key, total) in &per_user {
        users.push(user_row(engine, key, Some(*total)).await?);
    }
    let snapshot = Snapshot {
        jobs,
        users,
        backends: shared.backends.iter().map(|b| b.row()).collect(),
        queue_len: engine.queue_len() as u64,
        logs,
        // Without a spend source the console says "not tracked" instead of showing 0.
        spend: shared.spend.read(),
        now_ms: crate::now_ms(),
    };
    Ok((snapshot, per_user.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names_are_login_like_or_replaced() {
        assert_eq!(operator_name(Some("ann.b-1")), "ann.b-1");
        assert_eq!(operator_name(Some("")), "operator");
        assert_eq!(operator_name(Some("a b")), "operator");
        assert_eq!(operator_name(Some(&"x".repeat(65))), "operator");
        assert_eq!(operator_name(None), "operator");
    }
}
