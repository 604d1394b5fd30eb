//! One chat as a [`Surface`]: the status message, the chat action, and delivering a job's
//! files (the video sticker with its buttons, and the whole clip as an MP4 animation when it
//! is longer than a sticker may be).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use loopsmith_engine::protocol::{Artifact, Job, JobId, JobState, OutputKind, UserKey};
use loopsmith_engine::{Delivery, now_ms};
use teloxide::ApiError;
use teloxide::RequestError;
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, FileId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId,
    ReplyParameters,
};
use tracing::warn;

use super::App;
use super::handlers::{say, sticker_keyboard};
use super::net::retrying;
use crate::command::texts::{self, shorten};
use crate::command::{Action, Surface, SurfaceError, actions};

/// Longest a sticker may play; a longer clip is also sent whole as an animation.
const STICKER_MAX_SECS: f32 = 3.0;

/// Rows of (label, action) as an inline keyboard.
pub(crate) fn keyboard(rows: &[Vec<(String, Action)>]) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(rows.iter().map(|row| {
        row.iter()
            .map(|(label, action)| InlineKeyboardButton::callback(label.clone(), action.encode()))
            .collect::<Vec<_>>()
    }))
}

pub(crate) struct ChatSurface {
    app: Arc<App>,
    chat: ChatId,
    reply_to: Option<MessageId>,
    user: UserKey,
}

impl ChatSurface {
    pub fn new(app: Arc<App>, chat: ChatId, reply_to: Option<MessageId>, user: UserKey) -> Self {
        ChatSurface {
            app,
            chat,
            reply_to,
            user,
        }
    }

    fn fail(&self, what: &str, e: &RequestError) -> SurfaceError {
        SurfaceError(format!("{what}: {}", self.app.redactor.chain(e)))
    }

    async fn delivery(&self, job: JobId) -> Option<Delivery> {
        match self.app.engine.deliveries(&self.user, 500).await {
            Ok(list) => list.into_iter().find(|d| d.job == job),
            Err(e) => {
                warn!(error = %self.app.redactor.chain(&e), "reading deliveries failed");
                None
            }
        }
    }

    /// The sticker again, by file id when it was sent before, else from the stored file.
    pub async fn resend(&self, job: &Job) {
        let file = match self.delivery(job.id).await {
            Some(d) if d.files.contains_key(OutputKind::WebmSticker.as_str()) => {
                InputFile::file_id(FileId(d.files[OutputKind::WebmSticker.as_str()].clone()))
            }
            _ => match artifact(job, OutputKind::WebmSticker) {
                Some(path) => InputFile::file(path).file_name("sticker.webm"),
                None => {
                    return say(&self.app, self.chat, &texts::gone()).await;
                }
            },
        };
        let sent = self
            .app
            .bot
            .send_sticker(self.chat, file)
            .reply_markup(sticker_keyboard(job.id))
            .await;
        if let Err(e) = sent {
            warn!(error = %self.fail("sendSticker", &e), "resend failed");
            say(&self.app, self.chat, &texts::undelivered()).await;
        }
    }

    /// The whole clip as an MP4 animation.
    pub async fn send_full_clip(&self, job: &Job) {
        let cached = self
            .delivery(job.id)
            .await
            .and_then(|d| d.files.get(OutputKind::Mp4.as_str()).cloned());
        let file = match (cached, artifact(job, OutputKind::Mp4)) {
            (Some(id), _) => InputFile::file_id(FileId(id)),
            (None, Some(path)) => InputFile::file(path).file_name("clip.mp4"),
            (None, None) => {
                return say(&self.app, self.chat, &texts::gone()).await;
            }
        };
        match self
            .app
            .bot
            .send_animation(self.chat, file)
            .caption(shorten(&job.params.user_prompt, 200))
            .await
        {
            Ok(message) => {
                if let Some(animation) = message.animation() {
                    self.remember(job, OutputKind::Mp4, animation.file.id.0.clone())
                        .await;
                }
            }
            Err(e) => {
                warn!(error = %self.fail("sendAnimation", &e), "full clip failed");
                say(&self.app, self.chat, &texts::undelivered()).await;
            }
        }
    }

