//! Following one job on a chat surface, written once for every platform: the "queued" reply,
//! progress edits no more often than the platform tolerates, a "working" indicator kept alive
//! while the job renders, and the result or the reason there is none.

use std::future::Future;
use std::time::Duration;

use loopsmith_engine::JobEvents;
use loopsmith_engine::protocol::{Artifact, JobEvent, JobId, JobState};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, warn};

use super::texts;

/// A chat surface failed; the text is safe to log (no tokens, no URLs with secrets).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SurfaceError(pub String);

/// What a platform adapter does for [`follow`]. Each call is one message-level action.
pub trait Surface: Send + Sync {
    /// A posted status message, to be edited later.
    type Status: Clone + Send + Sync;

    /// Posts a new status message (the reply to the request).
    fn post(&self, text: &str) -> impl Future<Output = Result<Self::Status, SurfaceError>> + Send;

    /// Replaces a status message's text.
    fn edit(
        &self,
        status: &Self::Status,
        text: &str,
    ) -> impl Future<Output = Result<(), SurfaceError>> + Send;

    /// Shows that something is being made (Telegram's chat action, Discord's typing); it
    /// fades by itself after a few seconds.
    fn working(&self) -> impl Future<Output = Result<(), SurfaceError>> + Send;

    /// The status line once the files are delivered; platforms whose buttons differ say so.
    fn delivered_text(&self) -> String {
        texts::delivered()
    }

    /// Delivers a finished job's files.
    fn deliver(
        &self,
        status: &Self::Status,
        job: JobId,
        artifacts: &[Artifact],
    ) -> impl Future<Output = Result<(), SurfaceError>> + Send;
}

/// Where a job's events come from: the engine's stream, or a channel in tests.
pub trait EventSource: Send {
    fn next_event(&mut self) -> impl Future<Output = Option<JobEvent>> + Send;
}

impl EventSource for JobEvents {
    async fn next_event(&mut self) -> Option<JobEvent> {
        self.next().await
    }
}

impl EventSource for tokio::sync::mpsc::Receiver<JobEvent> {
    async fn next_event(&mut self) -> Option<JobEvent> {
        self.recv().await
    }
}

/// How often a surface may be touched while a job runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// At least this long between two edits of the status message.
    pub edit_every: Duration,
    /// The working indicator is re-sent this often while the job renders.
    pub working_every: Duration,
}

impl Pacing {
    /// Telegram: one edit per 2 s keeps well inside the per-chat limit; a chat action lasts
    /// "5 seconds or less", so it is renewed every 4 s.
    pub const TELEGRAM: Pacing = Pacing {
        edit_every: Duration::from_secs(2),
        working_every: Duration::from_secs(4),
    };

    /// Discord: the interaction webhook bucket is undocumented and serenity keys every
    /// `@original` edit to one bucket per application, so each job edits at most every 1.5 s
    /// (the adapter also spaces edits across jobs). A deferred response shows "thinking…"
    /// by itself and there is no typing indicator for it to renew, so `working` is rare.
    pub const DISCORD: Pacing = Pacing {
        edit_every: Duration::from_millis(1_500),
        working_every: Duration::from_secs(3_600),
    };
}

/// How following a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered,
    /// The job is done but delivering it failed.
    Undelivered(SurfaceError),
    Failed {
        reason: String,
    },
    Cancelled,
    /// The event stream ended without a final state (the engine is shutting down).
    Interrupted,
}

/// Follows a job from its queued reply to its result.
pub async fn follow<S: Surface, E: EventSource>(
    surface: &S,
    job: JobId,
    position: Option<u32>,
    mut events: E,
    pacing: Pacing,
) -> Result<Outcome, SurfaceError> {
    let status = surface.post(&texts::queued(position)).await?;
    let mut shown = texts::queued(position);
    let mut pending: Option<String> = None;
    let mut last_edit = Instant::now();
    // The working indicator is only shown while the job renders or encodes.
    let mut next_working: Option<Instant> = None;
    let final_state = loop {
        let edit_at = pending.as_ref().map(|_| last_edit + pacing.edit_every);
        tokio::select! {
            event = events.next_event() => {
                let Some(event) = event else { break None };
                if event.job != job {
                    continue;
                }
                if event.state.is_terminal() {
                    break Some(event.state);
                }
                let active = matches!(event.state, JobState::Running { .. } | JobState::Encoding { .. });
                match (active, next_working) {
                    (true, None) => next_working = Some(Instant::now()),
                    (false, Some(_)) => next_working = None,
                    _ => {}
                }
                let eta = event.eta_ms.map(Duration::from_millis);
                let text = texts::progress(&event.state, event.position, eta);
                pending = (text != shown).then_some(text);
            }
            _ = sleep_until(edit_at.unwrap_or_else(far_future)), if edit_at.is_some() => {
                if let Some(text) = pending.take() {
                    last_edit = Instant::now();
                    match surface.edit(&status, &text).await {
                        Ok(()) => shown = text,
                        // Progress is cosmetic: a failed edit is logged and the job goes on.
                        Err(e) => warn!(job = %job, error = %e, "progress edit failed"),
                    }
                }
            }
            _ = sleep_until(next_working.unwrap_or_else(far_future)), if next_working.is_some() => {
                next_working = Some(Instant::now() + pacing.working_every);
                if let Err(e) = surface.working().await {
                    debug!(job = %job, error = %e, "chat action failed");
                }
            }
        }
    };
    let outcome = match final_state {
        Some(JobState::Done { artifacts }) => {
            let delivered = surface.deliver(&status, job, &artifacts).await;
            let (text, outcome) = match delivered {
                Ok(()) => (surface.delivered_text(), Outcome::Delivered),
                Err(e) => {
                    warn!(job = %job, error = %e, "delivery failed");
                    (texts::undelivered(), Outcome::Undelivered(e))
                }
            };
            finish(surface, &status, &shown, &text, last_edit, pacing).await;
            outcome
        }
        Some(JobState::Failed {
            reason, retryable, ..
        }) => {
            let text = texts::failed(&reason, retryable);
            finish(surface, &status, &shown, &text, last_edit, pacing).await;
            Outcome::Failed { reason }
        }
        Some(JobState::Cancelled { .. }) => {
            finish(
                surface,
                &status,
                &shown,
                &texts::cancelled(),
                last_edit,
                pacing,
            )
            .await;
            Outcome::Cancelled
        }
        _ => Outcome::Interrupted,
    };
    Ok(outcome)
}

/// The last edit also keeps to the pacing, so a quick job never edits twice within the window.
async fn finish<S: Surface>(
    surface: &S,
    status: &S::Status,
    shown: &str,
    text: &str,
    last_edit: Instant,
    pacing: Pacing,
) {
    if text == shown {
        return;
    }
    sleep_until(last_edit + pacing.edit_every).await;
    if let Err(e) = surface.edit(status, text).await {
        warn!(error = %e, "final status edit failed");
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
