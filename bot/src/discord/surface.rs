//! One interaction as a [`Surface`]: its deferred original response is the status message,
//! edited with progress and finally given the clip (an H.264 MP4 that plays inline) and the
//! buttons. The same edits serve slash commands and button presses.
//!
//! An interaction token works for 15 minutes. A job that waited longer in the queue can no
//! longer edit its response, so the clip is then posted in the channel, mentioning whoever
//! asked; the progress edits in between are skipped.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use loopsmith_engine::protocol::{Artifact, Job, JobId, JobState, OutputKind, UserKey};
use serenity::all::{
    Builder, ButtonStyle, ChannelId, CreateActionRow, CreateAllowedMentions, CreateAttachment,
    CreateButton, CreateMessage, EditInteractionResponse, Http, UserId,
};
use tracing::{info, warn};

use super::handlers::fit;
use super::{App, net};
use crate::command::texts;
use crate::command::{Action, Surface, SurfaceError, actions};

/// Waits before retrying an edit Discord refused with 429.
const RATE_LIMIT_WAITS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Whether Discord refused a webhook call because the interaction token is no longer valid:
/// "Invalid Webhook Token" (50027) or "Unknown Webhook" (10015).
fn token_expired(e: &serenity::Error) -> bool {
    matches!(net::discord_code(e), Some((_, 50027 | 10015)))
}

/// Where an interaction came from, for answering it.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub token: String,
    pub channel: ChannelId,
    pub member: UserId,
    /// The interaction's `attachment_size_limit`: the largest file this channel takes.
    pub size_limit: u32,
}

/// The buttons under a delivered clip; the job id rides in each `custom_id`, so they keep
/// working after a restart.
pub(crate) fn buttons(job: JobId) -> Vec<CreateActionRow> {
    rows(&actions::discord_sticker_buttons(job))
}

