//! The fallback router: a [`Backend`] that wraps others, as teloxide's adaptors wrap a
//! `Requester`. It honours a request's pinned backend, skips backends that are down or whose
//! circuit breaker is open, and moves a job on when a backend fails in a way another may not
//! repeat.
//!
//! Order is preference: with `local` before `pika`, local renders when it is healthy and has
//! capacity. When local is busy, a job waits up to `busy_wait` for it before the next backend
//! (the paid one) takes it, so a short queue never costs money.

mod breaker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use loopsmith_config::EngineSettings;
use loopsmith_protocol::BackendChoice;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::backend::{Backend, BackendError, Clip, Health, ProgressSink, RenderJob};

pub use breaker::{Admission, Breaker, BreakerPolicy};

/// How often a busy backend's health is looked at while a job waits for it.
const BUSY_POLL: Duration = Duration::from_millis(200);

/// How the router chooses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RouterPolicy {
    /// Whether a failure another backend may retry moves the job to the next backend.
    pub fallback: bool,
    /// Longest wait for a busy backend before a later one in the order takes the job.
    pub busy_wait: Duration,
    pub breaker: BreakerPolicy,
}

impl RouterPolicy {
    pub fn from_settings(engine: &EngineSettings) -> RouterPolicy {
        RouterPolicy {
            fallback: engine.fallback,
            busy_wait: Duration::from_secs(engine.busy_wait_secs),
            breaker: BreakerPolicy {
                consecutive: engine.breaker_failures.max(1),
                rate: engine.breaker_failure_rate.clamp(0.0, 1.0),
                window: engine.breaker_window.max(1),
                cooldown: Duration::from_secs(engine.breaker_cooldown_secs),
            },
        }
    }
}

#[derive(Debug)]
struct Route {
    backend: Arc<dyn Backend>,
    breaker: Mutex<Breaker>,
}

impl Route {
    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The backend's own health, or down while its breaker is open.
    fn health(&self) -> Health {
        if let Some(reason) = self.breaker().blocked(Instant::now()) {
            return Health::Down { reason };
        }
        self.backend.health()
    }

    fn name(&self) -> &str {
        self.backend.name()
    }
}

#[derive(Debug)]
pub struct Router {
    /// In order of preference.
    routes: Vec<Route>,
    policy: RouterPolicy,
}

impl Router {
    /// A router that moves on at once from a busy backend, with the default breaker.
    pub fn new(backends: Vec<Arc<dyn Backend>>, fallback: bool) -> Self {
        Router::with_policy(
            backends,
            RouterPolicy {
                fallback,
                busy_wait: Duration::ZERO,
                breaker: BreakerPolicy::DEFAULT,
            },
        )
    }

    pub fn with_policy(backends: Vec<Arc<dyn Backend>>, policy: RouterPolicy) -> Self {
        Router {
            routes: backends
                .into_iter()
                .map(|backend| Route {
                    backend,
                    breaker: Mutex::new(Breaker::new(policy.breaker)),
                })
                .collect(),
            policy,
        }
    }

    /// Names of the backends, in order.
    pub fn backend_names(&self) -> Vec<&str> {
        self.routes.iter().map(Route::name).collect()
    }

    /// Each backend's health as the router sees it (an open breaker reads as down).
    pub fn backend_health(&self) -> Vec<(String, Health)> {
        self.routes
            .iter()
            .map(|r| (r.name().to_string(), r.health()))
            .collect()
    }

    /// Each backend's circuit breaker state (`closed`, `open`, `half_open`), for metrics.
    pub fn breaker_states(&self) -> Vec<(String, String)> {
        self.routes
            .iter()
            .map(|r| (r.name().to_string(), r.breaker().state_name().to_string()))
            .collect()
    }

    /// The routes a job may take: the pinned backend or all, and of those only the ones that
    /// take a picture when the job animates one.
    fn candidates(&self, job: &RenderJob) -> Vec<&Route> {
        let choice = job.params.backend;
        let picture = job.params.image.is_some();
        self.routes
            .iter()
            .filter(|r| choice == BackendChoice::Auto || r.name() == choice.as_str())
            .filter(|r| !picture || r.backend.takes_image())
            .collect()
    }

