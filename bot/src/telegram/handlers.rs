//! Updates in, answers out: messages (commands and prompts), button presses, inline queries.
//! Every bad input gets a short answer in the chat; faults go to the log without the token.

use std::sync::Arc;

use loopsmith_engine::protocol::{JobId, OutputKind, Platform, UserKey};
use loopsmith_engine::{Error as EngineError, GenerationRequest, InputImage, Submitted};
use teloxide::prelude::*;
use teloxide::types::{
    CallbackQuery, InlineKeyboardMarkup, InlineQuery, InlineQueryResult,
    InlineQueryResultCachedSticker, InlineQueryResultsButton, InlineQueryResultsButtonKind,
    MessageId, User, UserId,
};
use tracing::{debug, error, info, warn};

use super::App;
use super::chat::{ChatSurface, keyboard};
use super::net::retrying;
use super::{packs, picture, resume};
use crate::command::texts::{self, TextSetting};
use crate::command::{Action, Command, Read, actions, follow, input};

/// How long Telegram clients may cache a user's inline results: short, because a new
/// sticker should show up soon.
const INLINE_CACHE_SECS: u32 = 10;
/// The Bot API's cap on results per inline answer.
const INLINE_MAX: usize = 50;

/// A handler failure that is not the user's doing; already logged where it happened.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(String);

type Handled = Result<(), HandlerError>;

pub(crate) fn user_key(id: UserId) -> UserKey {
    UserKey::new(Platform::Telegram, id.0.to_string())
}

pub(crate) async fn message(app: Arc<App>, msg: Message) -> Handled {
    let Some(from) = msg.from.clone() else {
        return Ok(()); // channel posts have no sender
    };
    if from.is_bot {
        return Ok(());
    }
    let private = msg.chat.is_private();
    let text = msg.text().or(msg.caption()).unwrap_or_default().to_string();
    let read = input::read(&text, &app.username);
    if matches!(read, Some(Read::ForAnotherBot)) {
        return Ok(());
    }
    if !app.allowed(Some(msg.chat.id), from.id) {
        // Answer only when spoken to, so a group the bot sits in is not flooded.
        if private || read.is_some() {
            info!(
                chat = msg.chat.id.0,
                user = from.id.0,
                "refused: not on the allow-list"
            );
            say(&app, msg.chat.id, &texts::not_allowed_here()).await;
        }
        return Ok(());
    }
    let user = user_key(from.id);
    // The message is the platform event: a replayed update never makes a second job.
    let origin = resume::message_origin(msg.chat.id, msg.id);
    if private && let Some(file) = picture::picture_of(&msg) {
        picture::animate(&app, &msg, file, user, origin).await;
        return Ok(());
    }
    match read {
        Some(Read::Command(command)) => {
            run_command(&app, &msg, &from, user, origin, command).await;
        }
        Some(Read::ForAnotherBot) => {}
        None if private && msg.text().is_some() => {
            prompt(&app, msg.chat.id, Some(msg.id), user, origin, &text, None).await;
        }
        None if private => say(&app, msg.chat.id, &texts::not_text()).await,
        // In groups only commands are for us.
        None => {}
    }
    Ok(())
}

