//! Talking to Discord safely: neither the bot token nor an interaction token leaves in a log
//! line, Discord's JSON error codes are read where they decide what the user is told, and
//! message edits are spaced across every job the bot follows.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serenity::http::HttpError;
use tokio::sync::Mutex;
use tokio::time::{Instant, sleep_until};

/// Removes secrets from text before it is logged or shown: the bot token, and the
/// interaction tokens that sit in webhook and callback URLs (each lets anyone edit or follow
/// up that interaction for 15 minutes).
#[derive(Clone)]
pub struct Redactor {
    token: Arc<str>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redactor(..)")
    }
}

impl Redactor {
    pub fn new(token: &SecretString) -> Redactor {
        let token = token.expose_secret();
        let token = token.strip_prefix("Bot ").unwrap_or(token).trim();
        Redactor {
            token: token.into(),
        }
    }

    pub fn clean(&self, text: &str) -> String {
        let mut text = text.to_string();
        if !self.token.is_empty() && text.contains(&*self.token) {
            text = text.replace(&*self.token, "<redacted>");
        }
        for route in ["/webhooks/", "/interactions/"] {
            text = redact_after_id(&text, route);
        }
        text
    }

    /// An error and its causes on one line, without secrets.
    pub fn chain(&self, e: &(dyn std::error::Error + 'static)) -> String {
        self.clean(&loopsmith_engine::error_chain(e))
    }
}

/// In `…{route}{id}/{token}…`, replaces the token segment.
fn redact_after_id(text: &str, route: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(route) {
        let (before, after) = rest.split_at(at + route.len());
        out.push_str(before);
        let id_end = after.find('/').unwrap_or(after.len());
        let (id, tail) = after.split_at(id_end);
        out.push_str(id);
        match tail.strip_prefix('/') {
            Some(tail) if id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty() => {
                let token_end = tail
                    .find(|c: char| c == '/' || c == '?' || c.is_whitespace() || c == '"')
                    .unwrap_or(tail.len());
                out.push_str("/<token>");
                rest = &tail[token_end..];
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Discord's JSON error code and HTTP status of a refused request, if that is what failed.
pub fn discord_code(e: &serenity::Error) -> Option<(u16, isize)> {
    match e {
        serenity::Error::Http(HttpError::UnsuccessfulRequest(response)) => {
            Some((response.status_code.as_u16(), response.error.code))
        }
        _ => None,
    }
}

/// Spaces message edits across all jobs. serenity keys every `@original` edit to one local
/// bucket per application (and runs no ratelimiter at all behind a proxy), so without this
/// many concurrent jobs would each edit as often as their own pacing allows.
#[derive(Debug)]
pub struct EditGate {
    spacing: Duration,
    next: Mutex<Instant>,
}

impl EditGate {
    pub fn new(spacing: Duration) -> EditGate {
        EditGate {
            spacing,
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this caller's slot; slots are `spacing` apart, handed out in arrival order.
    pub async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.spacing;
            slot
        };
        sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_removed_from_urls_and_text() {
        let bot = ["MTA", "canary", "XYZ"].join(".");
        let r = Redactor::new(&SecretString::from(format!("Bot {bot}")));
        let text = format!(
            "PATCH http://x/api/v10/webhooks/111/aW50ZXJhY3Rpb24/messages/@original failed; \
             POST http://x/api/v10/interactions/9/tok-en/callback; header {bot}; /webhooks/abc/keep"
        );
        let clean = r.clean(&text);
        assert_eq!(
            clean,
            "PATCH http://x/api/v10/webhooks/111/<token>/messages/@original failed; \
             POST http://x/api/v10/interactions/9/<token>/callback; header <redacted>; /webhooks/abc/keep"
        );
        assert_eq!(format!("{r:?}"), "Redactor(..)");
    }

    #[tokio::test(start_paused = true)]
    async fn edits_from_many_jobs_are_spaced() {
        let gate = Arc::new(EditGate::new(Duration::from_millis(250)));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                gate.wait().await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.expect("join") - start);
        }
        times.sort();
        assert_eq!(
            times,
            [0, 250, 500, 750].map(Duration::from_millis).to_vec()
        );
        // After a quiet spell the next edit goes at once.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = Instant::now();
        gate.wait().await;
        assert_eq!(Instant::now(), before);
    }
}
