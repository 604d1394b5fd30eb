//! "Add as server sticker": the clip's APNG (320×320, at most 512 KiB and 5 s, made by the
//! media crate) becomes a guild sticker. Both the member who pressed and the bot need
//! CREATE_GUILD_EXPRESSIONS; Discord sends both permission sets with the interaction, so
//! they are checked before anything is uploaded, and Discord's own refusals (slots full,
//! missing permission, file refused) are told apart afterwards.

use std::path::PathBuf;

use loopsmith_engine::protocol::{Job, JobState, OutputKind};
use serenity::all::{CreateAttachment, CreateSticker, GuildId, Http, Permissions};
use tracing::{info, warn};

use super::net::{Redactor, discord_code};
use crate::command::texts::{self, ServerStickerProblem, shorten};

/// What Discord sends with a button press that matters here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Press {
    pub guild: Option<GuildId>,
    /// The presser's permissions in the channel; `None` outside a guild.
    pub member: Option<Permissions>,
    pub bot: Option<Permissions>,
}

/// Checks that need no request: where it was pressed and who may create stickers there.
pub(crate) fn check(press: Press) -> Result<GuildId, ServerStickerProblem> {
    let guild = press.guild.ok_or(ServerStickerProblem::NotInServer)?;
    let allowed = |p: Option<Permissions>| p.is_some_and(|p| p.create_guild_expressions());
    if !allowed(press.member) {
        return Err(ServerStickerProblem::MemberLacksPermission);
    }
    if !allowed(press.bot) {
        return Err(ServerStickerProblem::BotLacksPermission);
    }
    Ok(guild)
}

/// The stored sticker file of a finished job.
pub(crate) fn sticker_file(job: &Job) -> Option<PathBuf> {
    match &job.state {
        JobState::Done { artifacts } => artifacts
            .iter()
            .find(|a| matches!(a.kind, OutputKind::Apng | OutputKind::Gif) && a.path.exists())
            .map(|a| a.path.clone()),
        _ => None,
    }
}

/// A sticker name Discord accepts (2 to 30 characters) from the prompt.
pub(crate) fn name(prompt: &str) -> String {
    let name = shorten(prompt.trim(), 30);
    if name.chars().count() >= 2 {
        name
    } else {
        format!("loop {name}").trim().to_string()
    }
}

/// The autocomplete tag (2 to 200 characters): the prompt's first real word.
pub(crate) fn tag(prompt: &str) -> String {
    prompt
        .split(|c: char| !c.is_alphanumeric())
        .find(|w| w.chars().count() >= 2)
        .map(|w| w.chars().take(30).collect::<String>().to_lowercase())
        .unwrap_or_else(|| "loop".to_string())
}

/// Uploads the sticker; the answer is the text for the presser.
pub(crate) async fn create(http: &Http, redactor: &Redactor, guild: GuildId, job: &Job) -> String {
    let Some(path) = sticker_file(job) else {
        return texts::server_sticker_problem(ServerStickerProblem::Gone);
    };
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(e) => {
            warn!(job = %job.id, error = %e, "reading the sticker file failed");
            return texts::server_sticker_problem(ServerStickerProblem::Gone);
        }
    };
    let file_name = if path.extension().is_some_and(|e| e == "gif") {
        "sticker.gif"
    } else {
        "sticker.png"
    };
    let prompt = &job.params.user_prompt;
    let name = name(prompt);
    let mut sticker = CreateSticker::new(name.clone(), CreateAttachment::bytes(bytes, file_name))
        .tags(tag(prompt));
    let description = shorten(prompt.trim(), 100);
    if description.chars().count() >= 2 {
        sticker = sticker.description(description);
    }
    match guild.create_sticker(http, sticker).await {
        Ok(created) => {
            info!(job = %job.id, guild = %guild, sticker = %created.id, "server sticker created");
            texts::server_sticker_added(&name)
        }
        Err(e) => {
            let problem = match discord_code(&e) {
                // Maximum number of stickers reached.
                Some((_, 30039)) => ServerStickerProblem::SlotsFull,
                // Missing permissions: changed since the interaction was sent.
                Some((_, 50013)) | Some((403, _)) => ServerStickerProblem::BotLacksPermission,
                // File too large; asset could not be resized; invalid form body (the file).
                Some((_, 50045 | 50138 | 50035)) => ServerStickerProblem::TooBig,
                _ => ServerStickerProblem::Other,
            };
            warn!(job = %job.id, guild = %guild, ?problem, error = %redactor.chain(&e), "server sticker refused");
            texts::server_sticker_problem(problem)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(member: u64, bot: u64) -> Press {
        Press {
            guild: Some(GuildId::new(5)),
            member: Some(Permissions::from_bits_truncate(member)),
            bot: Some(Permissions::from_bits_truncate(bot)),
        }
    }

    #[test]
    fn both_the_member_and_the_bot_need_create_expressions() {
        let create = Permissions::CREATE_GUILD_EXPRESSIONS.bits();
        // MANAGE_GUILD_EXPRESSIONS alone is for editing others' stickers, not creating.
        let manage = Permissions::MANAGE_GUILD_EXPRESSIONS.bits();
        assert_eq!(check(press(create, create)), Ok(GuildId::new(5)));
        assert_eq!(
            check(press(manage, create)),
            Err(ServerStickerProblem::MemberLacksPermission)
        );
        assert_eq!(
            check(press(create, 0)),
            Err(ServerStickerProblem::BotLacksPermission)
        );
        let dm = Press {
            guild: None,
            member: None,
            bot: None,
        };
        assert_eq!(check(dm), Err(ServerStickerProblem::NotInServer));
        let unknown = Press {
            member: None,
            ..press(create, create)
        };
        assert_eq!(
            check(unknown),
            Err(ServerStickerProblem::MemberLacksPermission)
        );
    }

    #[test]
    fn names_and_tags_fit_discord() {
        assert_eq!(name("a cat waving"), "a cat waving");
        assert_eq!(name("x"), "loop x");
        assert!(name(&"long ".repeat(20)).chars().count() <= 30);
        assert_eq!(tag("A Cat waving"), "cat");
        assert_eq!(tag("🐱 !"), "loop");
    }
}
