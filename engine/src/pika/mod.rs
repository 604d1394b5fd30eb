//! Pika v2.2 on fal's queue API: the paid remote backend.
//!
//! A render reserves its estimated cost in the spend ledger, uploads any image inputs,
//! submits to the model endpoint, records fal's request (flushed) before polling it, reports
//! queue position and logs as progress, fetches the result, downloads the video within the
//! [`download`] rules, decodes it and cuts it to the requested length. A job that finds a
//! recorded request (the process restarted after submitting) resumes polling it instead of
//! paying again. Cancellation and the job's deadline cancel the request at fal.
//!
//! See `shared/reference/fal-pika.md` for the protocol this follows.

pub mod budget;
pub mod client;
pub mod clock;
pub mod download;
pub mod error;
pub mod inputs;
mod job;
pub mod retry;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use loopsmith_config::PikaSettings;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, BackendError, Clip, Health, ProgressSink, RenderJob};
use crate::store::{SpendCaps, Store};

pub use budget::{Budget, PriceTable};
pub use client::FalClient;
pub use clock::{Clock, ManualClock, TokioClock};
pub use download::{DownloadError, DownloadPolicy};
pub use error::PikaError;
pub use inputs::{Common, ImageSource, IngredientsMode, PikaInput, Resolution, Transition};
pub use retry::RetryPolicy;

/// Everything the backend needs to know, taken from `[pika]` (see [`PikaOptions::from_settings`]);
/// tests shorten the timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct PikaOptions {
    pub base_url: String,
    pub storage_url: String,
    pub resolution: Resolution,
    pub prices: PriceTable,
    pub caps: SpendCaps,
    pub poll_interval: Duration,
    /// Follow fal's status stream, polling only when it gives out.
    pub status_stream: bool,
    /// How long the status stream may stay silent (fal sends a keep-alive every 15 s).
    pub stream_silence: Duration,
    /// Sent as `X-Fal-Request-Timeout`; 0 sends none.
    pub start_timeout_secs: u64,
    pub deadline: Duration,
    pub retry: RetryPolicy,
    pub download: DownloadPolicy,
}

impl PikaOptions {
    pub fn from_settings(settings: &PikaSettings) -> Result<PikaOptions, PikaError> {
        let resolution = Resolution::parse(&settings.resolution).ok_or_else(|| {
            PikaError::Setup(format!(
                "pika.resolution `{}` is not 720p or 1080p",
                settings.resolution
            ))
        })?;
        let deadline = Duration::from_secs(settings.deadline_secs.max(1));
        Ok(PikaOptions {
            base_url: settings.base_url.clone(),
            storage_url: settings.storage_url.clone(),
            resolution,
            prices: PriceTable::from_usd(settings.price_720p_usd, settings.price_1080p_usd),
            caps: SpendCaps {
                user_micro_usd: budget::micros(settings.user_daily_budget_usd),
                global_micro_usd: budget::micros(settings.daily_budget_usd),
            },
            poll_interval: Duration::from_millis(settings.poll_interval_ms.max(1)),
            status_stream: settings.status_stream,
            stream_silence: Duration::from_secs(20),
            start_timeout_secs: settings.start_timeout_secs,
            deadline,
            retry: RetryPolicy {
                max_attempts: settings.max_attempts.max(1),
                ..RetryPolicy::DEFAULT
            },
            download: DownloadPolicy {
                hosts: settings.media_hosts.clone(),
                max_bytes: settings.max_result_mib.saturating_mul(1024 * 1024),
                stall_timeout: Duration::from_secs(30),
                total_timeout: Duration::from_secs(180).min(deadline),
            },
        })
    }
}

/// The Pika backend. Without a key it reports itself down and renders nothing.
#[derive(Debug)]
pub struct PikaBackend {
    options: PikaOptions,
    /// `None` when FAL_KEY is missing.
    client: Option<Arc<FalClient>>,
    /// Plain client for media downloads: no key, no automatic redirects.
    media: reqwest::Client,
    store: Arc<dyn Store>,
    budget: Budget,
    /// Cancelled when the process is stopping: a render interrupted then keeps its fal
    /// request (and its reservation) for the next start to resume, instead of cancelling it.
    stopping: CancellationToken,
}

