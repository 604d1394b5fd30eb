//! Prometheus metrics: what the engine did (jobs by state, render and encode time per backend,
//! fallbacks, failures by kind), read from the engine's job events, plus what it is doing now
//! (queue depth, breaker states, spend), read when scraped. Served as Prometheus text format
//! 0.0.4 on loopback only ([`serve`]); off unless configured.

mod http;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use loopsmith_protocol::{JobEvent, JobId, JobState};

pub use http::{GaugeSource, MetricsError, serve};

/// Upper bounds (seconds) of the render and encode histograms: a sticker encodes in well under
/// a second, a CPU render takes seconds, a remote one minutes.
const BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Values read at scrape time from parts of the engine that own them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gauges {
    pub queue_depth: usize,
    /// (backend, state) with state one of `closed`, `open`, `half_open`.
    pub breakers: Vec<(String, String)>,
    /// US dollars spent on paid backends today (UTC).
    pub spend_today_usd: f64,
    /// Today's cap; `None` when there is none.
    pub budget_today_usd: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// Where a job is, as far as the events told.
#[derive(Debug)]
struct Tracked {
    state: &'static str,
    backend: Option<String>,
    running_since: Option<Instant>,
    encoding_since: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Transitions into each state since start.
    entered: BTreeMap<&'static str, u64>,
    /// Jobs currently in each non-terminal state.
    live: HashMap<JobId, Tracked>,
    render: BTreeMap<String, Histogram>,
    encode: BTreeMap<String, Histogram>,
    /// (from, to) backend pairs a running job moved between.
    fallbacks: BTreeMap<(String, String), u64>,
    failures: BTreeMap<&'static str, u64>,
}

/// Counters fed by [`Metrics::observe`]; cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Records one job event seen at `now`.
    pub fn observe(&self, event: &JobEvent, now: Instant) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let inner = &mut *inner;
        let name = event.state.name();
        let previous = inner.live.get(&event.job).map(|t| t.state);
        // Progress updates repeat `running`; count a state once per entry.
        if previous != Some(name) {
            *inner.entered.entry(name).or_default() += 1;
        }
        let tracked = inner.live.entry(event.job).or_insert_with(|| Tracked {
            state: name,
            backend: None,
            running_since: None,
            encoding_since: None,
        });
        tracked.state = name;
        match &event.state {
            JobState::Queued => {
                tracked.running_since = None;
                tracked.encoding_since = None;
            }
            JobState::Running { backend, .. } => {
                if let Some(old) = tracked.backend.as_ref().filter(|old| *old != backend) {
                    *inner
                        .fallbacks
                        .entry((old.clone(), backend.clone()))
                        .or_default() += 1;
                    tracked.running_since = Some(now);
                }
                tracked.backend = Some(backend.clone());
                tracked.running_since.get_or_insert(now);
            }
            JobState::Encoding { backend } => {
                if let Some(since) = tracked.running_since {
                    inner
                        .render
                        .entry(backend.clone())
                        .or_default()
                        .observe(now.duration_since(since).as_secs_f64());
                }
                tracked.encoding_since = Some(now);
                tracked.backend = Some(backend.clone());
            }
            JobState::Done { .. } => {
                if let (Some(since), Some(backend)) = (tracked.encoding_since, &tracked.backend) {
                    inner
                        .encode
                        .entry(backend.clone())
                        .or_default()
                        .observe(now.duration_since(since).as_secs_f64());
                }
            }
            JobState::Failed {
                reason, retryable, ..
            } => {
                *inner
                    .failures
                    .entry(failure_kind(reason, *retryable))
                    .or_default() += 1;
            }
            JobState::Cancelled { .. } => {}
        }
        if event.state.is_terminal() {
            inner.live.remove(&event.job);
        }
    }

    /// The Prometheus text exposition of everything recorded plus `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let Ok(inner) = self.inner.lock() else {
            return out;
        };
        family(
            &mut out,
            "loopsmith_jobs_entered_total",
            "counter",
            "Jobs that entered each state since start.",
        );
        for state in STATES {
            let n = inner.entered.get(state).copied().unwrap_or(0);
            let _ = writeln!(out, "loopsmith_jobs_entered_total{{state=\"{state}\"}} {n}");
        }
        family(
            &mut out,
            "loopsmith_jobs",
            "gauge",
            "Jobs in each non-terminal state now, among those seen since start.",
        );
        for state in ["queued", "running", "encoding"] {
            let n = inner.live.values().filter(|t| t.state == state).count();
            let _ = writeln!(out, "loopsmith_jobs{{state=\"{state}\"}} {n}");
        }
        family(
            &mut out,
            "loopsmith_queue_depth",
            "gauge",
            "Jobs waiting for a worker.",
        );
        let _ = writeln!(out, "loopsmith_queue_depth {}", gauges.queue_depth);
        histograms(
            &mut out,
            "loopsmith_render_seconds",
            "Time from a backend starting a job to its clip, per backend.",
            &inner.render,
        );
        histograms(
            &mut out,
            "loopsmith_encode_seconds",
            "Time from a clip to the job's files, per backend.",
            &inner.encode,
        );
        family(
            &mut out,
            "loopsmith_fallbacks_total",
            "counter",
            "Jobs moved from one backend to another while running.",
        );
        for ((from, to), n) in &inner.fallbacks {
            let _ = writeln!(
                out,
                "loopsmith_fallbacks_total{{from=\"{}\",to=\"{}\"}} {n}",
                label(from),
                label(to)
            );
        }
        family(
            &mut out,
            "loopsmith_job_failures_total",
            "counter",
            "Failed jobs by kind of failure.",
        );
        for kind in FAILURE_KINDS {
            let n = inner.failures.get(kind).copied().unwrap_or(0);
            let _ = writeln!(out, "loopsmith_job_failures_total{{kind=\"{kind}\"}} {n}");
        }
        family(
            &mut out,
            "loopsmith_breaker_state",
            "gauge",
            "Circuit breaker per backend: 1 for its current state.",
        );
        for (backend, state) in &gauges.breakers {
            for candidate in ["closed", "open", "half_open"] {
                let on = u8::from(candidate == state);
                let _ = writeln!(
                    out,
                    "loopsmith_breaker_state{{backend=\"{}\",state=\"{candidate}\"}} {on}",
                    label(backend)
                );
            }
        }
        family(
            &mut out,
            "loopsmith_spend_today_usd",
            "gauge",
            "US dollars spent on paid backends today (UTC).",
        );
        let _ = writeln!(
            out,
            "loopsmith_spend_today_usd {}",
            number(gauges.spend_today_usd)
        );
        if let Some(budget) = gauges.budget_today_usd {
            family(
                &mut out,
                "loopsmith_budget_today_usd",
                "gauge",
                "Today's cap on paid spend, US dollars.",
            );
            let _ = writeln!(out, "loopsmith_budget_today_usd {}", number(budget));
        }
        out
    }
}

