//! Interactions in, answers out: slash commands, autocomplete, button presses. Refusals the
//! user can fix are answered ephemerally at once; anything that renders defers first (Discord
//! drops an interaction not answered within 3 s) and then edits the deferred response.

use std::sync::Arc;

use loopsmith_engine::protocol::{OutputKind, Platform, UserKey};
use loopsmith_engine::{
    Error as EngineError, GenerationRequest, InputImage, Submitted, image_input,
};
use serenity::all::{
    Attachment, AutocompleteChoice, Builder, CommandInteraction, ComponentInteraction,
    CreateAutocompleteResponse, CreateInteractionResponse, CreateInteractionResponseMessage, Http,
    Interaction, InteractionId, UserId,
};
use tracing::{debug, error, info, warn};

use super::App;
use super::commands::Options;
use super::stickers::{self, Press};
use super::surface::{InteractionSurface, Origin, rows};
use crate::command::texts::{self, PictureProblem, TextSetting};
use crate::command::{Action, Parsed, actions, follow, parse_with};

/// Picture types /animate takes.
const PICTURE_TYPES: [&str; 3] = ["image/png", "image/jpeg", "image/webp"];
/// The largest picture /animate takes (the engine's own limit).
const PICTURE_MAX_BYTES: u64 = image_input::MAX_IMAGE_BYTES as u64;
/// Sides a picture may have, in pixels (the engine's own limits).
const PICTURE_SIDES: (u32, u32) = (image_input::MIN_SIDE, image_input::MAX_SIDE);
/// Discord's limit on a message's text, in characters.
const MESSAGE_MAX: usize = 2000;
/// Discord's cap on autocomplete choices.
const CHOICES_MAX: usize = 25;

pub(crate) fn user_key(id: UserId) -> UserKey {
    UserKey::new(Platform::Discord, id.to_string())
}

pub(crate) async fn interaction(app: Arc<App>, http: Arc<Http>, interaction: Interaction) {
    match interaction {
        Interaction::Command(cmd) => command(&app, &http, &cmd).await,
        Interaction::Autocomplete(cmd) => autocomplete(&app, &http, &cmd).await,
        Interaction::Component(press) => component(&app, &http, &press).await,
        other => debug!(kind = ?other.kind(), "interaction not handled"),
    }
}

/// Sends an interaction's one initial response; a failure is logged (the token may have
/// expired or been answered already) and there is nothing else to do.
async fn respond(
    app: &App,
    http: &Http,
    id: InteractionId,
    token: &str,
    response: CreateInteractionResponse,
) -> bool {
    match response.execute(http, (id, token)).await {
        Ok(()) => true,
        Err(e) => {
            warn!(error = %app.redactor.chain(&e), "interaction response failed");
            false
        }
    }
}

fn private(text: &str) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(fit(text))
            .ephemeral(true),
    )
}

/// Discord refuses a message over 2000 characters (a long /styles list with many custom
/// presets could reach it), so longer texts are cut rather than lost.
pub(crate) fn fit(text: &str) -> String {
    texts::shorten(text, MESSAGE_MAX)
}

/// "Thinking…" in a new public message, to be edited with the result.
fn deferred() -> CreateInteractionResponse {
    CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new())
}

fn surface(
    app: &Arc<App>,
    http: &Arc<Http>,
    origin: &Origin,
    user: &UserKey,
) -> InteractionSurface {
    InteractionSurface::new(app.clone(), http.clone(), origin.clone(), user.clone())
}

/// An engine refusal is the user's to read; a fault of ours is also logged with its chain.
fn log_refusal(app: &App, user: &UserKey, e: &EngineError) {
    if e.is_refusal() {
        info!(user = %user, error = %e, "request refused");
    } else {
        error!(user = %user, error = %app.redactor.chain(e), "request failed");
    }
}