    /// When the preferred usable backend is busy and a later one is ready, waits up to
    /// `busy_wait` for the preferred one to free up. Returns the health to route on.
    async fn wait_for_preferred<'a>(
        &self,
        candidates: &[&'a Route],
        cancel: &CancellationToken,
    ) -> Result<Vec<(&'a str, Health)>, BackendError> {
        let health = |c: &[&'a Route]| -> Vec<(&'a str, Health)> {
            c.iter().map(|r| (r.name(), r.health())).collect()
        };
        let mut now = health(candidates);
        let Some(first) = now
            .iter()
            .position(|(_, h)| !matches!(h, Health::Down { .. }))
        else {
            return Ok(now);
        };
        let later_ready = now[first + 1..].iter().any(|(_, h)| *h == Health::Ready);
        if !matches!(now[first].1, Health::Busy { .. })
            || !later_ready
            || self.policy.busy_wait.is_zero()
        {
            return Ok(now);
        }
        info!(backend = now[first].0, wait = ?self.policy.busy_wait, "preferred backend is busy; waiting for it");
        let until = Instant::now() + self.policy.busy_wait;
        while Instant::now() < until {
            let step = BUSY_POLL.min(until.saturating_duration_since(Instant::now()));
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(BackendError::Cancelled),
                _ = tokio::time::sleep(step) => {}
            }
            now = health(candidates);
            if now[first].1 == Health::Ready {
                return Ok(now);
            }
        }
        info!(backend = now[first].0, "still busy; handing the job on");
        // Still busy: the busy one goes after every ready one, so a later backend takes it.
        Ok(now)
    }
}

#[async_trait]
impl Backend for Router {
    fn name(&self) -> &str {
        "router"
    }

    fn takes_image(&self) -> bool {
        self.routes.iter().any(|r| r.backend.takes_image())
    }

    /// Ready when any backend is; otherwise busy when any is; otherwise down with every reason.
    fn health(&self) -> Health {
        let all: Vec<_> = self.routes.iter().map(|r| (r.name(), r.health())).collect();
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
        let candidates = self.candidates(job);
        if candidates.is_empty() {
            let reason = if job.params.image.is_some() {
                format!("no {choice} backend on this server animates pictures")
            } else {
                format!("the {choice} backend is not set up on this server")
            };
            return Err(BackendError::Unavailable {
                backend: choice.to_string(),
                reason,
            });
        }
        let health = self.wait_for_preferred(&candidates, &cancel).await?;
        // Ready backends first, in order; busy ones after, since their queue still moves.
        let mut order: Vec<usize> = (0..candidates.len())
            .filter(|&i| health[i].1 == Health::Ready)
            .collect();
        order.extend((0..candidates.len()).filter(|&i| matches!(health[i].1, Health::Busy { .. })));
        // A backend that already holds paid work for this job (submitted before a restart)
        // goes first, whatever the order says: the work is collected, not bought again.
        if let Some(pos) = order
            .iter()
            .position(|&i| candidates[i].backend.resumes(job))
        {
            let holder = order.remove(pos);
            info!(job = %job.id, backend = candidates[holder].name(), "resuming work the backend already holds");
            order.insert(0, holder);
        }
        if order.is_empty() {
            return Err(BackendError::Unavailable {
                backend: choice.to_string(),
                reason: unavailable_reason(&health),
            });
        }
        let mut last_error = None;
        let mut skipped = Vec::new();
        for i in order {
            let route = candidates[i];
            let Some(admission) = route.breaker().admit(Instant::now()) else {
                // Opened by another job since the health check.
                skipped.push((route.name(), route.health()));
                continue;
            };
            info!(job = %job.id, backend = route.name(), probe = admission == Admission::Probe, "rendering");
            let result = route
                .backend
                .render(job, progress.clone(), cancel.clone())
                .await;
            {
                let mut breaker = route.breaker();
                match &result {
                    Ok(_) => breaker.record(false, admission, Instant::now()),
                    Err(BackendError::Failed { .. }) => {
                        breaker.record(true, admission, Instant::now())
                    }
                    // Nothing learned about the backend's health.
                    Err(_) => breaker.release_probe(Instant::now()),
                }
            }
            match result {
                Ok(clip) => return Ok(clip),
                Err(err)
                    if err.retry_elsewhere()
                        && self.policy.fallback
                        && choice == BackendChoice::Auto =>
                {
                    warn!(job = %job.id, backend = route.name(), error = %err, "trying the next backend");
                    last_error = Some(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(last_error.unwrap_or_else(|| BackendError::Unavailable {
            backend: choice.to_string(),
            reason: unavailable_reason(&skipped),
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
