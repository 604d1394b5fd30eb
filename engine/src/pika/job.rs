//! One Pika job from reservation to clip, and the ticket that makes sure a reservation or a
//! submitted request is always closed: settled, refunded or cancelled at fal, even when the
//! render future is dropped half-way (the engine drops it when a job is cancelled).

use std::sync::Arc;

use bytes::Bytes;
use loopsmith_protocol::JobId;
use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::budget::Budget;
use super::client::{CancelOutcome, FalClient, FalFile, JobLimits, QueueStatus};
use super::error::PikaError;
use super::inputs::{ImageSource, PikaInput};
use super::retry::Call;
use super::{PikaOptions, today};
use crate::backend::{Clip, ProgressSink, RenderJob};
use crate::media::decode::{DecodeLimits, DecodeWith, decode_mp4_with};
use crate::media::{Frames, PixelFormat};
use crate::store::{RemoteRequest, SpendState, Store};

const NAME: &str = "pika";

pub(super) struct Run<'a> {
    pub client: Arc<FalClient>,
    pub media: &'a reqwest::Client,
    pub store: Arc<dyn Store>,
    pub budget: &'a Budget,
    pub options: &'a PikaOptions,
    pub job: &'a RenderJob,
    pub progress: ProgressSink,
    pub cancel: CancellationToken,
    pub stopping: CancellationToken,
}

