//! A circuit breaker per backend: after too many failures the router stops sending it jobs
//! for a cool-down, then lets one probe job through; the probe's outcome closes or re-opens it.
//!
//! Two rules open it: `consecutive` failures in a row, or a failure share of at least `rate`
//! over the last `window` outcomes (once the window is full). Only real render failures count;
//! refusals, cancellations and "nothing attempted" answers say nothing about the backend.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerPolicy {
    pub consecutive: u32,
    /// 0 disables the rate rule.
    pub rate: f64,
    pub window: u32,
    pub cooldown: Duration,
}

impl BreakerPolicy {
    pub const DEFAULT: BreakerPolicy = BreakerPolicy {
        consecutive: 5,
        rate: 0.5,
        window: 20,
        cooldown: Duration::from_secs(60),
    };
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy::DEFAULT
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed,
    Open {
        until: Instant,
    },
    /// One probe is out; everything else waits for its outcome.
    HalfOpen,
}

/// What the breaker lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Normal,
    /// The one job allowed through after the cool-down.
    Probe,
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: State,
    consecutive: u32,
    /// `true` for a failure, newest last.
    recent: VecDeque<bool>,
    /// Why it last opened, for health reports.
    why: String,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            policy,
            state: State::Closed,
            consecutive: 0,
            recent: VecDeque::new(),
            why: String::new(),
        }
    }

    /// `closed`, `open` or `half_open`, for metrics. An open breaker whose wait is over still
    /// reads `open` until the next job turns it into a probe.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Closed => "closed",
            State::Open { .. } => "open",
            State::HalfOpen => "half_open",
        }
    }

    /// Why no job may be sent now, or `None` when one may. Does not change the state.
    pub fn blocked(&self, now: Instant) -> Option<String> {
        match self.state {
            State::Closed => None,
            State::Open { until } if now >= until => None,
            State::Open { until } => Some(format!(
                "circuit open ({}); next try in {} s",
                self.why,
                until.saturating_duration_since(now).as_secs().max(1)
            )),
            State::HalfOpen => Some(format!(
                "circuit open ({}); a probe job is running",
                self.why
            )),
        }
    }

    /// Lets a job through, turning an expired open state into a probe; `None` when blocked.
    pub fn admit(&mut self, now: Instant) -> Option<Admission> {
        match self.state {
            State::Closed => Some(Admission::Normal),
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen;
                Some(Admission::Probe)
            }
            State::Open { .. } | State::HalfOpen => None,
        }
    }

    /// Records how an admitted job went.
    pub fn record(&mut self, failed: bool, admission: Admission, now: Instant) {
        self.recent.push_back(failed);
        while self.recent.len() > self.policy.window.max(1) as usize {
            self.recent.pop_front();
        }
        self.consecutive = if failed { self.consecutive + 1 } else { 0 };
        if admission == Admission::Probe || self.state == State::HalfOpen {
            if failed {
                self.why = "the probe job failed".into();
                self.open(now);
            } else {
                self.state = State::Closed;
                self.recent.clear();
            }
            return;
        }
        if self.state != State::Closed {
            return;
        }
        if failed && self.consecutive >= self.policy.consecutive.max(1) {
            self.why = format!("{} failures in a row", self.consecutive);
            self.open(now);
            return;
        }
        // Checked after successes too: the outcome that fills the window may be one.
        let full = self.recent.len() >= self.policy.window.max(1) as usize;
        if self.policy.rate > 0.0 && full {
            let failures = self.recent.iter().filter(|f| **f).count();
            if failures as f64 / self.recent.len() as f64 >= self.policy.rate {
                self.why = format!(
                    "{failures} of the last {} renders failed",
                    self.recent.len()
                );
                self.open(now);
            }
        }
    }

    /// A probe that ended without an outcome (cancelled, refused) frees the slot for another.
    pub fn release_probe(&mut self, now: Instant) {
        if self.state == State::HalfOpen {
            self.state = State::Open { until: now };
        }
    }

    fn open(&mut self, now: Instant) {
        self.state = State::Open {
            until: now + self.policy.cooldown,
        };
        self.consecutive = 0;
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            consecutive: 3,
            rate: 0.5,
            window: 4,
            cooldown: Duration::from_secs(10),
        }
    }

    #[test]
    fn consecutive_failures_open_it_and_a_probe_closes_it() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerPolicy {
            rate: 0.0,
            ..policy()
        });
        for _ in 0..2 {
            assert_eq!(b.admit(t0), Some(Admission::Normal));
            b.record(true, Admission::Normal, t0);
        }
        assert_eq!(b.blocked(t0), None, "two failures are not three");
        b.record(true, Admission::Normal, t0);
        assert_eq!(
            b.blocked(t0).as_deref(),
            Some("circuit open (3 failures in a row); next try in 10 s")
        );
        assert_eq!(b.admit(t0 + Duration::from_secs(9)), None);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.admit(later), Some(Admission::Probe));
        assert_eq!(b.admit(later), None, "one probe at a time");
        b.record(false, Admission::Probe, later);
        assert_eq!(b.admit(later), Some(Admission::Normal));
    }

    #[test]
    fn a_failed_probe_opens_it_again_and_the_rate_rule_needs_a_full_window() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerPolicy {
            consecutive: 100,
            ..policy()
        });
        for failed in [true, false, true] {
            b.record(failed, Admission::Normal, t0);
        }
        assert_eq!(b.blocked(t0), None, "3 outcomes do not fill a window of 4");
        b.record(false, Admission::Normal, t0);
        assert!(b.blocked(t0).is_some(), "2 of 4 failed: at the 50 % rate");
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.admit(later), Some(Admission::Probe));
        b.record(true, Admission::Probe, later);
        assert_eq!(
            b.blocked(later).as_deref(),
            Some("circuit open (the probe job failed); next try in 10 s")
        );
    }
}
