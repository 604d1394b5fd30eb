//! After a restart, picking up the stickers the last process was following: jobs still queued
//! or rendering (the engine requeues them) and jobs that finished but never reached the chat
//! (the process died between the render and the upload). Each is followed again into the chat
//! it came from, which its origin records. Delivery is at least once: a crash after the upload
//! but before the delivery record sends the sticker again.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use loopsmith_engine::now_ms;
use loopsmith_engine::protocol::{Job, JobState, Platform};
use teloxide::types::{ChatId, MessageId};
use tracing::{debug, info, warn};

use super::App;
use super::chat::ChatSurface;
use crate::command::follow;

/// Older work is not picked up: a sticker a day late is noise, not a delivery.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Where a job's sticker goes: the chat, and the message to reply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Destination {
    pub chat: ChatId,
    pub reply_to: Option<MessageId>,
}

/// The origin a message makes: `m<chat>:<message>`.
pub(crate) fn message_origin(chat: ChatId, message: MessageId) -> String {
    format!("m{}:{}", chat.0, message.0)
}

/// The origin a button press makes: `cb<chat>:<query id>`.
pub(crate) fn button_origin(chat: ChatId, query: &str) -> String {
    format!("cb{}:{query}", chat.0)
}

/// Reads an origin back; `None` for origins of other surfaces or of older formats.
pub(crate) fn destination(origin: &str) -> Option<Destination> {
    if let Some(rest) = origin.strip_prefix('m') {
        let (chat, message) = rest.split_once(':')?;
        return Some(Destination {
            chat: ChatId(chat.parse().ok()?),
            reply_to: Some(MessageId(message.parse().ok()?)),
        });
    }
    let rest = origin.strip_prefix("cb")?;
    let (chat, _) = rest.split_once(':')?;
    Some(Destination {
        chat: ChatId(chat.parse().ok()?),
        reply_to: None,
    })
}

/// Follows every unfinished or undelivered Telegram job of the last day again. Only jobs
/// made before `started_ms` (this process's start): newer ones are followed by the handler
/// that made them, and following them here too would deliver them twice.
pub(crate) async fn resume(app: &Arc<App>, started_ms: u64) {
    let jobs = match app.engine.jobs().await {
        Ok(jobs) => jobs,
        Err(e) => {
            warn!(error = %app.redactor.chain(&e), "could not list jobs to resume");
            return;
        }
    };
    let since = now_ms().saturating_sub(MAX_AGE.as_millis() as u64);
    let mut picked = Vec::new();
    for job in jobs {
        if job.user.platform != Platform::Telegram
            || job.timings.created_ms < since
            || job.timings.created_ms >= started_ms
        {
            continue;
        }
        let Some(to) = job.origin.as_deref().and_then(destination) else {
            continue;
        };
        let wanted = match job.state {
            JobState::Queued | JobState::Running { .. } | JobState::Encoding { .. } => true,
            JobState::Done { .. } => !delivered(app, &job).await,
            _ => false,
        };
        if wanted {
            picked.push((job, to));
        }
    }
    if picked.is_empty() {
        return;
    }
    info!(
        jobs = picked.len(),
        "following stickers the last run did not deliver"
    );
    for (job, to) in picked {
        let events = match app.engine.watch(job.id).await {
            Ok(events) => events,
            Err(e) => {
                warn!(job = %job.id, error = %e, "could not watch a job to resume");
                continue;
            }
        };
        let surface = ChatSurface::new(app.clone(), to.chat, to.reply_to, job.user.clone());
        let pacing = app.pacing;
        app.spawn(async move {
            match follow(&surface, job.id, None, events, pacing).await {
                Ok(outcome) => debug!(job = %job.id, ?outcome, "resumed to the end"),
                Err(e) => warn!(job = %job.id, error = %e, "could not post the status message"),
            }
        });
    }
}

/// Whether the job's sticker is recorded as delivered.
async fn delivered(app: &App, job: &Job) -> bool {
    match app.engine.deliveries(&job.user, usize::MAX).await {
        Ok(list) => {
            let ids: HashSet<_> = list.iter().map(|d| d.job).collect();
            ids.contains(&job.id)
        }
        // Unknown: delivering twice beats not at all.
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_read_back_to_their_chat() {
        let m = message_origin(ChatId(-100123), MessageId(42));
        assert_eq!(
            destination(&m),
            Some(Destination {
                chat: ChatId(-100123),
                reply_to: Some(MessageId(42))
            })
        );
        let b = button_origin(ChatId(7), "4455:abc");
        assert_eq!(
            destination(&b),
            Some(Destination {
                chat: ChatId(7),
                reply_to: None
            })
        );
        for other in ["", "m", "m1", "mx:1", "cb123", "cbx:1", "discord:99", "i5"] {
            assert_eq!(destination(other), None, "{other}");
        }
    }
}