async fn run_command(
    app: &Arc<App>,
    msg: &Message,
    from: &User,
    user: UserKey,
    origin: String,
    command: Command,
) {
    let chat = msg.chat.id;
    let engine = &app.engine;
    let admin = engine.is_admin(&user);
    let styles = || engine.styles().names();
    let reply = match command {
        Command::Start => Ok(texts::start(&from.first_name, &styles())),
        Command::Help => Ok(texts::help(&styles())),
        Command::Sticker(args) if args.trim().is_empty() => Ok(texts::sticker_usage()),
        Command::Sticker(args) => {
            prompt(app, chat, Some(msg.id), user, origin, &args, None).await;
            return;
        }
        Command::Style(arg) => actions::style(engine, &user, &arg).await,
        Command::Styles => actions::styles(engine, &user).await,
        Command::Suffix(arg) => {
            actions::text_setting(engine, &user, TextSetting::Suffix, &arg).await
        }
        Command::Character(arg) => {
            actions::text_setting(engine, &user, TextSetting::Character, &arg).await
        }
        Command::Seed(arg) => actions::seed(engine, &user, &arg).await,
        Command::Settings => match actions::settings(engine, &user).await {
            Ok(text) => {
                send_with_buttons(app, chat, &text, keyboard(&actions::settings_buttons())).await;
                return;
            }
            Err(e) => Err(e),
        },
        Command::History => match actions::history(engine, &user).await {
            Ok((text, jobs)) if !jobs.is_empty() => {
                let row: Vec<(String, Action)> = jobs
                    .iter()
                    .enumerate()
                    .map(|(i, job)| ((i + 1).to_string(), Action::Resend(*job)))
                    .collect();
                let rows: Vec<Vec<(String, Action)>> = row.chunks(4).map(<[_]>::to_vec).collect();
                send_with_buttons(app, chat, &text, keyboard(&rows)).await;
                return;
            }
            Ok((text, _)) => Ok(text),
            Err(e) => Err(e),
        },
        Command::Cancel => actions::cancel(engine, &user).await,
        Command::Pack => Ok(packs::link_text(app, from.id).await),
        Command::Stats | Command::Ban(_) | Command::Unban(_) | Command::Budget if !admin => {
            Ok(texts::admins_only())
        }
        Command::Stats => actions::stats(engine).await,
        Command::Ban(arg) => actions::ban(engine, Platform::Telegram, "ban", &arg, true).await,
        Command::Unban(arg) => actions::ban(engine, Platform::Telegram, "unban", &arg, false).await,
        Command::Budget => match engine.paid_spend_today(&user).await {
            Ok(Some((all, mine, cap))) => Ok(texts::budget(all, mine, cap)),
            Ok(None) => Ok(texts::budget_unavailable()),
            Err(e) => Err(e),
        },
        Command::Unknown(name) => Ok(texts::unknown_command(&name)),
    };
    match reply {
        Ok(text) => say(app, chat, &text).await,
        Err(e) => refuse(app, chat, &user, &e).await,
    }
}

/// A prompt with options: parse, submit, acknowledge, follow.
/// A prompt with its options; with `image`, the picture it animates.
pub(crate) async fn prompt(
    app: &Arc<App>,
    chat: ChatId,
    reply_to: Option<MessageId>,
    user: UserKey,
    origin: String,
    text: &str,
    image: Option<InputImage>,
) {
    let parsed = match crate::command::parse(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            info!(user = %user, error = %e, "prompt refused");
            say(app, chat, &e.to_string()).await;
            return;
        }
    };
    let mut request = GenerationRequest::new(user.clone(), parsed.prompt);
    request.overrides = parsed.overrides;
    // The sticker, and the whole clip for "Full clip" and for clips longer than a sticker.
    request.overrides.outputs = Some(vec![OutputKind::WebmSticker, OutputKind::Mp4]);
    request.origin = Some(origin);
    request.image = image;
    match app.engine.submit(request).await {
        Ok(submitted) => start_following(app, chat, reply_to, user, submitted),
        Err(e) => refuse(app, chat, &user, &e).await,
    }
}

fn start_following(
    app: &Arc<App>,
    chat: ChatId,
    reply_to: Option<MessageId>,
    user: UserKey,
    submitted: Submitted,
) {
    if submitted.duplicate {
        // A replayed update: the first delivery of this event is already following the job.
        debug!(job = %submitted.job, "replayed request; already followed");
        return;
    }
    let surface = ChatSurface::new(app.clone(), chat, reply_to, user);
    let pacing = app.pacing;
    app.spawn(async move {
        let job = submitted.job;
        match follow(&surface, job, submitted.position, submitted.events, pacing).await {
            Ok(outcome) => debug!(job = %job, ?outcome, "followed to the end"),
            Err(e) => warn!(job = %job, error = %e, "could not post the status message"),
        }
    });
}

/// An engine refusal is the user's to read; a fault of ours is also logged with its chain.
async fn refuse(app: &App, chat: ChatId, user: &UserKey, e: &EngineError) {
    if e.is_refusal() {
        info!(user = %user, error = %e, "request refused");
    } else {
        error!(user = %user, error = %app.redactor.chain(e), "request failed");
    }
    say(app, chat, &e.to_string()).await;
}

