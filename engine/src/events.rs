//! A job's own stream of events, cut from the engine-wide broadcast.

use loopsmith_protocol::{Job, JobEvent, JobId, JobState};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::Engine;

/// What `Engine::submit` returns: the job, where it stands, and its events.
#[derive(Debug)]
pub struct Submitted {
    pub job: JobId,
    /// 1-based place in the queue while it waits.
    pub position: Option<u32>,
    /// True when the request replayed a platform event that already made this job.
    pub duplicate: bool,
    pub state: JobState,
    pub events: JobEvents,
}

/// Events of one job, ending after its final state.
#[derive(Debug)]
pub struct JobEvents {
    rx: broadcast::Receiver<JobEvent>,
    job: JobId,
    engine: Engine,
    finished: bool,
    /// Returned before anything from the broadcast (the state when watching began).
    first: Option<JobEvent>,
}

impl JobEvents {
    pub(crate) fn new(
        rx: broadcast::Receiver<JobEvent>,
        job: JobId,
        engine: Engine,
        finished: bool,
    ) -> Self {
        JobEvents {
            rx,
            job,
            engine,
            finished,
            first: None,
        }
    }

    /// Starts with `current`, the job's state when watching began.
    pub(crate) fn starting_with(
        rx: broadcast::Receiver<JobEvent>,
        engine: Engine,
        current: JobEvent,
    ) -> Self {
        JobEvents {
            rx,
            job: current.job,
            engine,
            finished: false,
            first: Some(current),
        }
    }

    /// The job's next event; `None` once its final event has been returned.
    pub async fn next(&mut self) -> Option<JobEvent> {
        if self.finished {
            return None;
        }
        if let Some(event) = self.first.take() {
            self.finished = event.state.is_terminal();
            return Some(event);
        }
        loop {
            // Biased: whatever was published before the engine closed is returned first.
            let received = tokio::select! {
                biased;
                received = self.rx.recv() => received,
                () = self.engine.closed() => {
                    // The engine has stopped: this job will not move again in this process.
                    // Its stored state may be final (published before we subscribed).
                    self.finished = true;
                    return match self.engine.job(self.job).await {
                        Ok(Some(job)) if job.state.is_terminal() => Some(event_of(&job)),
                        _ => None,
                    };
                }
            };
            match received {
                Ok(event) if event.job == self.job => {
                    self.finished = event.state.is_terminal();
                    return Some(event);
                }
                Ok(_) => continue,
                // Too slow to keep up: progress ticks were dropped, but the final state must not
                // be, so look at the stored record.
                Err(RecvError::Lagged(_)) => {
                    if let Ok(Some(job)) = self.engine.job(self.job).await
                        && job.state.is_terminal()
                    {
                        self.finished = true;
                        return Some(event_of(&job));
                    }
                }
                Err(RecvError::Closed) => {
                    self.finished = true;
                    return None;
                }
            }
        }
    }
}

pub(crate) fn event_of(job: &Job) -> JobEvent {
    JobEvent {
        job: job.id,
        user: job.user.clone(),
        state: job.state.clone(),
        position: None,
        eta_ms: None,
    }
}
