//! Test doubles for the engine's boundaries. They live only here, in tests.
#![allow(dead_code)] // each test file uses a different subset

pub mod content;
pub mod ffprobe;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use loopsmith_config::Settings;
use loopsmith_engine::media::{Encoder, MediaError};
use loopsmith_engine::protocol::{Artifact, JobEvent, JobId, JobState, Params, Platform, UserKey};
use loopsmith_engine::{
    Backend, BackendError, Clip, Engine, Health, ProgressSink, RenderJob, Store, Submitted,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How a [`FakeBackend`] answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    Succeed,
    /// Fails after trying; `retry_elsewhere` says whether the router may move on.
    Fail {
        retry_elsewhere: bool,
    },
    Refuse(String),
}

/// A backend that renders tiny clips, records what it was asked, and can be held at a gate
/// so a test decides when each render may finish.
#[derive(Debug)]
pub struct FakeBackend {
    name: String,
    pub health: Mutex<Health>,
    pub behaviour: Mutex<Behaviour>,
    /// When set, every render waits for one permit (or its cancellation).
    gate: Option<Arc<Semaphore>>,
    /// (job, user) in the order renders started.
    pub started: Mutex<Vec<(JobId, UserKey)>>,
    /// Signalled each time a render starts, so a test can wait for it instead of sleeping.
    pub started_signal: Arc<tokio::sync::Notify>,
    /// Whether it claims to animate pictures.
    pub takes_image: std::sync::atomic::AtomicBool,
}

impl FakeBackend {
    pub fn new(name: &str) -> Arc<FakeBackend> {
        Arc::new(FakeBackend::build(name, None))
    }

    pub fn gated(name: &str) -> (Arc<FakeBackend>, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        (Arc::new(FakeBackend::build(name, Some(gate.clone()))), gate)
    }

    fn build(name: &str, gate: Option<Arc<Semaphore>>) -> FakeBackend {
        FakeBackend {
            name: name.to_string(),
            health: Mutex::new(Health::Ready),
            behaviour: Mutex::new(Behaviour::Succeed),
            gate,
            started: Mutex::new(Vec::new()),
            started_signal: Arc::new(tokio::sync::Notify::new()),
            takes_image: Default::default(),
        }
    }

    pub fn set_health(&self, health: Health) {
        *self.health.lock().expect("lock") = health;
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *self.behaviour.lock().expect("lock") = behaviour;
    }

    /// Waits (bounded) until at least `n` renders have started.
    pub async fn wait_started(&self, n: usize) {
        let wait = async {
            loop {
                let notified = self.started_signal.notified();
                if self.started.lock().expect("lock").len() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("renders started within 30 s");
    }

    pub fn started_jobs(&self) -> Vec<(JobId, UserKey)> {
        self.started.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Backend for FakeBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn health(&self) -> Health {
        self.health.lock().expect("lock").clone()
    }

    fn takes_image(&self) -> bool {
        self.takes_image.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn render(
        &self,
        job: &RenderJob,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> Result<Clip, BackendError> {
        self.started
            .lock()
            .expect("lock")
            .push((job.id, job.user.clone()));
        self.started_signal.notify_waiters();
        progress.report(&self.name, 0.25, Some("step 1/4".into()));
        if let Some(gate) = &self.gate {
            tokio::select! {
                permit = gate.acquire() => permit.map_err(|_| BackendError::Cancelled)?.forget(),
                _ = cancel.cancelled() => return Err(BackendError::Cancelled),
            }
        }
        progress.report(&self.name, 1.0, None);
        let behaviour = self.behaviour.lock().expect("lock").clone();
        match behaviour {
            Behaviour::Succeed => Ok(Clip {
                width: 4,
                height: 4,
                fps: job.params.fps,
                frames: vec![vec![128; 4 * 4 * 3]; 3],
                seed: job.params.seed,
                backend: self.name.clone(),
            }),
            Behaviour::Fail { retry_elsewhere } => Err(BackendError::Failed {
                backend: self.name.clone(),
                retry_elsewhere,
                source: "the fake backend was told to fail".into(),
            }),
            Behaviour::Refuse(reason) => Err(BackendError::Refused {
                backend: self.name.clone(),
                reason,
            }),
        }
    }
}

/// Writes one small file per requested output.
#[derive(Debug, Default)]
pub struct FileEncoder;

impl Encoder for FileEncoder {
    fn encode(
        &self,
        clip: &Clip,
        params: &Params,
        dir: &Path,
    ) -> Result<Vec<Artifact>, MediaError> {
        params
            .outputs
            .iter()
            .map(|&kind| {
                let path = dir.join(format!("sticker.{}", kind.extension()));
                let bytes = vec![clip.frames.len() as u8; 16];
                std::fs::write(&path, &bytes).map_err(|source| MediaError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                Ok(Artifact {
                    kind,
                    path,
                    bytes: bytes.len() as u64,
                })
            })
            .collect()
    }
}

/// Settings for tests: artifacts in `dir`, limits loose unless a test tightens them.
pub fn settings(dir: &Path) -> Settings {
    let mut s = Settings::default();
    s.storage.data_dir = dir.to_path_buf();
    s.limits.max_queued_per_user = 100;
    s.limits.requests_per_minute = 10_000;
    s.limits.burst = 10_000;
    s.limits.daily_quota = 0;
    s
}

pub fn user(platform: Platform, id: &str) -> UserKey {
    UserKey::new(platform, id)
}

pub fn start(settings: &Settings, store: Arc<dyn Store>, backend: Arc<dyn Backend>) -> Engine {
    Engine::start(settings, store, backend, Arc::new(FileEncoder)).expect("engine starts")
}

/// Waits (bounded, so a bug fails instead of hanging) for the job's final event and returns
/// every event seen.
pub async fn until_finished(submitted: &mut Submitted) -> Vec<JobEvent> {
    let mut seen = Vec::new();
    let collect = async {
        while let Some(event) = submitted.events.next().await {
            seen.push(event);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .expect("the job finished within 30 s");
    seen
}

pub fn final_state(events: &[JobEvent]) -> JobState {
    events.last().expect("at least one event").state.clone()
}
