//! fal's status stream: `GET {status_url}/stream?logs=1` answers server-sent events, each a
//! `data:` line holding the same object as a status poll, with comment lines as keep-alives
//! (every 15 s), and closes after `COMPLETED`. Anything unexpected (an error answer, a
//! broken or silent stream, an event we cannot read) ends the stream and the caller polls,
//! so the stream can only make updates quicker, never make a job fail.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use tracing::{debug, warn};

use super::{FalClient, JobLimits, QueueStatus, parse_status, with_query};
use crate::pika::error::PikaError;

/// Most bytes of one pending event; a status object is far smaller.
const MAX_EVENT_BYTES: usize = 1 << 20;

impl FalClient {
    /// Follows the status stream, handing every status to `on_status`. `Ok(true)` once
    /// `COMPLETED` arrived; `Ok(false)` when the stream failed or fell silent for `silence`
    /// before that, and polling should take over.
    pub async fn follow_status(
        &self,
        status_url: &str,
        job: &JobLimits,
        silence: Duration,
        mut on_status: impl FnMut(QueueStatus),
    ) -> Result<bool, PikaError> {
        let url = stream_url(status_url);
        let remaining = job.deadline.saturating_sub(self.clock.now());
        let request = self
            .http
            .get(&url)
            .header(AUTHORIZATION, self.authorization())
            .header(ACCEPT, "text/event-stream")
            // The stream lives as long as the job may; silence is watched separately.
            .timeout(remaining.max(Duration::from_secs(1)));
        let opened = tokio::select! {
            biased;
            _ = job.cancel.cancelled() => return Err(PikaError::Cancelled),
            opened = tokio::time::timeout(silence, request.send()) => opened,
        };
        let response = match opened {
            Ok(Ok(response)) if response.status().is_success() => response,
            Ok(Ok(response)) => {
                warn!(
                    status = response.status().as_u16(),
                    "fal refused the status stream; polling instead"
                );
                return Ok(false);
            }
            Ok(Err(e)) => {
                warn!(error = %e, "cannot open the status stream; polling instead");
                return Ok(false);
            }
            Err(_) => {
                warn!("the status stream did not answer; polling instead");
                return Ok(false);
            }
        };
        let mut body = response.bytes_stream();
        let mut pending = String::new();
        loop {
            if self.clock.now() > job.deadline {
                return Err(PikaError::Deadline(job.allowance));
            }
            let next = tokio::select! {
                biased;
                _ = job.cancel.cancelled() => return Err(PikaError::Cancelled),
                next = tokio::time::timeout(silence, body.next()) => next,
            };
            let chunk = match next {
                Ok(Some(Ok(chunk))) => chunk,
                Ok(Some(Err(e))) => {
                    warn!(error = %e, "the status stream broke; polling instead");
                    return Ok(false);
                }
                Ok(None) => {
                    debug!("the status stream ended before COMPLETED; polling instead");
                    return Ok(false);
                }
                Err(_) => {
                    warn!(silence = ?silence, "the status stream fell silent; polling instead");
                    return Ok(false);
                }
            };
            pending.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
            if pending.len() > MAX_EVENT_BYTES {
                warn!("an oversized status event; polling instead");
                return Ok(false);
            }
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|line| line.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    // A keep-alive comment or a field we do not use.
                    continue;
                }
                match parse_status(data.join("\n").as_bytes()) {
                    Ok(status) => {
                        let completed = matches!(status, QueueStatus::Completed { .. });
                        on_status(status);
                        if completed {
                            return Ok(true);
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "an unreadable status event; polling instead");
                        return Ok(false);
                    }
                }
            }
        }
    }
}

/// `{status_url}/stream?logs=1`, keeping any query fal put on the status URL.
fn stream_url(status_url: &str) -> String {
    let (path, query) = match status_url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (status_url, None),
    };
    let base = format!("{}/stream", path.trim_end_matches('/'));
    let with = match query {
        Some(q) => format!("{base}?{q}"),
        None => base,
    };
    with_query(&with, "logs", "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_url_extends_the_status_url() {
        assert_eq!(
            stream_url("https://queue.fal.run/fal-ai/pika/requests/r1/status"),
            "https://queue.fal.run/fal-ai/pika/requests/r1/status/stream?logs=1"
        );
        assert_eq!(
            stream_url("https://q/x/status?logs=0"),
            "https://q/x/status/stream?logs=1"
        );
    }
}