async fn command(app: &Arc<App>, http: &Arc<Http>, cmd: &CommandInteraction) {
    let user = user_key(cmd.user.id);
    let options = Options::read(&cmd.data);
    let engine = &app.engine;
    let styles = || engine.styles().names();
    let reply = match cmd.data.name.as_str() {
        "sticker" => return sticker(app, http, cmd, user, &options).await,
        "animate" => return animate(app, http, cmd, user, &options).await,
        "help" => Ok(texts::help(&styles())),
        "style" => actions::style(engine, &user, &options.text("name")).await,
        "styles" => actions::styles(engine, &user).await,
        "suffix" => {
            actions::text_setting(engine, &user, TextSetting::Suffix, &options.text("text")).await
        }
        "character" => {
            actions::text_setting(engine, &user, TextSetting::Character, &options.text("text"))
                .await
        }
        "seed" => actions::seed(engine, &user, &options.seed_argument()).await,
        "settings" => match actions::settings(engine, &user).await {
            Ok(text) => {
                let message = CreateInteractionResponseMessage::new()
                    .content(fit(&text))
                    .components(rows(&actions::settings_buttons()))
                    .ephemeral(true);
                let response = CreateInteractionResponse::Message(message);
                respond(app, http, cmd.id, &cmd.token, response).await;
                return;
            }
            Err(e) => Err(e),
        },
        "history" => match actions::history(engine, &user).await {
            Ok((text, jobs)) if !jobs.is_empty() => {
                let numbered: Vec<(String, Action)> = jobs
                    .iter()
                    .enumerate()
                    .map(|(i, job)| ((i + 1).to_string(), Action::Resend(*job)))
                    .collect();
                let buttons: Vec<Vec<(String, Action)>> =
                    numbered.chunks(4).map(<[_]>::to_vec).collect();
                let message = CreateInteractionResponseMessage::new()
                    .content(fit(&text))
                    .components(rows(&buttons))
                    .ephemeral(true);
                let response = CreateInteractionResponse::Message(message);
                respond(app, http, cmd.id, &cmd.token, response).await;
                return;
            }
            Ok((text, _)) => Ok(text),
            Err(e) => Err(e),
        },
        "cancel" => actions::cancel(engine, &user).await,
        "stats" | "budget" if !engine.is_admin(&user) => Ok(texts::admins_only()),
        "stats" => actions::stats(engine).await,
        "budget" => match engine.paid_spend_today(&user).await {
            Ok(Some((all, mine, cap))) => Ok(texts::budget(all, mine, cap)),
            Ok(None) => Ok(texts::budget_unavailable()),
            Err(e) => Err(e),
        },
        other => Ok(texts::unknown_command(&texts::shorten(other, 32))),
    };
    let text = match reply {
        Ok(text) => text,
        Err(e) => {
            log_refusal(app, &user, &e);
            e.to_string()
        }
    };
    respond(app, http, cmd.id, &cmd.token, private(&text)).await;
}

/// /sticker: read the options, defer, submit, follow.
async fn sticker(
    app: &Arc<App>,
    http: &Arc<Http>,
    cmd: &CommandInteraction,
    user: UserKey,
    options: &Options,
) {
    let prompt = options.text("prompt");
    if prompt.trim().is_empty() {
        respond(
            app,
            http,
            cmd.id,
            &cmd.token,
            private(&texts::sticker_usage()),
        )
        .await;
        return;
    }
    let parsed = match parse_with(&prompt, &options.sticker_extras()) {
        Ok(parsed) => parsed,
        Err(e) => {
            info!(user = %user, error = %e, "prompt refused");
            respond(app, http, cmd.id, &cmd.token, private(&e.to_string())).await;
            return;
        }
    };
    if !respond(app, http, cmd.id, &cmd.token, deferred()).await {
        return;
    }
    let surface = surface(app, http, &interaction_origin(cmd), &user);
    submit(app, surface, cmd, user, parsed, None).await;
}

/// Where a command's answer goes: its interaction (token, channel, member, size limit).
fn interaction_origin(cmd: &CommandInteraction) -> Origin {
    Origin {
        token: cmd.token.clone(),
        channel: cmd.channel_id,
        member: cmd.user.id,
        size_limit: cmd.attachment_size_limit,
    }
}

/// Submits a deferred /sticker or /animate and follows the job on `surface`.
async fn submit(
    app: &Arc<App>,
    surface: InteractionSurface,
    cmd: &CommandInteraction,
    user: UserKey,
    parsed: Parsed,
    image: Option<InputImage>,
) {
    let mut request = GenerationRequest::new(user.clone(), parsed.prompt);
    request.overrides = parsed.overrides;
    // The clip to play inline, and the server-sticker version for "Add as server sticker".
    request.overrides.outputs = Some(vec![OutputKind::Mp4, OutputKind::Apng]);
    // The interaction is the platform event: a replayed one never makes a second job.
    request.origin = Some(format!("di{}", cmd.id));
    request.image = image;
    match app.engine.submit(request).await {
        Ok(submitted) => start_following(app, surface, submitted),
        Err(e) => {
            log_refusal(app, &user, &e);
            surface.say(&e.to_string()).await;
        }
    }
}

fn start_following(app: &Arc<App>, surface: InteractionSurface, submitted: Submitted) {
    if submitted.duplicate {
        // A replayed interaction: its first delivery is already following the job.
        debug!(job = %submitted.job, "replayed request; already followed");
        return;
    }
    let pacing = app.pacing;
    app.spawn(async move {
        let job = submitted.job;
        match follow(&surface, job, submitted.position, submitted.events, pacing).await {
            Ok(outcome) => debug!(job = %job, ?outcome, "followed to the end"),
            Err(e) => warn!(job = %job, error = %e, "could not post the status"),
        }
    });
}