    /// Adds one file id to the job's delivery record.
    async fn remember(&self, job: &Job, kind: OutputKind, file_id: String) {
        let mut record = self.delivery(job.id).await.unwrap_or_else(|| Delivery {
            job: job.id,
            user: self.user.clone(),
            prompt: job.params.user_prompt.clone(),
            files: BTreeMap::new(),
            created_ms: now_ms(),
        });
        record.files.insert(kind.as_str().to_string(), file_id);
        if let Err(e) = self.app.engine.put_delivery(record).await {
            warn!(error = %self.app.redactor.chain(&e), "recording a delivery failed");
        }
    }
}

fn artifact(job: &Job, kind: OutputKind) -> Option<&Path> {
    match &job.state {
        JobState::Done { artifacts } => artifacts
            .iter()
            .find(|a| a.kind == kind && a.path.exists())
            .map(|a| a.path.as_path()),
        _ => None,
    }
}

impl Surface for ChatSurface {
    type Status = MessageId;

    async fn post(&self, text: &str) -> Result<MessageId, SurfaceError> {
        let mut request = self.app.bot.send_message(self.chat, text);
        if let Some(reply_to) = self.reply_to {
            request = request
                .reply_parameters(ReplyParameters::new(reply_to).allow_sending_without_reply());
        }
        request
            .await
            .map(|m| m.id)
            .map_err(|e| self.fail("sendMessage", &e))
    }

    async fn edit(&self, status: &MessageId, text: &str) -> Result<(), SurfaceError> {
        let result = retrying("editMessageText", || {
            self.app
                .bot
                .edit_message_text(self.chat, *status, text)
                .send()
        })
        .await;
        match result {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
            Err(e) => Err(self.fail("editMessageText", &e)),
        }
    }

    async fn working(&self) -> Result<(), SurfaceError> {
        // No retry: a late chat action is worse than none.
        self.app
            .bot
            .send_chat_action(self.chat, ChatAction::RecordVideo)
            .await
            .map(|_| ())
            .map_err(|e| self.fail("sendChatAction", &e))
    }

    async fn deliver(
        &self,
        _status: &MessageId,
        job: JobId,
        artifacts: &[Artifact],
    ) -> Result<(), SurfaceError> {
        let record = match self.app.engine.job(job).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(SurfaceError(format!("job {job} is not stored"))),
            Err(e) => return Err(SurfaceError(self.app.redactor.chain(&e))),
        };
        let find = |kind| artifacts.iter().find(|a| a.kind == kind);
        let sticker = find(OutputKind::WebmSticker)
            .ok_or_else(|| SurfaceError(format!("job {job} finished without a sticker file")))?;
        let emoji = actions::sticker_emoji(&record.params.user_prompt);
        let mut request = self
            .app
            .bot
            .send_sticker(
                self.chat,
                InputFile::file(sticker.path.clone()).file_name("sticker.webm"),
            )
            .emoji(emoji)
            .reply_markup(sticker_keyboard(job));
        // The sticker answers the prompt it was made for, so in a busy group each one sits
        // under its request.
        if let Some(reply_to) = self.reply_to {
            request = request
                .reply_parameters(ReplyParameters::new(reply_to).allow_sending_without_reply());
        }
        let sent = request.await.map_err(|e| self.fail("sendSticker", &e))?;
        let mut files = BTreeMap::new();
        if let Some(s) = sent.sticker() {
            files.insert(
                OutputKind::WebmSticker.as_str().to_string(),
                s.file.id.0.clone(),
            );
        }
        if record.params.duration_secs > STICKER_MAX_SECS
            && let Some(clip) = find(OutputKind::Mp4)
        {
            let sent = self
                .app
                .bot
                .send_animation(
                    self.chat,
                    InputFile::file(clip.path.clone()).file_name("clip.mp4"),
                )
                .caption(texts::full_clip_caption(record.params.duration_secs))
                .await;
            match sent {
                Ok(message) => {
                    if let Some(animation) = message.animation() {
                        files.insert(
                            OutputKind::Mp4.as_str().to_string(),
                            animation.file.id.0.clone(),
                        );
                    }
                }
                // The sticker arrived; the clip is a bonus the Full clip button can retry.
                Err(e) => warn!(error = %self.fail("sendAnimation", &e), "full clip failed"),
            }
        }
        let delivery = Delivery {
            job,
            user: self.user.clone(),
            prompt: record.params.user_prompt.clone(),
            files,
            created_ms: now_ms(),
        };
        if let Err(e) = self.app.engine.put_delivery(delivery).await {
            warn!(error = %self.app.redactor.chain(&e), "recording a delivery failed");
        }
        Ok(())
    }
}
