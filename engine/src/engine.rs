//! The engine: takes requests, keeps jobs durable, runs them fairly on a backend, turns clips
//! into artifacts and tells every subscriber what happened.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use loopsmith_config::{LimitsSettings, Settings};
use loopsmith_protocol::{Job, JobEvent, JobId, JobState, Params, Platform, Timings, UserKey};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::Error;
use crate::backend::{Backend, Health};
use crate::blocklist::Blocklist;
use crate::events::{JobEvents, Submitted, event_of};
use crate::media::Encoder;
use crate::queue::FairQueue;
use crate::request::GenerationRequest;
use crate::store::{Insert, QuotaDebit, Store, StoreError};
use crate::style::StyleCatalog;

const DAY_MS: u64 = 86_400_000;
/// Queued jobs whose position changes are announced; further back, a number adds little.
const POSITION_WINDOW: usize = 50;
const EVENT_BUFFER: usize = 1024;

mod records;
mod retention;
mod worker;

/// The engine's handle; cheap to clone, shared by every surface.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("boot_epoch", &self.inner.boot_epoch)
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

struct Inner {
    store: Arc<dyn Store>,
    backend: Arc<dyn Backend>,
    encoder: Arc<dyn Encoder>,
    styles: StyleCatalog,
    limits: LimitsSettings,
    blocklist: Blocklist,
    admins: HashSet<UserKey>,
    artifacts_dir: PathBuf,
    /// Today's cap on paid renders (`pika.daily_budget_usd`) when Pika is enabled.
    paid_cap_usd: Option<f64>,
    workers: u32,
    boot_epoch: u64,
    events: broadcast::Sender<JobEvent>,
    /// Lock order: `queue` before `running`.
    queue: Mutex<FairQueue>,
    running: Mutex<HashMap<JobId, RunningJob>>,
    wake: Notify,
    /// Serialises the check-then-insert of intake so per-user limits hold under concurrency.
    intake: tokio::sync::Mutex<()>,
    limiter: DefaultKeyedRateLimiter<UserKey>,
    accepting: AtomicBool,
    /// Workers stop taking new jobs.
    stop: CancellationToken,
    /// Running renders are interrupted (the shutdown grace period is over).
    abort: CancellationToken,
    /// Cancelled once `shutdown` has finished: nothing will happen to any job in this process
    /// any more, so streams of unfinished jobs end instead of waiting for ever.
    closed: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Moving average of a job's wall time, for ETAs.
    mean_job_ms: Mutex<Option<f64>>,
}

struct RunningJob {
    user: UserKey,
    cancel: CancellationToken,
    cancelled_by: Option<UserKey>,
    started: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections here never leave their data half-changed, so a panic elsewhere while
    // holding the lock must not take the whole engine down with it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Engine {
    /// Opens the engine over a store: counts this start, re-queues jobs an earlier process left
    /// running, and starts `engine.workers` workers. Must be called inside a tokio runtime.
    pub fn start(
        settings: &Settings,
        store: Arc<dyn Store>,
        backend: Arc<dyn Backend>,
        encoder: Arc<dyn Encoder>,
    ) -> Result<Engine, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let styles = StyleCatalog::new(&settings.styles)?;
        let limits = settings.limits.clone();
        let quota = Quota::per_minute(
            NonZeroU32::new(limits.requests_per_minute).unwrap_or(NonZeroU32::MIN),
        )
        .allow_burst(NonZeroU32::new(limits.burst).unwrap_or(NonZeroU32::MIN));
        let admins = settings
            .admins
            .telegram
            .iter()
            .map(|id| UserKey::new(Platform::Telegram, id.to_string()))
            .chain(
                settings
                    .admins
                    .discord
                    .iter()
                    .map(|id| UserKey::new(Platform::Discord, id.to_string())),
            )
            .collect();