impl Run<'_> {
    pub async fn run(self, input: PikaInput) -> Result<Clip, PikaError> {
        let clock = self.client.clock().clone();
        let limits = JobLimits {
            cancel: self.cancel.clone(),
            deadline: clock.now() + self.options.deadline,
            allowance: self.options.deadline,
        };
        let job_id = self.job.id;
        let mut ticket = Ticket {
            client: self.client.clone(),
            store: self.store.clone(),
            budget: self.budget.clone(),
            job: job_id,
            stage: Stage::Nothing,
            stopping: self.stopping.clone(),
        };
        let store = self.store.clone();
        let recorded = off_thread(move || store.remote_request(job_id))
            .await?
            .filter(|r| r.backend == NAME && r.endpoint == input.endpoint());
        let request = match recorded {
            Some(request) => {
                info!(job = %job_id, request = %request.request_id, "resuming the request submitted before a restart");
                // Already paid for: counted if the ledger somehow lacks it, never refused.
                let (budget, user, resumed) =
                    (self.budget.clone(), self.job.user.clone(), input.clone());
                match off_thread(move || budget.reserve(job_id, &user, &resumed, today())).await {
                    Ok(_) | Err(PikaError::OverBudget(_)) => {}
                    Err(e) => return Err(e),
                }
                ticket.stage = Stage::Submitted {
                    request: request.clone(),
                    started: true,
                };
                self.progress
                    .report(NAME, 0.02, Some("resuming the request at fal".into()));
                request
            }
            None => self.submit(&input, &limits, &mut ticket).await?,
        };

        let file = match self.poll(&request, &limits, &mut ticket).await {
            Ok(file) => file,
            Err(e @ (PikaError::Cancelled | PikaError::Deadline(_))) => {
                ticket.abandon().await;
                return Err(e);
            }
            Err(e) => {
                match after_submit(&e) {
                    Some(outcome) => ticket.close(outcome).await,
                    // We stop watching a request that may still run: ask fal to drop it.
                    None => ticket.abandon().await,
                }
                return Err(e);
            }
        };
        // From here fal has made the video and charged for it.
        let clip = self.fetch_and_decode(&file, &input, &limits).await;
        ticket.close(SpendState::Settled).await;
        clip
    }

    async fn submit(
        &self,
        input: &PikaInput,
        limits: &JobLimits,
        ticket: &mut Ticket,
    ) -> Result<RemoteRequest, PikaError> {
        let (budget, user, job_id, reserved) = (
            self.budget.clone(),
            self.job.user.clone(),
            self.job.id,
            input.clone(),
        );
        let amount = off_thread(move || budget.reserve(job_id, &user, &reserved, today())).await?;
        ticket.stage = Stage::Reserved;
        info!(job = %job_id, cost = %super::budget::usd(amount), "reserved the estimated cost");

        let mut urls = Vec::new();
        for (i, image) in input.images().into_iter().enumerate() {
            urls.push(match image {
                ImageSource::Url(url) => url.clone(),
                ImageSource::Bytes {
                    bytes,
                    content_type,
                    file_name,
                } => {
                    self.progress.report(
                        NAME,
                        0.01,
                        Some(format!("uploading image {} to fal", i + 1)),
                    );
                    let uploaded = self
                        .client
                        .upload(Bytes::clone(bytes), content_type, file_name, limits)
                        .await;
                    match uploaded {
                        Ok(url) => url,
                        Err(e) => {
                            ticket.close(SpendState::Refunded).await;
                            return Err(e);
                        }
                    }
                }
            });
        }

        self.progress
            .report(NAME, 0.01, Some("submitting to fal".into()));
        let body = input.to_json(&urls);
        let submission = match self.client.submit(input.endpoint(), &body, limits).await {
            Ok(submission) => submission,
            Err(e) => {
                ticket.close(at_submit(&e)).await;
                return Err(e);
            }
        };
        let request = RemoteRequest {
            job: job_id,
            backend: NAME.into(),
            endpoint: input.endpoint().into(),
            request_id: submission.request_id.clone(),
            status_url: submission.status_url,
            response_url: submission.response_url,
            cancel_url: submission.cancel_url,
            submitted_ms: crate::now_ms(),
        };
        ticket.stage = Stage::Submitted {
            request: request.clone(),
            started: false,
        };
        let store = self.store.clone();
        let record = request.clone();
        if let Err(e) = off_thread(move || store.put_remote_request(&record)).await {
            // The request is paid for; losing the record only loses resumability.
            error!(job = %job_id, error = %e, "cannot record fal's request id; a restart would submit again");
        }
        info!(job = %job_id, request = %request.request_id, "submitted to fal");
        if let Some(position) = submission.queue_position {
            self.progress
                .report(NAME, 0.02, Some(queued_note(Some(position))));
        }
        Ok(request)
    }

    /// Follows the status stream when enabled, polls otherwise or once the stream gives out,
    /// until COMPLETED; then fetches the result.
    async fn poll(
        &self,
        request: &RemoteRequest,
        limits: &JobLimits,
        ticket: &mut Ticket,
    ) -> Result<FalFile, PikaError> {
        let mut watch = Watch::default();
        if self.options.status_stream {
            let completed = self
                .client
                .follow_status(
                    &request.status_url,
                    limits,
                    self.options.stream_silence,
                    |status| {
                        watch.see(status, false, &self.progress, ticket, self.job.id);
                    },
                )
                .await?;
            if completed {
                return self.client.result(&request.response_url, limits).await;
            }
        }
        loop {
            let status = self.client.status(&request.status_url, limits).await?;
            if watch.see(status, true, &self.progress, ticket, self.job.id) {
                return self.client.result(&request.response_url, limits).await;
            }
            let jitter = rand::rng().random_range(0.75..=1.25);
            self.client
                .wait(self.options.poll_interval.mul_f64(jitter), limits)
                .await?;
        }
    }

    /// Fetches the result, again after a passing fault (a 429 or 5xx from the media host, a
    /// broken connection, a stall) within the retry policy: the render is paid for already.
    async fn download(&self, url: &str, limits: &JobLimits) -> Result<Vec<u8>, PikaError> {
        let policy = self.options.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let fetched = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(PikaError::Cancelled),
                fetched = self.options.download.fetch(self.media, url) => fetched,
            };
            let error = match fetched {
                Ok(bytes) => return Ok(bytes),
                Err(e) => e,
            };
            match error.transient() {
                Some(retry_after) if attempt < policy.max_attempts => {
                    warn!(attempt, error = %crate::error_chain(&error), "downloading the result failed; retrying");
                    self.client
                        .wait(policy.wait(attempt, retry_after), limits)
                        .await?;
                }
                _ => return Err(error.into()),
            }
        }
    }

    async fn fetch_and_decode(
        &self,
        file: &FalFile,
        input: &PikaInput,
        limits: &JobLimits,
    ) -> Result<Clip, PikaError> {
        self.progress
            .report(NAME, 0.9, Some("downloading the video".into()));
        let bytes = self.download(&file.url, limits).await?;
        self.progress
            .report(NAME, 0.95, Some("decoding the video".into()));
        let params = self.job.params.clone();
        let frames = tokio::task::spawn_blocking(move || {
            decode_mp4_with(&bytes, &DecodeLimits::REMOTE_CLIP, DecodeWith::Auto)
        })
        .await
        .map_err(|e| PikaError::Setup(format!("the decode task ended abnormally: {e}")))?
        .map_err(PikaError::Decode)?;
        if frames.frames.is_empty() || frames.width == 0 || frames.height == 0 || frames.fps == 0 {
            return Err(PikaError::EmptyVideo);
        }
        let frames = cut(frames, params.fps, params.duration_secs, params.timing);
        self.progress.report(NAME, 1.0, None);
        Ok(Clip {
            width: frames.width,
            height: frames.height,
            fps: frames.fps,
            frames: frames.frames,
            seed: input_seed(input),
            backend: NAME.into(),
        })
    }
}

