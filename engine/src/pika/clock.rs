//! Time as the Pika client sees it: a monotonic "now" and a sleep. Backoff, Retry-After, poll
//! intervals and the job deadline all go through it, so tests can check every wait without
//! spending real time on it.

use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

#[async_trait]
pub trait Clock: Send + Sync + Debug {
    /// Time since an arbitrary fixed origin.
    fn now(&self) -> Duration;

    async fn sleep(&self, duration: Duration);
}

/// Real time, through tokio (so `tokio::time::pause` also applies).
#[derive(Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock::new()
    }
}

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A clock that never waits: each sleep is recorded, moves "now" forward by its length and
/// returns at once. HTTP calls still take real (loopback) time, which this clock ignores.
#[derive(Debug, Default)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug, Default)]
struct ManualState {
    now: Duration,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock::default()
    }

    /// Every sleep asked for, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    /// Moves "now" forward without a sleep, as if a call had taken that long.
    pub fn advance(&self, by: Duration) {
        self.lock().now += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.lock().now
    }

    async fn sleep(&self, duration: Duration) {
        {
            let mut state = self.lock();
            state.now += duration;
            state.sleeps.push(duration);
        }
        // Let other tasks run, as a real sleep would.
        tokio::task::yield_now().await;
    }
}