/// /animate: image-to-video. The attachment is checked as Discord describes it (type, bytes,
/// sides) before anything is downloaded, then by its bytes (`image_input::inspect`), then it
/// goes to a backend that takes pictures (Pika), followed like /sticker.
async fn animate(
    app: &Arc<App>,
    http: &Arc<Http>,
    cmd: &CommandInteraction,
    user: UserKey,
    options: &Options,
) {
    let say_privately = |text: String| async move {
        respond(app, http, cmd.id, &cmd.token, private(&text)).await;
    };
    let picture = match options.attachment("image") {
        None => {
            return say_privately(texts::picture_problem(&PictureProblem::NotAPicture(None))).await;
        }
        Some(a) => match check_picture(a) {
            Err(problem) => return say_privately(texts::picture_problem(&problem)).await,
            Ok(_) => a,
        },
    };
    if !app.engine.takes_image() {
        return say_privately(EngineError::NoImageBackend.to_string()).await;
    }
    let parsed = match parse_with(&options.text("prompt"), &[]) {
        Ok(parsed) => parsed,
        Err(e) => return say_privately(e.to_string()).await,
    };
    if !respond(app, http, cmd.id, &cmd.token, deferred()).await {
        return;
    }
    let surface = surface(app, http, &interaction_origin(cmd), &user);
    let image = match picture.download().await {
        Ok(bytes) => match image_input::inspect(bytes) {
            Ok(image) => image,
            Err(e) => {
                info!(user = %user, error = %e, "picture refused");
                return surface.say(&e.to_string()).await;
            }
        },
        Err(e) => {
            warn!(user = %user, error = %app.redactor.chain(&e), "could not fetch the picture");
            return surface.say(&texts::picture_unreachable()).await;
        }
    };
    submit(app, surface, cmd, user, parsed, Some(image)).await;
}

pub(crate) fn check_picture(a: &Attachment) -> Result<(u32, u32), PictureProblem> {
    let kind = a
        .content_type
        .as_deref()
        .map(|t| t.split(';').next().unwrap_or(t).trim().to_ascii_lowercase());
    if !kind.as_deref().is_some_and(|k| PICTURE_TYPES.contains(&k)) {
        return Err(PictureProblem::NotAPicture(kind));
    }
    let bytes = u64::from(a.size);
    if bytes > PICTURE_MAX_BYTES {
        return Err(PictureProblem::TooLarge {
            bytes,
            max: PICTURE_MAX_BYTES,
        });
    }
    let (width, height) = (a.width.unwrap_or(0), a.height.unwrap_or(0));
    let fits = |side: u32| (PICTURE_SIDES.0..=PICTURE_SIDES.1).contains(&side);
    if bytes == 0 || !fits(width) || !fits(height) {
        return Err(PictureProblem::BadSize { width, height });
    }
    Ok((width, height))
}

/// Style names matching what is typed so far.
async fn autocomplete(app: &Arc<App>, http: &Arc<Http>, cmd: &CommandInteraction) {
    let Some(focused) = cmd.data.autocomplete() else {
        return;
    };
    let typed = focused.value.trim().to_lowercase();
    let choices: Vec<AutocompleteChoice> = match focused.name {
        "style" | "name" => app
            .engine
            .styles()
            .names()
            .into_iter()
            .filter(|name| name.to_lowercase().starts_with(&typed))
            .take(CHOICES_MAX)
            .map(|name| AutocompleteChoice::new(name, name))
            .collect(),
        _ => Vec::new(),
    };
    let response = CreateInteractionResponse::Autocomplete(
        CreateAutocompleteResponse::new().set_choices(choices),
    );
    respond(app, http, cmd.id, &cmd.token, response).await;
}

