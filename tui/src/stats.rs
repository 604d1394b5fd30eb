//! Figures the Dashboard shows, computed from the jobs the console holds.

use loopsmith_protocol::JobState;

use crate::app::App;

const HOUR_MS: u64 = 3_600_000;
/// Latency percentiles are over this many of the latest finished jobs.
const LATENCY_WINDOW: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub queued: usize,
    pub running: usize,
    pub done_last_hour: usize,
    pub failed_last_hour: usize,
    /// From submit to finished, over the latest done jobs.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
}

pub fn stats(app: &App) -> Stats {
    let mut s = Stats::default();
    let since = app.now_ms.saturating_sub(HOUR_MS);
    let mut latencies = Vec::with_capacity(LATENCY_WINDOW);
    // Newest first, so the latency window is the latest jobs.
    for view in app.jobs.values().rev() {
        let job = &view.job;
        let finished_recently = job.timings.finished_ms.is_some_and(|f| f >= since);
        match &job.state {
            JobState::Queued => s.queued += 1,
            JobState::Running { .. } | JobState::Encoding { .. } => s.running += 1,
            JobState::Done { .. } => {
                if finished_recently {
                    s.done_last_hour += 1;
                }
                if latencies.len() < LATENCY_WINDOW
                    && let Some(finished) = job.timings.finished_ms
                {
                    latencies.push(finished.saturating_sub(job.timings.created_ms));
                }
            }
            JobState::Failed { .. } | JobState::Cancelled { .. } => {
                if finished_recently {
                    s.failed_last_hour += 1;
                }
            }
        }
    }
    latencies.sort_unstable();
    s.p50_ms = percentile(&latencies, 50);
    s.p95_ms = percentile(&latencies, 95);
    s
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[1, 2], 50), Some(1));
    }
}
