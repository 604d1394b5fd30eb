//! Each user's video sticker pack, `u<id>_by_<bot>`: made on the first "Add to my pack", added
//! to afterwards. Telegram keeps the pack; nothing about it is stored here, so a pack deleted
//! in @Stickers is simply made again.

use loopsmith_engine::protocol::{Job, JobState, OutputKind};
use teloxide::prelude::*;
use teloxide::types::{FileId, InputFile, InputSticker, StickerFormat, User, UserId};
use teloxide::{ApiError, RequestError};
use tracing::{info, warn};

use super::App;
use super::handlers::user_key;
use super::net::retrying;
use crate::command::actions::sticker_emoji;
use crate::command::texts::{self, PackProblem};

/// Most stickers a regular set holds (Bot API `addStickerToSet`).
pub const SET_LIMIT: u32 = 120;

/// The pack's name: unique per user and bot, within the Bot API's rules.
pub fn set_name(user: UserId, bot_username: &str) -> String {
    format!("u{}_by_{}", user.0, bot_username)
}

pub fn set_link(name: &str) -> String {
    format!("https://t.me/addstickers/{name}")
}

/// The pack's title from the user's name, within the 64-character limit.
pub fn set_title(first_name: &str) -> String {
    let name: String = first_name
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        "My loopsmith stickers".to_string()
    } else {
        format!("{name}'s loopsmith stickers")
    }
}

/// What Telegram's refusal means for the user.
pub fn problem(e: &RequestError) -> PackProblem {
    match e {
        RequestError::Api(ApiError::StickerSetNameOccupied) => PackProblem::NameTaken,
        RequestError::Api(ApiError::ImageProcessFailed | ApiError::RequestEntityTooLarge) => {
            PackProblem::StickerRejected
        }
        RequestError::Api(ApiError::StickerSetOwnerIsBot | ApiError::BotBlocked) => {
            PackProblem::NeedsPrivateChat
        }
        RequestError::Api(ApiError::Unknown(text)) => {
            let upper = text.to_ascii_uppercase();
            if upper.contains("STICKERS_TOO_MUCH") {
                PackProblem::Full(SET_LIMIT)
            } else if upper.contains("PEER_ID_INVALID") || upper.contains("USER_IS_BOT") {
                PackProblem::NeedsPrivateChat
            } else if upper.contains("STICKER_VIDEO")
                || upper.contains("STICKER_FILE_INVALID")
                || upper.contains("STICKER_GIF_DIMENSIONS")
                || upper.contains("INVALID STICKER FORMAT")
                || upper.contains("STICKER_EMOJI_INVALID")
            {
                PackProblem::StickerRejected
            } else if upper.contains("WRONG FILE IDENTIFIER") {
                PackProblem::Gone
            } else {
                PackProblem::Other
            }
        }
        _ => PackProblem::Other,
    }
}

/// "Add to my pack": returns the text to send.
pub(crate) async fn add(app: &App, from: &User, job: &Job) -> String {
    let user = user_key(from.id);
    let cached = match app.engine.deliveries(&user, 500).await {
        Ok(list) => list
            .into_iter()
            .find(|d| d.job == job.id)
            .and_then(|d| d.files.get(OutputKind::WebmSticker.as_str()).cloned()),
        Err(e) => {
            warn!(error = %app.redactor.chain(&e), "reading deliveries failed");
            None
        }
    };
    // A file id Telegram already holds needs no upload; else the stored file is sent.
    let file = match cached {
        Some(id) => InputFile::file_id(FileId(id)),
        None => match stored_sticker(job) {
            Some(path) => InputFile::file(path).file_name("sticker.webm"),
            None => return texts::pack_problem(PackProblem::Gone),
        },
    };
    let sticker = InputSticker {
        sticker: file,
        format: StickerFormat::Video,
        emoji_list: vec![sticker_emoji(&job.params.user_prompt)],
        mask_position: None,
        keywords: Vec::new(),
    };
    let name = set_name(from.id, &app.username);
    let added = retrying("addStickerToSet", || {
        app.bot
            .add_sticker_to_set(from.id, name.clone(), sticker.clone())
            .send()
    })
    .await;
    match added {
        Ok(_) => {
            info!(set = %name, job = %job.id, "sticker added to pack");
            texts::pack_added(&set_link(&name))
        }
        // No set yet (or it was deleted): make it with this sticker.
        Err(RequestError::Api(ApiError::InvalidStickersSet)) => {
            let title = set_title(&from.first_name);
            let created = retrying("createNewStickerSet", || {
                app.bot
                    .create_new_sticker_set(from.id, name.clone(), title.clone(), [sticker.clone()])
                    .send()
            })
            .await;
            match created {
                Ok(_) => {
                    info!(set = %name, job = %job.id, "pack created");
                    texts::pack_created(&set_link(&name))
                }
                Err(e) => refused(app, &name, &e),
            }
        }
        Err(e) => refused(app, &name, &e),
    }
}