async fn component(app: &Arc<App>, http: &Arc<Http>, press: &ComponentInteraction) {
    let user = user_key(press.user.id);
    let engine = &app.engine;
    let (id, token) = (press.id, press.token.as_str());
    let Some(action) = Action::decode(&press.data.custom_id) else {
        info!(data = %texts::shorten(&press.data.custom_id, 100), "unreadable button payload");
        respond(app, http, id, token, private(&texts::button_expired())).await;
        return;
    };
    let job = match action {
        Action::Set(setting, value) => {
            let changed = actions::apply_setting(engine, &user, setting, &value)
                .await
                .unwrap_or_else(|e| e.to_string());
            let summary = actions::settings(engine, &user).await.unwrap_or_default();
            // The settings message itself shows the new values.
            let message = CreateInteractionResponseMessage::new()
                .content(fit(&format!("{changed}\n\n{summary}")))
                .components(rows(&actions::settings_buttons()));
            respond(
                app,
                http,
                id,
                token,
                CreateInteractionResponse::UpdateMessage(message),
            )
            .await;
            return;
        }
        Action::Reroll(job)
        | Action::Vary(job)
        | Action::AddToPack(job)
        | Action::FullClip(job)
        | Action::Resend(job) => job,
    };
    let record = match engine.job(job).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            respond(app, http, id, token, private(&texts::button_expired())).await;
            return;
        }
        Err(e) => {
            error!(error = %app.redactor.chain(&e), "reading a job failed");
            respond(app, http, id, token, private(&e.to_string())).await;
            return;
        }
    };
    if record.user != user && !engine.is_admin(&user) {
        info!(user = %user, job = %job, "button pressed by someone else");
        respond(app, http, id, token, private(&texts::not_yours())).await;
        return;
    }
    let origin = Origin {
        token: press.token.clone(),
        channel: press.channel_id,
        member: press.user.id,
        size_limit: press.attachment_size_limit,
    };
    match action {
        Action::Reroll(_) | Action::Vary(_) => {
            let params = if matches!(action, Action::Reroll(_)) {
                actions::reroll(&record, super::random_seed())
            } else {
                actions::variation(&record)
            };
            if !respond(app, http, id, token, deferred()).await {
                return;
            }
            let surface = surface(app, http, &origin, &user);
            // The press is the platform event: a replayed one makes no second job.
            let origin = Some(format!("di{id}"));
            match engine.resubmit(user.clone(), origin, params).await {
                Ok(submitted) => start_following(app, surface, submitted),
                Err(e) => {
                    log_refusal(app, &user, &e);
                    surface.say(&e.to_string()).await;
                }
            }
        }
        Action::AddToPack(_) => {
            let checked = stickers::check(Press {
                guild: press.guild_id,
                member: press.member.as_ref().and_then(|m| m.permissions),
                bot: press.app_permissions,
            });
            let guild = match checked {
                Ok(guild) => guild,
                Err(problem) => {
                    info!(user = %user, job = %job, ?problem, "server sticker refused before upload");
                    let text = texts::server_sticker_problem(problem);
                    respond(app, http, id, token, private(&text)).await;
                    return;
                }
            };
            if !respond(app, http, id, token, deferred()).await {
                return;
            }
            let text = stickers::create(http, &app.redactor, guild, &record).await;
            surface(app, http, &origin, &user).say(&text).await;
        }
        _ => {
            if respond(app, http, id, token, deferred()).await {
                surface(app, http, &origin, &user).send_clip(&record).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attachment(content_type: Option<&str>, size: u32, sides: Option<(u32, u32)>) -> Attachment {
        let mut value = json!({
            "id": "1", "filename": "a.png", "size": size,
            "url": "https://cdn.invalid/a.png", "proxy_url": "https://media.invalid/a.png",
        });
        if let Some(t) = content_type {
            value["content_type"] = json!(t);
        }
        if let Some((w, h)) = sides {
            value["width"] = json!(w);
            value["height"] = json!(h);
        }
        serde_json::from_value(value).expect("an attachment")
    }

    #[test]
    fn pictures_are_checked_for_type_bytes_and_sides() {
        assert_eq!(
            check_picture(&attachment(Some("image/png"), 1000, Some((512, 512)))),
            Ok((512, 512))
        );
        assert_eq!(
            check_picture(&attachment(Some("image/JPEG; q=1"), 10, Some((64, 4096)))),
            Ok((64, 4096))
        );
        assert_eq!(
            check_picture(&attachment(Some("application/pdf"), 10, None)),
            Err(PictureProblem::NotAPicture(Some("application/pdf".into())))
        );
        assert_eq!(
            check_picture(&attachment(None, 10, Some((100, 100)))),
            Err(PictureProblem::NotAPicture(None))
        );
        assert_eq!(
            check_picture(&attachment(
                Some("image/png"),
                11 * 1024 * 1024,
                Some((100, 100))
            )),
            Err(PictureProblem::TooLarge {
                bytes: 11 * 1024 * 1024,
                max: PICTURE_MAX_BYTES
            })
        );
        assert_eq!(
            check_picture(&attachment(Some("image/gif"), 10, Some((200, 200)))),
            Err(PictureProblem::NotAPicture(Some("image/gif".into())))
        );
        assert_eq!(
            check_picture(&attachment(Some("image/png"), 10, Some((20, 500)))),
            Err(PictureProblem::BadSize {
                width: 20,
                height: 500
            })
        );
        assert_eq!(
            check_picture(&attachment(Some("image/webp"), 10, None)),
            Err(PictureProblem::BadSize {
                width: 0,
                height: 0
            })
        );
    }

    #[test]
    fn long_texts_are_cut_to_what_discord_takes() {
        assert_eq!(fit("short"), "short");
        let long = fit(&"x".repeat(5000));
        assert_eq!(long.chars().count(), MESSAGE_MAX);
        assert!(long.ends_with('…'));
    }
}