        let boot_epoch = store.begin_boot()?;
        let mut queue = FairQueue::default();
        let mut requeued = 0;
        for mut job in store.jobs()? {
            match job.state {
                JobState::Queued => queue.push(job.user.clone(), job.id),
                JobState::Running { .. } | JobState::Encoding { .. } => {
                    job.state = JobState::Queued;
                    store.update_job(&job, false)?;
                    queue.push(job.user.clone(), job.id);
                    requeued += 1;
                }
                _ => {}
            }
        }
        store.flush()?;
        info!(
            boot_epoch,
            waiting = queue.len(),
            requeued,
            "engine started"
        );

        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                backend,
                encoder,
                styles,
                blocklist: Blocklist::new(&limits.blocked_words),
                limits,
                admins,
                artifacts_dir: settings.storage.data_dir.join("artifacts"),
                paid_cap_usd: settings
                    .pika
                    .enabled
                    .then_some(settings.pika.daily_budget_usd),
                workers: settings.engine.workers,
                boot_epoch,
                events: broadcast::channel(EVENT_BUFFER).0,
                queue: Mutex::new(queue),
                running: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                intake: tokio::sync::Mutex::new(()),
                limiter: RateLimiter::keyed(quota),
                accepting: AtomicBool::new(true),
                stop: CancellationToken::new(),
                abort: CancellationToken::new(),
                closed: CancellationToken::new(),
                tasks: Mutex::new(Vec::new()),
                mean_job_ms: Mutex::new(None),
            }),
        };
        let mut tasks: Vec<JoinHandle<()>> = (0..settings.engine.workers)
            .map(|n| runtime.spawn(engine.clone().work().instrument(info_span!("worker", n))))
            .collect();
        tasks.push(runtime.spawn(engine.clone().retain(settings.storage.keep_artifacts_days)));
        *lock(&engine.inner.tasks) = tasks;
        Ok(engine)
    }

    /// Validates, checks limits, writes the job durably and queues it. When this returns `Ok`
    /// the job survives a crash. A request replaying a platform event returns the job that
    /// event already made.
    pub async fn submit(&self, request: GenerationRequest) -> Result<Submitted, Error> {
        let inner = &self.inner;
        if !inner.accepting.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        let user = request.user.clone();
        if let Some(origin) = request.origin.clone() {
            let u = user.clone();
            if let Some(id) = self
                .on_store(move |s| s.job_for_origin(&u, &origin))
                .await?
            {
                return self.existing(id).await;
            }
        }
        let profile = self.user(&user).await?;
        if profile.banned {
            return Err(Error::Banned);
        }
        let mut params = inner.styles.resolve(
            &request.prompt,
            &request.overrides,
            &profile.style,
            rand::random(),
        )?;
        // The rendered prompt: the user's words with their character and suffix applied.
        if inner.blocklist.blocks(&params.prompt) {
            info!(user = %user, "prompt refused by the blocklist");
            return Err(Error::Blocked);
        }
        if let Some(image) = request.image {
            // Refused here, not after queueing, when nothing could ever render it.
            if !inner.backend.takes_image() {
                return Err(Error::NoImageBackend);
            }
            let sha = image.info.sha256.clone();
            self.on_store(move |s| s.put_input_image(&sha, &image.bytes))
                .await?;
            params.image = Some(image.info);
        }
        self.enqueue(user, request.origin, params).await
    }

    /// Whether any backend can animate a picture, so a surface can say no before fetching one.
    pub fn takes_image(&self) -> bool {
        self.inner.backend.takes_image()
    }

    /// Queues a job with parameters that were already resolved, e.g. a re-roll of an earlier
    /// job with a new seed: the user's current style is not applied again. The same checks
    /// as [`Engine::submit`] apply (ban, rate limit, per-user queue, quota, replay).
    pub async fn resubmit(
        &self,
        user: UserKey,
        origin: Option<String>,
        params: Params,
    ) -> Result<Submitted, Error> {
        if !self.inner.accepting.load(Ordering::SeqCst) {
            return Err(Error::ShuttingDown);
        }
        if let Some(origin) = origin.clone() {
            let u = user.clone();
            if let Some(id) = self
                .on_store(move |s| s.job_for_origin(&u, &origin))
                .await?
            {
                return self.existing(id).await;
            }
        }
        if self.user(&user).await?.banned {
            return Err(Error::Banned);
        }
        crate::request::check_params(&params)?;
        if self.inner.blocklist.blocks(&params.prompt) {
            return Err(Error::Blocked);
        }
        self.enqueue(user, origin, params).await
    }

    async fn enqueue(
        &self,
        user: UserKey,
        origin: Option<String>,
        params: Params,
    ) -> Result<Submitted, Error> {
        let inner = &self.inner;
        if let Err(not_until) = inner.limiter.check_key(&user) {
            let retry_after = not_until.wait_time_from(inner.limiter.clock().now());
            return Err(Error::RateLimited { retry_after });
        }
        // Subscribe before the job exists so not one of its events can be missed.
        let rx = inner.events.subscribe();
        let intake = inner.intake.lock().await;
        let max = inner.limits.max_queued_per_user;
        if max > 0 && self.active_jobs(&user) >= max as usize {
            return Err(Error::TooManyQueued { limit: max });
        }
        let created_ms = now_ms();
        let debit = (inner.limits.daily_quota > 0).then(|| QuotaDebit {
            day: created_ms / DAY_MS,
            limit: inner.limits.daily_quota,
        });
        let job = Job {
            id: self.on_store(|s| s.next_job_id()).await?,
            user: user.clone(),
            origin,
            params,
            state: JobState::Queued,
            backend: None,
            attempts: 0,
            timings: Timings {
                created_ms,
                ..Timings::default()
            },
        };
        let record = job.clone();
        match self
            .on_store(move |s| s.insert_job(&record, debit.as_ref()))
            .await?
        {
            Insert::Inserted => {}
            Insert::Duplicate(id) => {
                drop(intake);
                return self.existing(id).await;
            }
            Insert::OverQuota { .. } => {
                return Err(Error::QuotaExceeded {
                    limit: inner.limits.daily_quota,
                });
            }
        }
        let position = {
            let mut queue = lock(&inner.queue);
            queue.push(user.clone(), job.id);
            queue.position(job.id)
        };
        drop(intake);
        inner.wake.notify_one();
        info!(job = %job.id, user = %user, position, "queued");
        self.publish(&job, position);
        Ok(Submitted {
            job: job.id,
            position,
            duplicate: false,
            state: JobState::Queued,
            events: JobEvents::new(rx, job.id, self.clone(), false),
        })
    }

    async fn existing(&self, id: JobId) -> Result<Submitted, Error> {
        let rx = self.inner.events.subscribe();
        let job = self.job(id).await?.ok_or(Error::NoSuchJob(id))?;
        let position = lock(&self.inner.queue).position(id);
        let finished = job.state.is_terminal();
        Ok(Submitted {
            job: id,
            position,
            duplicate: true,
            state: job.state,
            events: JobEvents::new(rx, id, self.clone(), finished),
        })
    }

    /// Cancels a job that is waiting or rendering. Only its owner or an admin may.
    pub async fn cancel(&self, id: JobId, by: &UserKey) -> Result<(), Error> {
        let mut job = self.job(id).await?.ok_or(Error::NoSuchJob(id))?;
        if job.user != *by && !self.is_admin(by) {
            return Err(Error::NotAllowed(id));
        }
        let waiting = {
            let mut queue = lock(&self.inner.queue);
            if queue.remove(&job.user, id) {
                true
            } else {
                let mut running = lock(&self.inner.running);
                match running.get_mut(&id) {
                    Some(run) => {
                        run.cancelled_by = Some(by.clone());
                        run.cancel.cancel();
                        return Ok(());
                    }
                    None => false,
                }
            }
        };
        if !waiting {
            return Err(Error::AlreadyFinished(id));
        }
        job.state = JobState::Cancelled { by: by.clone() };
        job.timings.finished_ms = Some(now_ms());
        let record = job.clone();
        self.on_store(move |s| s.update_job(&record, true)).await?;
        info!(job = %id, by = %by, "cancelled while queued");
        self.publish(&job, None);
        self.announce_positions();
        Ok(())
    }

    /// A job's events from now on, starting with its present state: how a surface picks up a
    /// job again after a restart (the state may already be final, e.g. done but undelivered).
    pub async fn watch(&self, id: JobId) -> Result<JobEvents, Error> {
        // Subscribed before reading, so no change between the two is missed.
        let rx = self.inner.events.subscribe();
        let job = self.job(id).await?.ok_or(Error::NoSuchJob(id))?;
        Ok(JobEvents::starting_with(rx, self.clone(), event_of(&job)))
    }

    /// Every job event from now on, for any job.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.inner.events.subscribe()
    }

    /// Resolves once `shutdown` has finished.
    pub(crate) async fn closed(&self) {
        self.inner.closed.cancelled().await
    }

    pub async fn job(&self, id: JobId) -> Result<Option<Job>, Error> {
        self.on_store(move |s| s.job(id)).await
    }

    pub fn styles(&self) -> &StyleCatalog {
        &self.inner.styles
    }

    /// Admins from the config; the console and the command line are run by the operator.
    pub fn is_admin(&self, user: &UserKey) -> bool {
        matches!(user.platform, Platform::Console | Platform::Cli)
            || self.inner.admins.contains(user)
    }

    /// The configured daily quota per user; 0 for none.
    pub fn daily_quota(&self) -> u32 {
        self.inner.limits.daily_quota
    }

    pub fn queue_len(&self) -> usize {
        lock(&self.inner.queue).len()
    }

    pub fn boot_epoch(&self) -> u64 {
        self.inner.boot_epoch
    }

    pub fn backend_health(&self) -> Health {
        self.inner.backend.health()
    }

    /// Stops intake, lets running jobs finish within `grace`, interrupts the rest (they stay
    /// queued for the next start), and flushes the store.
    pub async fn shutdown(&self, grace: Duration) -> Result<(), Error> {
        let inner = &self.inner;
        inner.accepting.store(false, Ordering::SeqCst);
        inner.stop.cancel();
        let mut tasks: Vec<Option<JoinHandle<()>>> =
            lock(&inner.tasks).drain(..).map(Some).collect();
        let deadline = tokio::time::Instant::now() + grace;
        for slot in tasks.iter_mut() {
            if let Some(task) = slot {
                if tokio::time::timeout_at(deadline, &mut *task).await.is_err() {
                    break;
                }
                *slot = None;
            }
        }
        if tasks.iter().any(Option::is_some) {
            warn!(
                grace_secs = grace.as_secs(),
                "grace period over; interrupting running jobs"
            );
            inner.abort.cancel();
            for task in tasks.into_iter().flatten() {
                if let Err(e) = task.await {
                    error!(error = %e, "a worker ended abnormally");
                }
            }
        }
        let flushed = self.on_store(|s| s.flush()).await;
        inner.closed.cancel();
        flushed?;
        info!("engine stopped");
        Ok(())
    }

    fn active_jobs(&self, user: &UserKey) -> usize {
        let queue = lock(&self.inner.queue);
        let running = lock(&self.inner.running);
        queue.waiting_for(user) + running.values().filter(|r| &r.user == user).count()
    }

    /// Runs a store call off the async threads: durable writes wait for the disk.
    async fn on_store<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Error> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || call(store.as_ref()))
            .await
            .map_err(|e| Error::Internal(format!("store task failed: {e}")))?
            .map_err(Error::from)
    }

    fn publish(&self, job: &Job, position: Option<u32>) {
        let mut event = event_of(job);
        event.position = position;
        event.eta_ms = self.eta_ms(&job.state, position, None);
        // No subscribers is fine: nobody is watching.
        let _ = self.inner.events.send(event);
    }

    fn eta_ms(
        &self,
        state: &JobState,
        position: Option<u32>,
        started: Option<Instant>,
    ) -> Option<u64> {
        let mean = (*lock(&self.inner.mean_job_ms))?;
        match (state, position, started) {
            (JobState::Queued, Some(p), _) => {
                let rounds = (p as f64 / self.inner.workers as f64).ceil();
                Some((rounds * mean) as u64)
            }
            (JobState::Running { progress, .. }, _, Some(started)) if *progress > 0.01 => {
                let elapsed = started.elapsed().as_millis() as f64;
                Some((elapsed * (1.0 - *progress as f64) / *progress as f64) as u64)
            }
            (JobState::Running { .. } | JobState::Encoding { .. }, _, _) => Some(mean as u64),
            _ => None,
        }
    }

    /// Tells the first waiting jobs their new places after the queue moved.
    fn announce_positions(&self) {
        let positions = lock(&self.inner.queue).positions(POSITION_WINDOW);
        for (job, user, position) in positions {
            let _ = self.inner.events.send(JobEvent {
                job,
                user,
                state: JobState::Queued,
                position: Some(position),
                eta_ms: self.eta_ms(&JobState::Queued, Some(position), None),
            });
        }
    }
}