fn refused(app: &App, name: &str, e: &RequestError) -> String {
    let problem = problem(e);
    warn!(set = %name, ?problem, error = %app.redactor.chain(e), "sticker pack call refused");
    texts::pack_problem(problem)
}

fn stored_sticker(job: &Job) -> Option<std::path::PathBuf> {
    match &job.state {
        JobState::Done { artifacts } => artifacts
            .iter()
            .find(|a| a.kind == OutputKind::WebmSticker && a.path.exists())
            .map(|a| a.path.clone()),
        _ => None,
    }
}

/// /pack: the link when the pack exists.
pub(crate) async fn link_text(app: &App, user: UserId) -> String {
    let name = set_name(user, &app.username);
    match retrying("getStickerSet", || {
        app.bot.get_sticker_set(name.clone()).send()
    })
    .await
    {
        Ok(set) => texts::pack_link(Some(&set_link(&set.name))),
        Err(RequestError::Api(ApiError::InvalidStickersSet)) => texts::pack_link(None),
        Err(e) => {
            warn!(error = %app.redactor.chain(&e), "getStickerSet failed");
            texts::pack_problem(PackProblem::Other)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(text: &str) -> RequestError {
        RequestError::Api(ApiError::Unknown(text.to_string()))
    }

    #[test]
    fn telegram_refusals_map_to_what_the_user_can_do() {
        let cases = [
            (
                RequestError::Api(ApiError::StickerSetNameOccupied),
                PackProblem::NameTaken,
            ),
            (
                unknown("Bad Request: STICKERS_TOO_MUCH"),
                PackProblem::Full(120),
            ),
            (
                unknown("Bad Request: STICKERPACK_STICKERS_TOO_MUCH"),
                PackProblem::Full(120),
            ),
            (
                unknown("Bad Request: STICKER_VIDEO_LONG"),
                PackProblem::StickerRejected,
            ),
            (
                unknown("Bad Request: STICKER_VIDEO_BIG"),
                PackProblem::StickerRejected,
            ),
            (
                unknown("Bad Request: STICKER_VIDEO_NOWEBM"),
                PackProblem::StickerRejected,
            ),
            (
                unknown("Bad Request: PEER_ID_INVALID"),
                PackProblem::NeedsPrivateChat,
            ),
            (
                unknown("Bad Request: wrong file identifier/HTTP URL specified"),
                PackProblem::Gone,
            ),
            (unknown("Bad Request: something new"), PackProblem::Other),
        ];
        for (error, expected) in cases {
            assert_eq!(problem(&error), expected, "{error}");
        }
    }

    #[test]
    fn names_and_titles_fit_the_bot_api() {
        assert_eq!(set_name(UserId(42), "LoopBot"), "u42_by_LoopBot");
        assert_eq!(set_title("Ann"), "Ann's loopsmith stickers");
        assert_eq!(set_title("\u{7}"), "My loopsmith stickers");
        assert!(set_title(&"x".repeat(500)).chars().count() <= 64);
    }
}
