use std::time::Duration;

use loopsmith_protocol::JobId;

use crate::image_input::ImageError;
use crate::request::ValidationError;
use crate::store::StoreError;

/// Everything the engine can refuse or fail with. `Display` is one sentence for the person
/// who asked; the source chain, where there is one, is for the log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("You're sending requests too quickly; try again in {} seconds.", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("You already have {limit} stickers on the way; wait for one to finish or cancel one.")]
    TooManyQueued { limit: u32 },
    #[error("You've used all {limit} stickers for today; your quota resets at 00:00 UTC.")]
    QuotaExceeded { limit: u32 },
    #[error("You can't make stickers here.")]
    Banned,
    /// The operator's blocklist; the word is not repeated back.
    #[error("That prompt can't be used here; please describe something else.")]
    Blocked,
    #[error("loopsmith is restarting; please try again in a minute.")]
    ShuttingDown,
    #[error("There is no job {0}.")]
    NoSuchJob(JobId),
    #[error("Only the person who asked for job {0}, or an admin, can cancel it.")]
    NotAllowed(JobId),
    #[error("Job {0} has already finished.")]
    AlreadyFinished(JobId),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(
        "I can't animate pictures here: none of this server's renderers takes one. Describe the sticker in words instead."
    )]
    NoImageBackend,
    #[error("Something went wrong on our side; please try again.")]
    Store(#[from] StoreError),
    #[error("Something went wrong on our side; please try again.")]
    Internal(String),
    /// A setting the config loader accepted but the engine cannot use.
    #[error("invalid setting {0}")]
    Settings(String),
    #[error("the engine must be started inside a tokio runtime")]
    NoRuntime,
}

impl Error {
    /// Whether the requester did something the engine refused, as opposed to a fault of ours.
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            Error::Store(_) | Error::Internal(_) | Error::Settings(_) | Error::NoRuntime
        )
    }
}

/// Most causes a failed job records; a deeper chain keeps its outermost levels and says how
/// many were left out. Bounds a record whatever a library nests.
pub const MAX_CHAIN_LEVELS: usize = 16;
/// Longest text kept per cause, in characters (a cause can quote a whole response body).
pub const MAX_CAUSE_CHARS: usize = 500;

/// An error and each of its `source()` levels, outermost first, one entry per level: what a
/// failed job records for the operator (`JobState::Failed::chain`). Levels that only repeat
/// the one above them (a transparent wrapper's Display) are kept once. Secrets stay out the
/// same way they stay out of logs: no error in this workspace carries a key in its text.
pub fn error_levels(e: &dyn std::error::Error) -> Vec<String> {
    let mut levels: Vec<String> = Vec::new();
    let mut left_out = 0usize;
    let mut level = Some(e);
    while let Some(cause) = level {
        let text = cause.to_string();
        let text = shorten(text.trim(), MAX_CAUSE_CHARS);
        let repeated = levels.last() == Some(&text);
        if !text.is_empty() && !repeated {
            if levels.len() < MAX_CHAIN_LEVELS {
                levels.push(text);
            } else {
                left_out += 1;
            }
        }
        level = cause.source();
    }
    if left_out > 0 {
        levels.push(format!("… and {left_out} deeper cause(s)"));
    }
    levels
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// An error and its causes on one line (`outer: cause: root cause`), for logs and terminals.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test error with a message and an optional cause.
    #[derive(Debug)]
    struct Level(String, Option<Box<Level>>);

    impl std::fmt::Display for Level {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Level {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    fn chain(texts: &[&str]) -> Level {
        texts
            .iter()
            .rev()
            .fold(None, |cause, text| {
                Some(Level(text.to_string(), cause.map(Box::new)))
            })
            .expect("at least one level")
    }

    #[test]
    fn every_source_level_is_one_entry_outermost_first() {
        let e = chain(&[
            "local failed",
            "the denoiser failed at step 3",
            "out of memory",
        ]);
        assert_eq!(
            error_levels(&e),
            vec![
                "local failed",
                "the denoiser failed at step 3",
                "out of memory"
            ]
        );
        assert_eq!(
            error_chain(&e),
            "local failed: the denoiser failed at step 3: out of memory"
        );
    }

    #[test]
    fn repeats_and_blank_levels_are_dropped_and_the_chain_is_bounded() {
        let e = chain(&["pika failed", "pika failed", " ", "timed out"]);
        assert_eq!(error_levels(&e), vec!["pika failed", "timed out"]);

        let texts: Vec<String> = (0..40).map(|i| format!("level {i}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let levels = error_levels(&chain(&refs));
        assert_eq!(levels.len(), MAX_CHAIN_LEVELS + 1);
        assert_eq!(levels[0], "level 0");
        assert_eq!(levels[MAX_CHAIN_LEVELS], "… and 24 deeper cause(s)");

        let long = "é".repeat(MAX_CAUSE_CHARS * 2);
        let levels = error_levels(&chain(&[&long]));
        assert_eq!(levels[0].chars().count(), MAX_CAUSE_CHARS + 1);
        assert!(levels[0].ends_with('…'));
    }
}