impl PikaBackend {
    pub fn new(
        options: PikaOptions,
        key: Option<SecretString>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<PikaBackend, PikaError> {
        let client = match key {
            Some(key) => Some(Arc::new(FalClient::new(
                key,
                &options.base_url,
                &options.storage_url,
                options.start_timeout_secs,
                options.retry,
                clock,
            )?)),
            None => None,
        };
        let media = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("loopsmith/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PikaError::Setup(format!("cannot build the HTTP client: {e}")))?;
        let budget = Budget::new(store.clone(), options.prices, options.caps);
        Ok(PikaBackend {
            options,
            client,
            media,
            store,
            budget,
            stopping: CancellationToken::new(),
        })
    }

    /// Ties the backend to the process's stop signal. Cancel `stopping` before the engine
    /// interrupts running jobs at shutdown, and interrupted Pika jobs resume their paid
    /// requests at the next start; without it, an interrupted job cancels its request at fal
    /// (what a user's cancel should do).
    pub fn with_stopping(mut self, stopping: CancellationToken) -> Self {
        self.stopping = stopping;
        self
    }

    /// The job's picture, read from the store, for image-to-video; `None` for text-to-video.
    fn picture(&self, job: &RenderJob) -> Result<Option<ImageSource>, PikaError> {
        let Some(image) = &job.params.image else {
            return Ok(None);
        };
        let bytes = self
            .store
            .input_image(&image.sha256)
            .map_err(|e| PikaError::Input(format!("the picture to animate cannot be read: {e}")))?
            .ok_or_else(|| {
                PikaError::Input("The picture to animate is gone; please send it again.".into())
            })?;
        let ext = image.mime.rsplit('/').next().unwrap_or("bin");
        Ok(Some(ImageSource::Bytes {
            bytes: bytes.into(),
            content_type: image.mime.clone(),
            file_name: format!("{}.{ext}", &image.sha256[..16.min(image.sha256.len())]),
        }))
    }

    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Renders any Pika input (image-to-video, Pikascenes, Pikaframes as well as text) for a
    /// job; [`Backend::render`] is this with text-to-video built from the job's parameters.
    pub async fn render_input(
        &self,
        job: &RenderJob,
        input: PikaInput,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> Result<Clip, PikaError> {
        let client = self.client.clone().ok_or(PikaError::NoKey)?;
        input.validate()?;
        job::Run {
            client,
            media: &self.media,
            store: self.store.clone(),
            budget: &self.budget,
            options: &self.options,
            job,
            progress,
            cancel,
            stopping: self.stopping.clone(),
        }
        .run(input)
        .await
    }
}

fn today() -> u64 {
    crate::now_ms() / 86_400_000
}

#[async_trait]
impl Backend for PikaBackend {
    fn name(&self) -> &str {
        "pika"
    }

    fn health(&self) -> Health {
        if self.client.is_none() {
            return Health::Down {
                reason: "FAL_KEY is not set".into(),
            };
        }
        match self.budget.exhausted(today()) {
            Some(reason) => Health::Down { reason },
            None => Health::Ready,
        }
    }

    fn takes_image(&self) -> bool {
        true
    }

    fn resumes(&self, job: &RenderJob) -> bool {
        self.client.is_some()
            && self
                .store
                .remote_request(job.id)
                .ok()
                .flatten()
                .is_some_and(|r| r.backend == "pika")
    }

    async fn render(
        &self,
        job: &RenderJob,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> Result<Clip, BackendError> {
        let result = match self
            .picture(job)
            .and_then(|image| PikaInput::from_params(&job.params, self.options.resolution, image))
        {
            Ok(input) => self.render_input(job, input, progress, cancel).await,
            Err(e) => Err(e),
        };
        result.map_err(|e| {
            tracing::error!(job = %job.id, error = %e, chain = %chain(&e), "pika render failed");
            e.into_backend_error()
        })
    }
}

use crate::error_chain as chain;