/// What the statuses seen so far add up to, for progress reports.
#[derive(Debug, Default)]
struct Watch {
    logs_seen: usize,
    progress_updates: i32,
}

impl Watch {
    /// Reports one status; `true` once the request is COMPLETED. `cumulative`: the logs list
    /// every line so far (a poll) rather than only new ones (a stream event).
    fn see(
        &mut self,
        status: QueueStatus,
        cumulative: bool,
        progress: &ProgressSink,
        ticket: &mut Ticket,
        job: JobId,
    ) -> bool {
        match status {
            QueueStatus::InQueue { position } => {
                progress.report(NAME, 0.02, Some(queued_note(position)));
                false
            }
            QueueStatus::InProgress { logs } => {
                ticket.started();
                self.progress_updates += 1;
                // No percentage comes from fal; approach 80 % as updates go by.
                let fraction = 0.1 + 0.7 * (1.0 - 0.9f32.powi(self.progress_updates));
                let skip = if cumulative { self.logs_seen } else { 0 };
                let fresh: Vec<String> = logs.into_iter().skip(skip).collect();
                self.logs_seen = if cumulative {
                    skip + fresh.len()
                } else {
                    self.logs_seen + fresh.len()
                };
                for line in &fresh {
                    info!(job = %job, fal_log = %line, "fal");
                }
                let note = match fresh.last() {
                    Some(line) => format!("rendering at fal: {}", short(line)),
                    None => "rendering at fal".to_string(),
                };
                progress.report(NAME, fraction, Some(note));
                false
            }
            QueueStatus::Completed { error } => {
                ticket.started();
                if let Some(error) = error {
                    warn!(job = %job, error = %error, "fal reports the request failed");
                }
                progress.report(NAME, 0.85, Some("fetching the result from fal".into()));
                true
            }
        }
    }
}

/// RGB, at the job's frame rate, no longer than asked: Pika's shortest clip is 5 s.
fn cut(frames: Frames, fps: u32, duration_secs: f32, timing: crate::media::Timing) -> Frames {
    let rgb = if frames.format == PixelFormat::Rgb8 {
        frames
    } else {
        frames.to_rgb()
    };
    rgb.with_fps(fps.max(1))
        .limit_duration(f64::from(duration_secs), timing, false)
}

fn input_seed(input: &PikaInput) -> u32 {
    match input {
        PikaInput::TextToVideo { common, .. }
        | PikaInput::ImageToVideo { common, .. }
        | PikaInput::Scenes { common, .. }
        | PikaInput::Frames { common, .. } => common.seed,
    }
}

fn queued_note(position: Option<u64>) -> String {
    match position {
        Some(p) => format!("queued at fal, position {}", p + 1),
        None => "queued at fal".to_string(),
    }
}

fn short(line: &str) -> String {
    let line: String = line.chars().filter(|c| !c.is_control()).take(80).collect();
    line.trim().to_string()
}

/// Whether a failed submit may have been charged. fal bills neither 5xx answers nor requests
/// that never ran. Two cases are unknown and counted rather than risked: a connection that
/// broke after sending, and a 200 answer we refused to use (the request exists at fal).
fn at_submit(e: &PikaError) -> SpendState {
    match e {
        PikaError::Transport { source, .. } if !source.is_connect() => SpendState::Settled,
        PikaError::BadAnswer { .. } | PikaError::ForeignUrl { .. } => SpendState::Settled,
        _ => SpendState::Refunded,
    }
}

/// How a request that failed after submitting is closed, or `None` when it may still be
/// running at fal (polling gave up) and must be cancelled there first.
fn after_submit(e: &PikaError) -> Option<SpendState> {
    match e {
        // fal gave up before starting it: never billed.
        PikaError::StartTimeout { .. } => Some(SpendState::Refunded),
        // The result call answered: the request is over. 5xx results are not billed; a model
        // error may be.
        PikaError::Http {
            call: Call::Result,
            status,
            ..
        } if *status >= 500 => Some(SpendState::Refunded),
        PikaError::Http {
            call: Call::Result, ..
        }
        | PikaError::BadAnswer {
            call: Call::Result, ..
        }
        | PikaError::Rejected { .. } => Some(SpendState::Settled),
        _ => None,
    }
}