pub(crate) async fn say(app: &App, chat: ChatId, text: &str) {
    if let Err(e) = app.bot.send_message(chat, text).await {
        warn!(chat = chat.0, error = %app.redactor.chain(&e), "sendMessage failed");
    }
}

async fn send_with_buttons(app: &App, chat: ChatId, text: &str, markup: InlineKeyboardMarkup) {
    if let Err(e) = app.bot.send_message(chat, text).reply_markup(markup).await {
        warn!(chat = chat.0, error = %app.redactor.chain(&e), "sendMessage failed");
    }
}

pub(crate) async fn callback(app: Arc<App>, q: CallbackQuery) -> Handled {
    let chat = q
        .message
        .as_ref()
        .map(|m| m.chat().id)
        // Buttons on inline messages have no chat; answer in the private chat.
        .unwrap_or(ChatId(q.from.id.0 as i64));
    let answer = |text: String| {
        let app = app.clone();
        let id = q.id.clone();
        async move {
            if let Err(e) = retrying("answerCallbackQuery", || {
                app.bot
                    .answer_callback_query(id.clone())
                    .text(text.clone())
                    .send()
            })
            .await
            {
                debug!(error = %app.redactor.chain(&e), "answerCallbackQuery failed");
            }
        }
    };
    if !app.allowed(Some(chat), q.from.id) {
        answer(texts::not_allowed_here()).await;
        return Ok(());
    }
    let Some(action) = q.data.as_deref().and_then(Action::decode) else {
        info!(data = ?q.data, "unreadable button payload");
        answer(texts::button_expired()).await;
        return Ok(());
    };
    let user = user_key(q.from.id);
    let engine = &app.engine;
    match action {
        Action::Set(setting, value) => {
            let text = match actions::apply_setting(engine, &user, setting, &value).await {
                Ok(text) => text,
                Err(e) => e.to_string(),
            };
            answer(text).await;
            // Show the new values in the settings message itself.
            if let (Some(message), Ok(summary)) =
                (q.message.as_ref(), actions::settings(engine, &user).await)
            {
                let markup = keyboard(&actions::settings_buttons());
                let edit = retrying("editMessageText", || {
                    app.bot
                        .edit_message_text(chat, message.id(), summary.clone())
                        .reply_markup(markup.clone())
                        .send()
                })
                .await;
                if let Err(e) = edit {
                    debug!(error = %app.redactor.chain(&e), "settings edit failed");
                }
            }
            return Ok(());
        }
        Action::Reroll(job)
        | Action::Vary(job)
        | Action::AddToPack(job)
        | Action::FullClip(job)
        | Action::Resend(job) => {
            let record = match engine.job(job).await {
                Ok(Some(record)) => record,
                Ok(None) => {
                    answer(texts::button_expired()).await;
                    return Ok(());
                }
                Err(e) => {
                    error!(error = %app.redactor.chain(&e), "reading a job failed");
                    answer(e.to_string()).await;
                    return Ok(());
                }
            };
            if record.user != user {
                answer(texts::not_yours()).await;
                return Ok(());
            }
            match action {
                Action::Reroll(_) | Action::Vary(_) => {
                    let params = if matches!(action, Action::Reroll(_)) {
                        actions::reroll(&record, rand_seed())
                    } else {
                        actions::variation(&record)
                    };
                    // The press is the platform event: pressing again while Telegram replays
                    // the update makes no second job.
                    let origin = Some(resume::button_origin(chat, &q.id.0));
                    match engine.resubmit(user.clone(), origin, params).await {
                        Ok(submitted) => {
                            answer("On it!".to_string()).await;
                            start_following(&app, chat, None, user, submitted);
                        }
                        Err(e) => {
                            answer(e.to_string()).await;
                            if !e.is_refusal() {
                                error!(error = %app.redactor.chain(&e), "resubmit failed");
                            }
                        }
                    }
                }
                Action::AddToPack(_) => {
                    answer("Adding…".to_string()).await;
                    let text = packs::add(&app, &q.from, &record).await;
                    say(&app, chat, &text).await;
                }
                Action::FullClip(_) => {
                    answer("Sending the full clip…".to_string()).await;
                    ChatSurface::new(app.clone(), chat, None, user)
                        .send_full_clip(&record)
                        .await;
                }
                _ => {
                    answer("Here it is again.".to_string()).await;
                    ChatSurface::new(app.clone(), chat, None, user)
                        .resend(&record)
                        .await;
                }
            }
        }
    }
    Ok(())
}

