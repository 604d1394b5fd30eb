//! The boundary every renderer implements, and what crosses it.

use std::fmt::{self, Debug};
use std::sync::Arc;

use async_trait::async_trait;
use loopsmith_protocol::{JobId, Params, UserKey};
use tokio_util::sync::CancellationToken;

/// What a backend is asked to render.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderJob {
    pub id: JobId,
    pub user: UserKey,
    pub params: Params,
}

/// Rendered frames: RGB, 8 bits per channel, row-major, `width * height * 3` bytes each.
#[derive(Clone, PartialEq)]
pub struct Clip {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: Vec<Vec<u8>>,
    /// The seed that produced it, so the sticker can be made again.
    pub seed: u32,
    /// Name of the backend that rendered it.
    pub backend: String,
}

impl Clip {
    /// Checks that every frame has the size its dimensions promise.
    pub fn validate(&self) -> Result<(), String> {
        if self.width == 0 || self.height == 0 || self.fps == 0 || self.frames.is_empty() {
            return Err(format!(
                "empty clip: {}x{} at {} fps with {} frames",
                self.width,
                self.height,
                self.fps,
                self.frames.len()
            ));
        }
        let expected = self.width as usize * self.height as usize * 3;
        match self.frames.iter().position(|f| f.len() != expected) {
            Some(i) => Err(format!(
                "frame {i} has {} bytes; a {}x{} RGB frame has {expected}",
                self.frames[i].len(),
                self.width,
                self.height
            )),
            None => Ok(()),
        }
    }

    pub fn duration_secs(&self) -> f32 {
        self.frames.len() as f32 / self.fps as f32
    }
}

impl Debug for Clip {
    // Frames are megabytes; a log line needs their shape, not their bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clip")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &self.fps)
            .field("frames", &self.frames.len())
            .field("seed", &self.seed)
            .field("backend", &self.backend)
            .finish()
    }
}

/// A progress report from a backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The backend doing the work.
    pub backend: String,
    /// 0.0 to 1.0.
    pub fraction: f32,
    /// A short human note ("denoising step 3/8", "queued at fal, position 2").
    pub note: Option<String>,
}

/// Where a backend sends progress; cheap to clone.
#[derive(Clone)]
pub struct ProgressSink(Arc<dyn Fn(Progress) + Send + Sync>);

impl ProgressSink {
    pub fn new(report: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        ProgressSink(Arc::new(report))
    }

    /// A sink that drops every report.
    pub fn discard() -> Self {
        ProgressSink::new(|_| {})
    }

    pub fn report(&self, backend: &str, fraction: f32, note: Option<String>) {
        (self.0)(Progress {
            backend: backend.to_string(),
            fraction: fraction.clamp(0.0, 1.0),
            note,
        });
    }
}

impl Debug for ProgressSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressSink")
    }
}

/// Whether a backend can take work now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Ready and has capacity.
    Ready,
    /// Working, but at capacity: a job sent now waits inside the backend.
    Busy { detail: String },
    /// Cannot render at all (model missing, key missing, breaker open).
    Down { reason: String },
}

/// Why a render did not produce a clip.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("the job was cancelled")]
    Cancelled,
    /// Nothing was attempted; another backend may take the job.
    #[error("{backend} is unavailable: {reason}")]
    Unavailable { backend: String, reason: String },
    /// The backend tried and failed.
    #[error("{backend} failed")]
    Failed {
        backend: String,
        /// Whether another backend may try the same job.
        retry_elsewhere: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request itself was refused (content policy, unusable input); no backend should
    /// retry it. `reason` is written for the requester.
    #[error("{backend} refused the request: {reason}")]
    Refused { backend: String, reason: String },
}

impl BackendError {
    pub fn retry_elsewhere(&self) -> bool {
        match self {
            BackendError::Unavailable { .. } => true,
            BackendError::Failed {
                retry_elsewhere, ..
            } => *retry_elsewhere,
            BackendError::Cancelled | BackendError::Refused { .. } => false,
        }
    }

    /// One sentence for the person who asked.
    pub fn user_message(&self) -> String {
        match self {
            BackendError::Cancelled => "The job was cancelled.".to_string(),
            BackendError::Unavailable { reason, .. } => {
                format!("No renderer can take this right now ({reason}); please try again later.")
            }
            BackendError::Failed { source, .. } => match source.downcast_ref::<Explained>() {
                Some(explained) => explained.message.clone(),
                None => "Rendering failed on our side; please try again.".to_string(),
            },
            BackendError::Refused { reason, .. } => reason.clone(),
        }
    }

    /// Whether the same request may succeed if submitted again later.
    pub fn retryable(&self) -> bool {
        !matches!(self, BackendError::Refused { .. } | BackendError::Cancelled)
    }
}

/// A failure that carries its own sentence for the requester, as the source of a
/// [`BackendError::Failed`] ("fal's queue was too busy to start the job …" rather than a generic
/// apology). `Display` is that sentence; the cause is chained for the log.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Explained {
    pub message: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A renderer: the local ONNX pipeline, Pika on fal, or a [`crate::Router`] over several.
#[async_trait]
pub trait Backend: Send + Sync + Debug {
    /// Short, stable name: `local`, `pika`, `router`.
    fn name(&self) -> &str;

    fn health(&self) -> Health;

    /// Whether it can animate a user's picture (`Params::image`); the router sends picture
    /// jobs only to backends that can.
    fn takes_image(&self) -> bool {
        false
    }

    /// Whether this backend already holds paid or started work for the job (a remote request
    /// submitted before a restart). The router sends such a job back to it first, so the work
    /// is collected rather than paid for twice.
    fn resumes(&self, _job: &RenderJob) -> bool {
        false
    }

    /// Renders one clip. Implementations report progress through `progress` and check
    /// `cancel` between steps or polls, returning [`BackendError::Cancelled`] when it fires.
    async fn render(
        &self,
        job: &RenderJob,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> Result<Clip, BackendError>;
}