async fn off_thread<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, PikaError>
where
    T: Send + 'static,
    E: Into<PikaError> + Send + 'static,
{
    match tokio::task::spawn_blocking(move || work().map_err(Into::into)).await {
        Ok(result) => result,
        Err(e) => Err(PikaError::Setup(format!(
            "a store task ended abnormally: {e}"
        ))),
    }
}

#[derive(Debug, Clone)]
enum Stage {
    Nothing,
    /// Cost reserved, nothing submitted.
    Reserved,
    /// `started`: fal reported IN_PROGRESS or later (or we cannot tell, after a restart).
    Submitted {
        request: RemoteRequest,
        started: bool,
    },
    Closed,
}

/// Keeps the books straight for one job. Dropped while open (the render future was dropped),
/// it finishes the job's affairs on a task of its own.
struct Ticket {
    client: Arc<FalClient>,
    store: Arc<dyn Store>,
    budget: Budget,
    job: JobId,
    stage: Stage,
    stopping: CancellationToken,
}

impl Ticket {
    fn started(&mut self) {
        if let Stage::Submitted { started, .. } = &mut self.stage {
            *started = true;
        }
    }

    /// Closes the reservation and forgets the request.
    async fn close(&mut self, outcome: SpendState) {
        let stage = std::mem::replace(&mut self.stage, Stage::Closed);
        settle(
            self.store.clone(),
            self.budget.clone(),
            self.job,
            stage,
            outcome,
        )
        .await;
    }

    /// The job was cancelled or ran out of time: cancel at fal, then close.
    async fn abandon(&mut self) {
        let stage = std::mem::replace(&mut self.stage, Stage::Closed);
        abandon(
            self.client.clone(),
            self.store.clone(),
            self.budget.clone(),
            self.job,
            stage,
            self.stopping.is_cancelled(),
        )
        .await;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let stage = std::mem::replace(&mut self.stage, Stage::Closed);
        if matches!(stage, Stage::Nothing | Stage::Closed) {
            return;
        }
        let (client, store, budget, job) = (
            self.client.clone(),
            self.store.clone(),
            self.budget.clone(),
            self.job,
        );
        let stopping = self.stopping.is_cancelled();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(abandon(client, store, budget, job, stage, stopping));
            }
            // Outside a runtime nothing can be sent; the reservation stays counted, which errs
            // on the side of not overspending.
            Err(_) => warn!(job = %job, "pika job dropped outside a runtime; left as reserved"),
        }
    }
}

async fn abandon(
    client: Arc<FalClient>,
    store: Arc<dyn Store>,
    budget: Budget,
    job: JobId,
    stage: Stage,
    stopping: bool,
) {
    if stopping && let Stage::Submitted { request, .. } = &stage {
        // The job stays queued for the next start, which resumes this paid request.
        info!(job = %job, request = %request.request_id, "process stopping; the fal request is kept for the next start");
        return;
    }
    let outcome = match &stage {
        Stage::Submitted { request, started } => {
            let cancelled = client.cancel(&request.cancel_url).await;
            info!(job = %job, request = %request.request_id, outcome = ?cancelled, "cancelled at fal");
            match cancelled {
                // Removed from the queue before it ran: fal bills nothing.
                Ok(CancelOutcome::Accepted) if !started => SpendState::Refunded,
                _ => SpendState::Settled,
            }
        }
        _ => SpendState::Refunded,
    };
    settle(store, budget, job, stage, outcome).await;
}

async fn settle(
    store: Arc<dyn Store>,
    budget: Budget,
    job: JobId,
    stage: Stage,
    outcome: SpendState,
) {
    if matches!(stage, Stage::Nothing | Stage::Closed) {
        return;
    }
    let had_request = matches!(stage, Stage::Submitted { .. });
    let result = off_thread(move || {
        match outcome {
            SpendState::Refunded => budget.refund(job)?,
            _ => budget.settle(job)?,
        }
        if had_request {
            store.remove_remote_request(job)?;
        }
        Ok::<_, PikaError>(())
    })
    .await;
    match result {
        Ok(()) => info!(job = %job, ?outcome, "closed the spend reservation"),
        Err(e) => error!(job = %job, error = %e, "cannot close the spend reservation"),
    }
}