fn rand_seed() -> u32 {
    // Seeds only need to differ, not to be unpredictable: the clock's nanoseconds mixed with
    // a counter are enough and keep the bot free of an RNG dependency.
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos
        .wrapping_mul(2_654_435_761)
        .wrapping_add(COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed))
}

/// Inline mode: the user's own stickers that match, by file id. Nothing is rendered here —
/// an inline query expires long before a sticker could be made.
pub(crate) async fn inline(app: Arc<App>, q: InlineQuery) -> Handled {
    let user = user_key(q.from.id);
    let allowed = app.allowed(None, q.from.id);
    let deliveries = if allowed {
        match app.engine.deliveries(&user, 500).await {
            Ok(list) => list,
            Err(e) => {
                error!(error = %app.redactor.chain(&e), "reading deliveries failed");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let query = q.query.trim().to_lowercase();
    let matching: Vec<(JobId, String)> = deliveries
        .iter()
        .filter(|d| query.is_empty() || d.prompt.to_lowercase().contains(&query))
        .filter_map(|d| {
            let file = d.files.get(OutputKind::WebmSticker.as_str())?;
            Some((d.job, file.clone()))
        })
        .collect();
    let (page, next_offset) = inline_page(&matching, &q.offset);
    let results: Vec<InlineQueryResult> = page
        .iter()
        .map(|(job, file)| {
            InlineQueryResult::CachedSticker(InlineQueryResultCachedSticker::new(
                format!("s{job}"),
                teloxide::types::FileId(file.clone()),
            ))
        })
        .collect();
    let button = InlineQueryResultsButton {
        text: texts::inline_button(),
        kind: InlineQueryResultsButtonKind::StartParameter("inline".to_string()),
    };
    let answered = retrying("answerInlineQuery", || {
        app.bot
            .answer_inline_query(q.id.clone(), results.clone())
            .cache_time(INLINE_CACHE_SECS)
            .is_personal(true)
            .next_offset(next_offset.clone())
            .button(button.clone())
            .send()
    })
    .await;
    if let Err(e) = answered {
        // Usually the query expired while we looked; nothing to tell anyone.
        debug!(error = %app.redactor.chain(&e), "answerInlineQuery failed");
    }
    Ok(())
}

/// One page of inline results from the offset Telegram sends back (the index of the first
/// result, as text), and the offset of the next page (empty when there is none).
pub(crate) fn inline_page<'a, T>(items: &'a [T], offset: &str) -> (&'a [T], String) {
    let start = offset.parse::<usize>().unwrap_or(0).min(items.len());
    let end = (start + INLINE_MAX).min(items.len());
    let next = if end < items.len() {
        end.to_string()
    } else {
        String::new()
    };
    (&items[start..end], next)
}

/// The button rows under a delivered sticker.
pub(crate) fn sticker_keyboard(job: JobId) -> InlineKeyboardMarkup {
    keyboard(&actions::sticker_buttons(job))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_results_come_in_pages_of_fifty() {
        let items: Vec<u32> = (0..120).collect();
        let (page, next) = inline_page(&items, "");
        assert_eq!((page.len(), page[0], next.as_str()), (50, 0, "50"));
        let (page, next) = inline_page(&items, "100");
        assert_eq!((page.len(), page[0], next.as_str()), (20, 100, ""));
        let (page, next) = inline_page(&items, "9999");
        assert_eq!((page.len(), next.as_str()), (0, ""));
        let (page, _) = inline_page(&items, "junk");
        assert_eq!(page[0], 0, "an offset we never sent starts over");
        let (page, next) = inline_page::<u32>(&[], "");
        assert_eq!((page.len(), next.as_str()), (0, ""));
    }
}
