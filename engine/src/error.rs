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