/// Rows of (label, action) as Discord action rows (at most five buttons each).
pub(crate) fn rows(rows: &[Vec<(String, Action)>]) -> Vec<CreateActionRow> {
    rows.iter()
        .map(|row| {
            CreateActionRow::Buttons(
                row.iter()
                    .map(|(label, action)| {
                        CreateButton::new(action.encode())
                            .label(label.clone())
                            .style(ButtonStyle::Secondary)
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The interaction a job is being followed for.
pub(crate) struct InteractionSurface {
    app: Arc<App>,
    http: Arc<Http>,
    origin: Origin,
    user: UserKey,
    size_limit: u64,
    /// What the delivered response says, so the final status edit keeps the caption.
    delivered: std::sync::Mutex<String>,
    /// Set once Discord says the interaction token is no longer valid.
    expired: AtomicBool,
}

impl InteractionSurface {
    pub fn new(app: Arc<App>, http: Arc<Http>, origin: Origin, user: UserKey) -> Self {
        InteractionSurface {
            app,
            http,
            size_limit: u64::from(origin.size_limit),
            origin,
            user,
            delivered: std::sync::Mutex::new(texts::discord_delivered()),
            expired: AtomicBool::new(false),
        }
    }

    fn expired(&self) -> bool {
        self.expired.load(Ordering::Relaxed)
    }

    /// An edit that may be skipped once the token has expired (progress and status lines).
    async fn update(&self, text: &str) -> Result<(), SurfaceError> {
        if self.expired() {
            return Ok(());
        }
        match self
            .apply(EditInteractionResponse::new().content(fit(text)))
            .await
        {
            Err(_) if self.expired() => Ok(()),
            other => other,
        }
    }

    /// A new message in the interaction's channel, mentioning the person it is for: what is
    /// left when the interaction token has expired.
    async fn post_in_channel(
        &self,
        text: &str,
        file: Option<CreateAttachment>,
        job: Option<JobId>,
    ) -> Result<(), SurfaceError> {
        self.app.gate.wait().await;
        let member = self.origin.member;
        let mut message = CreateMessage::new()
            .content(fit(&format!("<@{member}> {text}")))
            .allowed_mentions(CreateAllowedMentions::new().users([member]));
        if let Some(file) = file {
            message = message.add_file(file);
        }
        if let Some(job) = job {
            message = message.components(buttons(job));
        }
        self.origin
            .channel
            .send_message(self.http.as_ref(), message)
            .await
            .map(|_| info!(user = %self.user, "answered in the channel: the interaction had expired"))
            .map_err(|e| self.fail("posting in the channel", &e))
    }

    fn fail(&self, what: &str, e: &serenity::Error) -> SurfaceError {
        SurfaceError(format!("{what}: {}", self.app.redactor.chain(e)))
    }

    /// One edit, through the gate shared by all jobs. A 429 is retried after a short wait:
    /// behind `discord.proxy_url` serenity runs no ratelimiter of its own, and it does not
    /// hand over Discord's `retry_after`, so the waits are fixed and few.
    async fn apply(&self, edit: EditInteractionResponse) -> Result<(), SurfaceError> {
        let mut waits = RATE_LIMIT_WAITS.iter();
        loop {
            self.app.gate.wait().await;
            match edit
                .clone()
                .execute(self.http.as_ref(), &self.origin.token)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if token_expired(&e) => {
                    self.expired.store(true, Ordering::Relaxed);
                    return Err(self.fail("the interaction token has expired", &e));
                }
                Err(e) => match (net::discord_code(&e), waits.next()) {
                    (Some((429, _)), Some(wait)) => {
                        warn!(user = %self.user, wait_ms = wait.as_millis() as u64, "Discord asked us to slow down; waiting");
                        tokio::time::sleep(*wait).await;
                    }
                    _ => return Err(self.fail("editing the response", &e)),
                },
            }
        }
    }

    /// Replaces the response's text (and nothing else), or posts it in the channel when the
    /// interaction has expired.
    pub async fn say(&self, text: &str) {
        let mut result = Ok(());
        if !self.expired() {
            result = self
                .apply(EditInteractionResponse::new().content(fit(text)))
                .await;
        }
        if self.expired() {
            result = self.post_in_channel(text, None, None).await;
        }
        if let Err(e) = result {
            warn!(user = %self.user, error = %e, "could not answer");
        }
    }

    /// A stored job's clip again, with its buttons (Full clip, and /history's numbers).
    pub async fn send_clip(&self, job: &Job) {
        let artifacts = match &job.state {
            JobState::Done { artifacts } => artifacts.clone(),
            _ => Vec::new(),
        };
        if let Err(e) = self.attach(job, &artifacts).await {
            warn!(job = %job.id, error = %e, "sending the clip failed");
            self.say(&texts::gone()).await;
        }
    }

    /// The MP4 when this channel takes it, else the sticker version, with the buttons.
    async fn attach(&self, job: &Job, artifacts: &[Artifact]) -> Result<(), SurfaceError> {
        let caption = format!(
            "{}\n{}",
            texts::clip_caption(&job.params.user_prompt, job.params.seed),
            texts::discord_delivered()
        );
        let (file, content) = match pick(artifacts, self.size_limit) {
            Some((file, false)) => (file, caption),
            Some((file, true)) => (
                file,
                format!("{caption}\n{}", texts::clip_too_big(self.size_limit)),
            ),
            None => {
                return Err(SurfaceError(format!(
                    "job {} has no file that fits in {} bytes",
                    job.id, self.size_limit
                )));
            }
        };
        let attachment = read(&file.path).await?;
        *self
            .delivered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = content.clone();
        if !self.expired() {
            let edit = EditInteractionResponse::new()
                .content(content.clone())
                .new_attachment(attachment.clone())
                .components(buttons(job.id));
            match self.apply(edit).await {
                Err(_) if self.expired() => {}
                other => return other,
            }
        }
        self.post_in_channel(&content, Some(attachment), Some(job.id))
            .await
    }
}

/// The file to attach: the MP4 when it fits in `limit`, else the sticker version (and `true`,
/// so the message says why); `None` when neither is stored or fits.
fn pick(artifacts: &[Artifact], limit: u64) -> Option<(&Artifact, bool)> {
    let find = |kind| {
        artifacts
            .iter()
            .find(|a| a.kind == kind && a.bytes <= limit && a.path.exists())
    };
    find(OutputKind::Mp4)
        .map(|mp4| (mp4, false))
        .or_else(|| find(OutputKind::Apng).map(|sticker| (sticker, true)))
}

/// A file as an attachment named for what it is (Discord picks the player by extension).
async fn read(path: &Path) -> Result<CreateAttachment, SurfaceError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("clip.mp4")
        .to_string();
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| SurfaceError(format!("reading {}: {e}", path.display())))?;
    Ok(CreateAttachment::bytes(bytes, name))
}

impl Surface for InteractionSurface {
    /// The deferred original response; it needs no handle beyond the interaction token.
    type Status = ();

    async fn post(&self, text: &str) -> Result<(), SurfaceError> {
        self.update(text).await
    }

    async fn edit(&self, _status: &(), text: &str) -> Result<(), SurfaceError> {
        self.update(text).await
    }

    async fn working(&self) -> Result<(), SurfaceError> {
        // The response itself shows activity: "thinking…" until the first edit, then the
        // progress bar. A channel typing indicator would only add requests.
        Ok(())
    }

    fn delivered_text(&self) -> String {
        self.delivered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    async fn deliver(
        &self,
        _status: &(),
        job: JobId,
        artifacts: &[Artifact],
    ) -> Result<(), SurfaceError> {
        let record = match self.app.engine.job(job).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(SurfaceError(format!("job {job} is not stored"))),
            Err(e) => return Err(SurfaceError(self.app.redactor.chain(&e))),
        };
        self.attach(&record, artifacts).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn artifact(dir: &Path, kind: OutputKind, bytes: u64) -> Artifact {
        let path: PathBuf = dir.join(kind.as_str());
        std::fs::write(&path, b"x").expect("write");
        Artifact { kind, path, bytes }
    }

    #[test]
    fn the_mp4_goes_when_it_fits_else_the_sticker_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let both = [
            artifact(dir.path(), OutputKind::Mp4, 5_000),
            artifact(dir.path(), OutputKind::Apng, 400),
        ];
        let kind = |p: Option<(&Artifact, bool)>| p.map(|(a, small)| (a.kind, small));
        assert_eq!(kind(pick(&both, 10_000)), Some((OutputKind::Mp4, false)));
        assert_eq!(kind(pick(&both, 4_999)), Some((OutputKind::Apng, true)));
        assert_eq!(kind(pick(&both, 399)), None);
        std::fs::remove_file(&both[0].path).expect("remove");
        assert_eq!(
            kind(pick(&both, 10_000)),
            Some((OutputKind::Apng, true)),
            "a cleaned-up file is not offered"
        );
        assert_eq!(kind(pick(&[], 10_000)), None);
    }
}
