//! A backend the operator can pause from the console, and what the Backends screen shows of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use async_trait::async_trait;
use loopsmith_protocol::control::{BackendRow, BackendState};
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, BackendError, Clip, Health, ProgressSink, RenderJob};

const PAUSED: &str = "paused by the operator";

/// How a backend describes itself on the Backends screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendInfo {
    /// Model bundle or remote model name.
    pub model: String,
    /// `cpu`, `cuda`, `fal`, ...
    pub provider: String,
    pub device: String,
    /// Jobs it renders at once.
    pub capacity: u32,
}

/// Wraps a backend so the console can pause it. A paused backend reports itself down (so the
/// router skips it) and refuses renders as unavailable (so a job already routed to it moves on
/// where fallback allows); renders in flight when it was paused finish normally.
///
/// Wrapping instead of adding a pause flag to every backend keeps pausing in one place and
/// works for any `Backend`, the router's own included.
#[derive(Debug)]
pub struct ControlledBackend {
    inner: Arc<dyn Backend>,
    info: BackendInfo,
    paused: AtomicBool,
    running: Arc<AtomicU32>,
}

/// Counts a render as running for as long as it lives, even if its future is dropped.
struct InFlight(Arc<AtomicU32>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ControlledBackend {
    pub fn new(inner: Arc<dyn Backend>, info: BackendInfo) -> Arc<Self> {
        Arc::new(ControlledBackend {
            inner,
            info,
            paused: AtomicBool::new(false),
            running: Arc::new(AtomicU32::new(0)),
        })
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// Renders in flight through this wrapper.
    pub fn running(&self) -> u32 {
        self.running.load(Ordering::SeqCst)
    }

    /// The row the Backends screen shows.
    pub fn row(&self) -> BackendRow {
        let state = if self.is_paused() {
            BackendState::Paused
        } else {
            match self.inner.health() {
                Health::Ready => BackendState::Ready,
                Health::Busy { detail } => BackendState::Busy { detail },
                Health::Down { reason } => BackendState::Down { reason },
            }
        };
        BackendRow {
            name: self.inner.name().to_string(),
            state,
            model: self.info.model.clone(),
            provider: self.info.provider.clone(),
            device: self.info.device.clone(),
            running: self.running(),
            capacity: self.info.capacity,
            pausable: true,
        }
    }
}

#[async_trait]
impl Backend for ControlledBackend {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn health(&self) -> Health {
        if self.is_paused() {
            Health::Down {
                reason: PAUSED.to_string(),
            }
        } else {
            self.inner.health()
        }
    }

    fn takes_image(&self) -> bool {
        self.inner.takes_image()
    }

    // Forwarded so that paid work held from before a restart is still collected, not bought
    // again, when the backend sits behind the console's pause switch.
    fn resumes(&self, job: &RenderJob) -> bool {
        self.inner.resumes(job)
    }

    async fn render(
        &self,
        job: &RenderJob,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> Result<Clip, BackendError> {
        if self.is_paused() {
            return Err(BackendError::Unavailable {
                backend: self.inner.name().to_string(),
                reason: PAUSED.to_string(),
            });
        }
        self.running.fetch_add(1, Ordering::SeqCst);
        let _in_flight = InFlight(self.running.clone());
        self.inner.render(job, progress, cancel).await
    }
}
