//! The worker side of the engine: taking jobs in fair order, rendering, encoding, and
//! recording how each one ended.

use std::time::Instant;

use loopsmith_protocol::{Job, JobEvent, JobId, JobState, UserKey};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::{Engine, RunningJob, lock, now_ms};
use crate::Error;
use crate::backend::{BackendError, Progress, ProgressSink, RenderJob};

impl Engine {
    pub(super) async fn work(self) {
        loop {
            let next = tokio::select! {
                // Checked first: once stopping, a waiting job must stay queued.
                biased;
                _ = self.inner.stop.cancelled() => return,
                next = self.next_job() => next,
            };
            let (id, user, cancel) = next;
            self.announce_positions();
            self.run(id, cancel)
                .instrument(info_span!("job", job = %id, user = %user))
                .await;
        }
    }

    /// Waits for the next job in fair order and marks it running, in one step under the queue
    /// lock so a cancel always finds it in one place or the other.
    async fn next_job(&self) -> (JobId, UserKey, CancellationToken) {
        loop {
            let notified = self.inner.wake.notified();
            {
                let mut queue = lock(&self.inner.queue);
                if let Some((user, id)) = queue.pop() {
                    let cancel = self.inner.abort.child_token();
                    lock(&self.inner.running).insert(
                        id,
                        RunningJob {
                            user: user.clone(),
                            cancel: cancel.clone(),
                            cancelled_by: None,
                            started: Instant::now(),
                        },
                    );
                    if !queue.is_empty() {
                        // Another idle worker may take the next one.
                        self.inner.wake.notify_one();
                    }
                    return (id, user, cancel);
                }
            }
            notified.await;
        }
    }

    async fn run(&self, id: JobId, cancel: CancellationToken) {
        let outcome = self.render_and_encode(id, cancel).await;
        let started = lock(&self.inner.running).remove(&id).map(|r| r.started);
        if let Err(e) = outcome {
            // The job's record could not be read or written; it stays as stored and a restart
            // picks it up again.
            error!(error = %e, source = ?std::error::Error::source(&e), "job bookkeeping failed");
        }
        if let Some(started) = started {
            let took = started.elapsed().as_millis() as f64;
            let mut mean = lock(&self.inner.mean_job_ms);
            *mean = Some(mean.map_or(took, |m| 0.7 * m + 0.3 * took));
        }
    }

    async fn render_and_encode(&self, id: JobId, cancel: CancellationToken) -> Result<(), Error> {
        let Some(mut job) = self.job(id).await? else {
            warn!("queued job has no record; skipping");
            return Ok(());
        };
        if job.state.is_terminal() {
            return Ok(());
        }
        job.attempts += 1;
        job.timings.started_ms = Some(now_ms());
        job.state = JobState::Running {
            backend: String::new(),
            progress: 0.0,
        };
        self.save(&job, false).await?;
        self.publish(&job, None);

        let render_job = RenderJob {
            id,
            user: job.user.clone(),
            params: job.params.clone(),
        };
        let sink = self.progress_sink(&job);
        let result = tokio::select! {
            result = self.inner.backend.render(&render_job, sink, cancel.clone()) => result,
            // A backend that does not check its token still stops here.
            _ = cancel.cancelled() => Err(BackendError::Cancelled),
        };
        let cancelled_by = || {
            lock(&self.inner.running)
                .get(&id)
                .and_then(|r| r.cancelled_by.clone())
        };

        let clip = match result {
            Ok(clip) => clip,
            Err(BackendError::Cancelled) => return self.interrupted(job, cancelled_by()).await,
            Err(err) => {
                error!(error = %err, source = ?std::error::Error::source(&err), "render failed");
                job.state = JobState::Failed {
                    reason: err.user_message(),
                    retryable: err.retryable(),
                    chain: crate::error_levels(&err),
                };
                return self.finish(job).await;
            }
        };
        if let Err(problem) = clip.validate() {
            error!(backend = %clip.backend, problem, "backend returned a malformed clip");
            job.state = JobState::Failed {
                reason: "Rendering failed on our side; please try again.".to_string(),
                retryable: true,
                chain: vec![format!(
                    "{} returned a malformed clip: {problem}",
                    clip.backend
                )],
            };
            return self.finish(job).await;
        }
        job.backend = Some(clip.backend.clone());
        job.params.seed = clip.seed;
        job.timings.rendered_ms = Some(now_ms());
        job.state = JobState::Encoding {
            backend: clip.backend.clone(),
        };
        self.save(&job, false).await?;
        self.publish(&job, None);

        let encoder = self.inner.encoder.clone();
        let dir = self.inner.artifacts_dir.join(id.to_string());
        let params = job.params.clone();
        // Failures keep every level of their error, for the job's record.
        let encoded = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| {
                let mut levels = vec![format!("cannot create {}", dir.display())];
                levels.extend(crate::error_levels(&e));
                levels
            })?;
            encoder
                .encode(&clip, &params, &dir)
                .map_err(|e| crate::error_levels(&e))
        })
        .await
        .map_err(|e| crate::error_levels(&e))
        .and_then(|r| r);
        if let Some(by) = cancelled_by() {
            return self.interrupted(job, Some(by)).await;
        }
        job.state = match encoded {
            Ok(artifacts) => JobState::Done { artifacts },
            Err(mut chain) => {
                error!(problem = %chain.join(": "), "encoding failed");
                chain.insert(0, "encoding failed".to_string());
                JobState::Failed {
                    reason:
                        "The clip rendered, but making the sticker file failed; please try again."
                            .to_string(),
                    retryable: true,
                    chain,
                }
            }
        };
        self.finish(job).await
    }

    /// A render stopped by its token: a user's cancel ends the job, a shutdown leaves it queued
    /// for the next start.
    async fn interrupted(&self, mut job: Job, cancelled_by: Option<UserKey>) -> Result<(), Error> {
        match cancelled_by {
            Some(by) => {
                info!(by = %by, "cancelled while running");
                job.state = JobState::Cancelled { by };
                self.finish(job).await
            }
            None => {
                info!("interrupted by shutdown; left queued for the next start");
                job.state = JobState::Queued;
                self.save(&job, true).await
            }
        }
    }

    async fn finish(&self, mut job: Job) -> Result<(), Error> {
        job.timings.finished_ms = Some(now_ms());
        self.save(&job, true).await?;
        info!(
            state = job.state.name(),
            backend = job.backend.as_deref().unwrap_or("-"),
            "finished"
        );
        self.publish(&job, None);
        Ok(())
    }

    async fn save(&self, job: &Job, durable: bool) -> Result<(), Error> {
        let record = job.clone();
        self.on_store(move |s| s.update_job(&record, durable)).await
    }

    fn progress_sink(&self, job: &Job) -> ProgressSink {
        let engine = self.clone();
        let (id, user) = (job.id, job.user.clone());
        ProgressSink::new(move |p: Progress| {
            let state = JobState::Running {
                backend: p.backend,
                progress: p.fraction,
            };
            let started = lock(&engine.inner.running).get(&id).map(|r| r.started);
            let eta_ms = engine.eta_ms(&state, None, started);
            let _ = engine.inner.events.send(JobEvent {
                job: id,
                user: user.clone(),
                state,
                position: None,
                eta_ms,
            });
        })
    }
}
