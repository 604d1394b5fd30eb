//! The fallback router: a [`Backend`] that wraps others, as teloxide's adaptors wrap a
//! `Requester`. It honours a request's pinned backend, skips backends that are down, and
//! moves a job on when a backend fails in a way another may not repeat.

use std::sync::Arc;

use async_trait::async_trait;
use loopsmith_protocol::BackendChoice;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backend::{Backend, BackendError, Clip, Health, ProgressSink, RenderJob};

#[derive(Debug)]
pub struct Router {
    /// In order of preference.
    backends: Vec<Arc<dyn Backend>>,
    /// Whether a retryable failure moves the job to the next backend.
    fallback: bool,
}

impl Router {
    pub fn new(backends: Vec<Arc<dyn Backend>>, fallback: bool) -> Self {
        Router { backends, fallback }
    }

    /// Names of the backends, in order.
    pub fn backend_names(&self) -> Vec<&str> {
        self.backends.iter().map(|b| b.name()).collect()
    }

    fn candidates(&self, choice: BackendChoice) -> Vec<&Arc<dyn Backend>> {
        match choice {
            BackendChoice::Auto => self.backends.iter().collect(),
            pinned => self
                .backends
                .iter()
                .filter(|b| b.name() == pinned.as_str())
                .collect(),
        }
    }
}

#[async_trait]
impl Backend for Router {
    fn name(&self) -> &str {
        "router"
    }

    /// Ready when any backend is; otherwise busy when any is; otherwise down with every reason.
    fn health(&self) -> Health {
        let all: Vec<_> = self
            .backends
            .iter()
            .map(|b| (b.name(), b.health()))
            .collect();
        if all.iter().any(|(_, h)| *h == Health::Ready) {
            return Health::Ready;
        }
        if let Some((name, Health::Busy { detail })) =
            all.iter().find(|(_, h)| matches!(h, Health::Busy { .. }))
        {
            return Health::Busy {
                detail: format!("{name}: {detail}"),
            };
        }
        Health::Down {
            reason: unavailable_reason(&all),
        }
    }

    async fn render(
        &self,
        job: &RenderJob,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> Result<Clip, BackendError> {
        let choice = job.params.backend;
        let candidates = self.candidates(choice);
        if candidates.is_empty() {
            return Err(BackendError::Unavailable {
                backend: choice.to_string(),
                reason: format!("the {choice} backend is not set up on this server"),
            });
        }
        let health: Vec<_> = candidates.iter().map(|b| (b.name(), b.health())).collect();
        // Ready backends first, in order; busy ones after, since their queue still moves.
        let mut order: Vec<usize> = (0..candidates.len())
            .filter(|&i| health[i].1 == Health::Ready)
            .collect();
        order.extend((0..candidates.len()).filter(|&i| matches!(health[i].1, Health::Busy { .. })));
        if order.is_empty() {
            return Err(BackendError::Unavailable {
                backend: choice.to_string(),
                reason: unavailable_reason(&health),
            });
        }
        let mut last_error = None;
        for i in order {
            let backend = candidates[i];
            info!(job = %job.id, backend = backend.name(), "rendering");
            match backend.render(job, progress.clone(), cancel.clone()).await {
                Ok(clip) => return Ok(clip),
                Err(err)
                    if err.retry_elsewhere() && self.fallback && choice == BackendChoice::Auto =>
                {
                    warn!(job = %job.id, backend = backend.name(), error = %err, "trying the next backend");
                    last_error = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| BackendError::Unavailable {
            backend: choice.to_string(),
            reason: unavailable_reason(&health),
        }))
    }
}

fn unavailable_reason(health: &[(&str, Health)]) -> String {
    let reasons: Vec<String> = health
        .iter()
        .filter_map(|(name, h)| match h {
            Health::Down { reason } => Some(format!("{name}: {reason}")),
            _ => None,
        })
        .collect();
    if reasons.is_empty() {
        "no backend is configured".to_string()
    } else {
        reasons.join("; ")
    }
}
