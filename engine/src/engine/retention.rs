//! Retention: finished jobs older than `storage.keep_artifacts_days` are forgotten — their
//! sticker files and their records — so the data dir holds a bounded window of history instead
//! of growing forever. Runs at start and then hourly.

use std::time::Duration;

use loopsmith_protocol::JobId;
use tracing::{info, warn};

use super::{Engine, now_ms};

const EVERY: Duration = Duration::from_secs(3600);

impl Engine {
    pub(super) async fn retain(self, keep_days: u32) {
        if keep_days == 0 {
            return; // keep everything
        }
        loop {
            if let Err(e) = self.prune(keep_days).await {
                warn!(error = %crate::error_chain(&e), "cleaning up old jobs failed; trying again in an hour");
            }
            tokio::select! {
                _ = self.inner.stop.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    /// Deletes finished jobs whose end is older than `keep_days`; returns how many.
    pub async fn prune(&self, keep_days: u32) -> Result<usize, crate::Error> {
        let cutoff = now_ms().saturating_sub(u64::from(keep_days) * 86_400_000);
        let old: Vec<JobId> = self
            .jobs()
            .await?
            .into_iter()
            .filter(|j| j.state.is_terminal())
            .filter(|j| j.timings.finished_ms.unwrap_or(j.timings.created_ms) < cutoff)
            .map(|j| j.id)
            .collect();
        for &id in &old {
            let dir = self.inner.artifacts_dir.join(id.to_string());
            if let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warn!(job = %id, path = %dir.display(), error = %e, "could not remove old stickers");
                continue; // the record stays, so the files are tried again next time
            }
            self.on_store(move |s| s.delete_job(id)).await?;
        }
        if !old.is_empty() {
            info!(
                jobs = old.len(),
                keep_days, "forgot finished jobs past the retention period"
            );
        }
        Ok(old.len())
    }
}