const STATES: [&str; 6] = [
    "queued",
    "running",
    "encoding",
    "done",
    "failed",
    "cancelled",
];

const FAILURE_KINDS: [&str; 5] = ["timeout", "budget", "rejected", "backend", "retryable"];

/// A small fixed set of kinds, so label cardinality stays bounded whatever the reasons say.
fn failure_kind(reason: &str, retryable: bool) -> &'static str {
    let lower = reason.to_lowercase();
    if lower.contains("timed out") || lower.contains("deadline") || lower.contains("timeout") {
        "timeout"
    } else if lower.contains("budget") || lower.contains("spend") {
        "budget"
    } else if lower.contains("not allowed")
        || lower.contains("refused")
        || lower.contains("rejected")
        || lower.contains("blocked")
    {
        "rejected"
    } else if retryable {
        "retryable"
    } else {
        "backend"
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histograms(out: &mut String, name: &str, help: &str, per_backend: &BTreeMap<String, Histogram>) {
    family(out, name, "histogram", help);
    for (backend, h) in per_backend {
        let backend = label(backend);
        for (bound, count) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{backend=\"{backend}\",le=\"{}\"}} {count}",
                number(*bound)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{backend=\"{backend}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "{name}_sum{{backend=\"{backend}\"}} {}", number(h.sum));
        let _ = writeln!(out, "{name}_count{{backend=\"{backend}\"}} {}", h.count);
    }
}

/// A label value escaped as the text format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "NaN".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use loopsmith_protocol::{Platform, UserKey};

    use super::*;

    fn event(job: u64, state: JobState) -> JobEvent {
        JobEvent {
            job: JobId(job),
            user: UserKey::new(Platform::Cli, "me"),
            state,
            position: None,
            eta_ms: None,
        }
    }

    fn running(backend: &str, progress: f32) -> JobState {
        JobState::Running {
            backend: backend.into(),
            progress,
        }
    }

    fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?} in\n{text}"))
    }

    #[test]
    fn a_job_walk_moves_the_counters_histograms_and_fallbacks() {
        let m = Metrics::new();
        let t0 = Instant::now();
        m.observe(&event(1, JobState::Queued), t0);
        m.observe(&event(1, running("local", 0.0)), t0);
        m.observe(
            &event(1, running("local", 0.5)),
            t0 + Duration::from_secs(1),
        );
        // The local backend failed over to Pika: a fallback, and render time restarts.
        m.observe(&event(1, running("pika", 0.0)), t0 + Duration::from_secs(2));
        m.observe(
            &event(
                1,
                JobState::Encoding {
                    backend: "pika".into(),
                },
            ),
            t0 + Duration::from_secs(42),
        );
        let text = m.render(&Gauges::default());
        assert_eq!(
            line(&text, "loopsmith_jobs{state=\"encoding\"}"),
            "loopsmith_jobs{state=\"encoding\"} 1"
        );
        m.observe(
            &event(1, JobState::Done { artifacts: vec![] }),
            t0 + Duration::from_millis(42_300),
        );
        let text = m.render(&Gauges {
            queue_depth: 4,
            breakers: vec![("pika".into(), "half_open".into())],
            spend_today_usd: 0.6,
            budget_today_usd: Some(5.0),
        });
        for expected in [
            "loopsmith_jobs_entered_total{state=\"queued\"} 1",
            "loopsmith_jobs_entered_total{state=\"running\"} 1",
            "loopsmith_jobs_entered_total{state=\"done\"} 1",
            "loopsmith_jobs{state=\"encoding\"} 0",
            "loopsmith_queue_depth 4",
            "loopsmith_fallbacks_total{from=\"local\",to=\"pika\"} 1",
            "loopsmith_render_seconds_bucket{backend=\"pika\",le=\"30\"} 0",
            "loopsmith_render_seconds_bucket{backend=\"pika\",le=\"60\"} 1",
            "loopsmith_render_seconds_sum{backend=\"pika\"} 40",
            "loopsmith_encode_seconds_bucket{backend=\"pika\",le=\"0.25\"} 0",
            "loopsmith_encode_seconds_bucket{backend=\"pika\",le=\"0.5\"} 1",
            "loopsmith_encode_seconds_count{backend=\"pika\"} 1",
            "loopsmith_breaker_state{backend=\"pika\",state=\"half_open\"} 1",
            "loopsmith_breaker_state{backend=\"pika\",state=\"open\"} 0",
            "loopsmith_spend_today_usd 0.6",
            "loopsmith_budget_today_usd 5",
        ] {
            assert!(text.lines().any(|l| l == expected), "{expected}\n{text}");
        }
        assert!(
            !text.contains("backend=\"local\",le"),
            "local never finished a render"
        );
    }

    #[test]
    fn failures_are_counted_by_a_bounded_kind() {
        let m = Metrics::new();
        let now = Instant::now();
        let reasons = [
            ("Pika timed out after 600 s", false, "timeout"),
            ("today's Pika budget is spent", false, "budget"),
            ("the prompt was rejected by the model", false, "rejected"),
            ("connection reset", true, "retryable"),
            ("the denoiser returned 3 values", false, "backend"),
        ];
        for (i, (reason, retryable, _)) in reasons.iter().enumerate() {
            m.observe(
                &event(
                    i as u64,
                    JobState::Failed {
                        reason: (*reason).into(),
                        retryable: *retryable,
                        chain: Vec::new(),
                    },
                ),
                now,
            );
        }
        let text = m.render(&Gauges::default());
        for (_, _, kind) in reasons {
            let expected = format!("loopsmith_job_failures_total{{kind=\"{kind}\"}} 1");
            assert!(text.lines().any(|l| l == expected), "{expected}\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
