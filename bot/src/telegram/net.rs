//! Talking to the Bot API safely: the token never leaves in a log line, and a 429's
//! `retry_after` is honoured on the calls the Throttle adaptor does not queue (edits, chat
//! actions, inline answers, callback answers, sticker-set methods).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use teloxide::RequestError;
use tracing::warn;

/// The longest a single call waits in total for Telegram's rate limit before giving up.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// Removes the bot token from any text before it is logged or shown.
///
/// teloxide puts the token in every request URL and strips it from network errors only when
/// the token has the usual shape; this catches every other case, including the token's secret
/// half on its own.
#[derive(Clone)]
pub struct Redactor {
    needles: Arc<[String]>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(..)")
    }
}

impl Redactor {
    pub fn new(token: &SecretString) -> Redactor {
        let token = token.expose_secret();
        let mut needles = vec![token.to_string()];
        // The secret half alone is as good as the token; the id half is public.
        if let Some((_, secret)) = token.split_once(':')
            && secret.len() >= 8
        {
            needles.push(secret.to_string());
        }
        needles.retain(|n| !n.is_empty());
        Redactor {
            needles: needles.into(),
        }
    }

    pub fn clean(&self, text: &str) -> String {
        let mut text = text.to_string();
        for needle in self.needles.iter() {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), "<redacted>");
            }
        }
        text
    }

    /// An error and its causes on one line, without the token.
    pub fn chain(&self, e: &(dyn std::error::Error + 'static)) -> String {
        self.clean(&loopsmith_engine::error_chain(e))
    }
}

/// Runs a call again after each `RetryAfter`, waiting as Telegram asked, while the total wait
/// stays within [`MAX_RETRY_WAIT`]; any other outcome is returned as it is.
pub async fn retrying<T, F, Fut>(what: &'static str, mut call: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let mut waited = Duration::ZERO;
    loop {
        match call().await {
            Err(RequestError::RetryAfter(after)) if waited + after.duration() <= MAX_RETRY_WAIT => {
                warn!(
                    call = what,
                    retry_after_secs = after.seconds(),
                    "Telegram asked us to slow down; waiting"
                );
                tokio::time::sleep(after.duration()).await;
                waited += after.duration();
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use teloxide::types::Seconds;

    use super::*;

    const CANARY: &str = "123456:AAcanary-secret_value-0123456789abcdefXYZ";

    #[test]
    fn the_token_and_its_secret_half_are_removed() {
        let r = Redactor::new(&SecretString::from(CANARY));
        let secret = CANARY.split_once(':').map(|(_, s)| s).unwrap_or_default();
        let text = format!("POST http://x/bot{CANARY}/GetMe failed; also {secret}");
        let clean = r.clean(&text);
        assert!(!clean.contains(secret), "{clean}");
        assert_eq!(
            clean,
            "POST http://x/bot<redacted>/GetMe failed; also <redacted>"
        );
        assert_eq!(format!("{r:?}"), "Redactor(..)");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_waited_out_then_the_call_succeeds() {
        let tries = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let result = retrying("test", || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(RequestError::RetryAfter(Seconds::from_seconds(3))),
                1 => Err(RequestError::RetryAfter(Seconds::from_seconds(5))),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(result.ok(), Some(7));
        assert_eq!(tries.load(Ordering::SeqCst), 3);
        assert_eq!(start.elapsed(), Duration::from_secs(8));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_past_the_limit_is_returned_at_once() {
        let start = tokio::time::Instant::now();
        let result: Result<(), _> = retrying("test", || async {
            Err(RequestError::RetryAfter(Seconds::from_seconds(31)))
        })
        .await;
        assert!(matches!(result, Err(RequestError::RetryAfter(_))));
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
