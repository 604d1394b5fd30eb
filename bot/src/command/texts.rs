//! What the bots say. Written once for every chat platform; each sentence is short and says
//! what happened and what the person can do next.

use std::time::Duration;

use loopsmith_engine::protocol::JobState;

use super::options::OPTIONS;

/// The first reply to a request, sent at once.
pub fn queued(position: Option<u32>) -> String {
    match position {
        Some(1) | None => "Got it — your sticker is next in line.".to_string(),
        Some(n) => format!("Got it — you're number {n} in the queue."),
    }
}

/// A one-line progress report, for editing the first reply while the job runs.
pub fn progress(state: &JobState, position: Option<u32>, eta: Option<Duration>) -> String {
    let eta = eta
        .map(|d| format!(" · about {} left", human(d)))
        .unwrap_or_default();
    match state {
        JobState::Queued => match position {
            Some(n) if n > 1 => format!("Waiting — number {n} in the queue{eta}"),
            _ => format!("Waiting — next in line{eta}"),
        },
        JobState::Running { progress, .. } => format!(
            "{} {:>3}% rendering{eta}",
            bar(*progress),
            (progress * 100.0).round()
        ),
        JobState::Encoding { .. } => format!("{} making the sticker file", bar(1.0)),
        JobState::Done { .. } => "Done!".to_string(),
        JobState::Failed { reason, .. } => reason.clone(),
        JobState::Cancelled { .. } => "Cancelled.".to_string(),
    }
}

/// The final message about a job that did not produce a sticker.
pub fn failed(reason: &str, retryable: bool) -> String {
    if retryable {
        format!("Sorry, that didn't work: {reason} You can try again.")
    } else {
        format!("Sorry, that didn't work: {reason}")
    }
}

/// Ten cells, filled in proportion.
pub fn bar(fraction: f32) -> String {
    let filled = (fraction.clamp(0.0, 1.0) * 10.0).round() as usize;
    format!("{}{}", "▰".repeat(filled), "▱".repeat(10 - filled))
}

/// "12 s", "3 min", "1 h 5 min".
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{} s", s.max(1)),
        60..=3599 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// /help: what to type, the options and their limits, and the styles on offer.
pub fn help(styles: &[&str]) -> String {
    let options: Vec<String> = OPTIONS
        .iter()
        .map(|(name, what)| format!("{name} — {what}"))
        .collect();
    format!(
        "Send me a description and I'll make a looping video sticker of it.\n\n\
         Examples:\n\
         a red ball bouncing on a blue background\n\
         a sleepy cat waving -style anime -ar 9:16\n\
         fireworks over a lake -motion 4 -seed 42 -neg text, blurry\n\n\
         Options:\n{}\n\n\
         Styles: {}.",
        options.join("\n"),
        styles.join(", ")
    )
}

/// The status line once the sticker has been sent.
pub fn delivered() -> String {
    "Here it is! Use the buttons to re-roll, vary it or keep it in your pack.".to_string()
}

/// The status line when the job finished but sending the files failed.
pub fn undelivered() -> String {
    "Your sticker is ready, but I couldn't send it. Try /history in a minute.".to_string()
}

pub fn cancelled() -> String {
    "Cancelled.".to_string()
}

/// /start: a greeting, then the same as /help.
pub fn start(name: &str, styles: &[&str]) -> String {
    format!(
        "Hi {name}! I turn descriptions into looping video stickers.\n\n{}",
        help(styles)
    )
}

/// The command list, for platforms that show one (Telegram's "/" menu).
pub const COMMANDS: [(&str, &str); 13] = [
    ("sticker", "make a sticker: /sticker a cat waving"),
    ("help", "examples, options and limits"),
    ("styles", "the styles on offer"),
    ("style", "your default style"),
    ("suffix", "words added to every prompt"),
    ("character", "a subject kept in every sticker"),
    ("seed", "lock or unlock your seed"),
    ("settings", "your defaults"),
    ("history", "your recent stickers"),
    ("pack", "the link to your sticker pack"),
    ("cancel", "stop your current sticker"),
    ("stats", "admins: queue and jobs"),
    ("budget", "admins: spending"),
];

/// /styles: each preset with what it adds to a prompt.
pub fn styles(presets: &[(&str, &str)], current: Option<&str>) -> String {
    let lines: Vec<String> = presets
        .iter()
        .map(|(name, look)| {
            let mark = if Some(*name) == current {
                " (yours)"
            } else {
                ""
            };
            if look.is_empty() {
                format!("• {name}{mark} — your prompt as written")
            } else {
                format!("• {name}{mark} — {look}")
            }
        })
        .collect();
    format!(
        "Styles:\n{}\n\nUse one once with -style NAME, or make it your default with /style NAME.",
        lines.join("\n")
    )
}

/// /style without a name.
pub fn style_current(current: Option<&str>) -> String {
    match current {
        Some(name) => format!(
            "Your default style is {name}. Change it with /style NAME, or /style none to clear it; /styles lists them."
        ),
        None => {
            "You have no default style. Pick one with /style NAME; /styles lists them.".to_string()
        }
    }
}

pub fn style_set(name: Option<&str>) -> String {
    match name {
        Some(name) => format!("Done — your stickers will use the {name} style."),
        None => "Done — your default style is cleared.".to_string(),
    }
}

/// /suffix and /character: what they are, shown and changed the same way.
pub fn text_setting(what: TextSetting, current: Option<&str>) -> String {
    let (command, noun) = what.names();
    match current {
        Some(text) => format!(
            "Your {noun} is: {text}\nChange it with /{command} TEXT, or /{command} off to clear it."
        ),
        None => format!(
            "You have no {noun}. Set one with /{command} TEXT; {}",
            what.purpose()
        ),
    }
}

pub fn text_setting_set(what: TextSetting, text: Option<&str>) -> String {
    let (_, noun) = what.names();
    match text {
        Some(text) => format!("Done — your {noun} is now: {text}"),
        None => format!("Done — your {noun} is cleared."),
    }
}

/// The two free-text settings a user keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSetting {
    Suffix,
    Character,
}

impl TextSetting {
    fn names(self) -> (&'static str, &'static str) {
        match self {
            TextSetting::Suffix => ("suffix", "prompt suffix"),
            TextSetting::Character => ("character", "character"),
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            TextSetting::Suffix => "it is added to the end of every prompt.",
            TextSetting::Character => {
                "it is put before every prompt, so a series of stickers shows the same subject."
            }
        }
    }
}

/// /seed without a usable argument.
pub fn seed_usage(locked: Option<u32>) -> String {
    let now = match locked {
        Some(seed) => format!("Your seed is locked to {seed}."),
        None => "Your seed is not locked; every sticker gets a new one.".to_string(),
    };
    format!(
        "{now}\n/seed lock keeps the seed of your last sticker, /seed lock 42 a seed of your choice, /seed unlock goes back to random."
    )
}

pub fn seed_locked(seed: u32) -> String {
    format!("Done — every sticker will use seed {seed} until you /seed unlock.")
}

pub fn seed_unlocked() -> String {
    "Done — every sticker gets a new random seed again.".to_string()
}

pub fn seed_nothing_to_lock() -> String {
    "You have no sticker yet whose seed I could keep; give one: /seed lock 42".to_string()
}

/// /settings: the user's defaults, one per line.
pub fn settings(lines: &[(&str, String)]) -> String {
    let body: Vec<String> = lines
        .iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    format!(
        "Your defaults:\n{}\n\nTap a button to change one; options in a message still win.",
        body.join("\n")
    )
}

pub fn setting_changed(name: &str, value: &str) -> String {
    format!("{name} is now {value}.")
}

/// /history: the user's recent stickers, newest first.
pub fn history(items: &[(u64, String)]) -> String {
    if items.is_empty() {
        return "You have no stickers yet. Send me a description to make one.".to_string();
    }
    let lines: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, (_, prompt))| format!("{}. {}", i + 1, shorten(prompt, 60)))
        .collect();
    format!(
        "Your recent stickers:\n{}\n\nTap a number to get it again.",
        lines.join("\n")
    )
}

pub fn nothing_to_cancel() -> String {
    "You have nothing waiting or rendering.".to_string()
}

pub fn cancelling(job: u64) -> String {
    format!("Stopping job {job}…")
}

/// The pack's link, or how to start one.
pub fn pack_link(link: Option<&str>) -> String {
    match link {
        Some(link) => format!("Your pack: {link}"),
        None => {
            "You have no pack yet. Tap \"Add to my pack\" under a sticker to start one.".to_string()
        }
    }
}

pub fn pack_created(link: &str) -> String {
    format!("I made your pack and put the sticker in it: {link}")
}

pub fn pack_added(link: &str) -> String {
    format!("Added to your pack: {link}")
}

/// Why a sticker could not go into a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackProblem {
    /// The set holds as many stickers as the platform allows.
    Full(u32),
    /// The pack's name belongs to someone else's set.
    NameTaken,
    /// The platform refused the file (size, length, format).
    StickerRejected,
    /// The user has never opened a private chat with the bot, so it may not make sets for them.
    NeedsPrivateChat,
    /// The sticker is too old: its file is gone.
    Gone,
    Other,
}

pub fn pack_problem(problem: PackProblem) -> String {
    match problem {
        PackProblem::Full(max) => format!(
            "Your pack is full ({max} stickers is the limit). Remove some in @Stickers, then try again."
        ),
        PackProblem::NameTaken => {
            "Your pack's name is taken by another set, so I can't make it. An admin can help."
                .to_string()
        }
        PackProblem::StickerRejected => {
            "Telegram refused this sticker for packs. Re-roll and try the new one.".to_string()
        }
        PackProblem::NeedsPrivateChat => {
            "Open a private chat with me and press Start first; then I can make your pack."
                .to_string()
        }
        PackProblem::Gone => {
            "That sticker is no longer stored here; make a new one to add it.".to_string()
        }
        PackProblem::Other => "I couldn't add that to your pack; please try again.".to_string(),
    }
}

/// A sticker whose files were cleaned up, asked for again.
pub fn gone() -> String {
    "That sticker is no longer stored here; make a new one.".to_string()
}

pub fn not_yours() -> String {
    "That button belongs to someone else's sticker.".to_string()
}

pub fn button_expired() -> String {
    "That button no longer works; make a new sticker.".to_string()
}

pub fn not_allowed_here() -> String {
    "Sorry, this bot is private and not open to this chat.".to_string()
}

pub fn admins_only() -> String {
    "Only admins can use that command.".to_string()
}

pub fn unknown_command(name: &str) -> String {
    format!("I don't know /{name}. /help lists what I can do.")
}

pub fn sticker_usage() -> String {
    "Tell me what to make: /sticker a cat waving -style anime".to_string()
}

/// A picture arrived with no words: image-to-video needs to know what should move.
pub fn picture_needs_caption() -> String {
    "Add a caption saying how the picture should move, e.g. \"the cat waves -duration 5\"."
        .to_string()
}

/// The picture could not be fetched from the platform.
pub fn picture_unreachable() -> String {
    "I couldn't fetch that picture; please send it again.".to_string()
}

pub fn not_text() -> String {
    "Send me a description in words and I'll make a sticker of it. /help has examples.".to_string()
}

pub fn inline_button() -> String {
    "Make a new sticker".to_string()
}

/// /stats for admins.
pub fn stats(queued: usize, health: &str, states: &[(&str, usize)]) -> String {
    let counts: Vec<String> = states
        .iter()
        .map(|(state, n)| format!("{state}: {n}"))
        .collect();
    format!(
        "Queue: {queued} waiting\nBackend: {health}\nRecent jobs — {}",
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        }
    )
}

pub fn ban_usage(command: &str) -> String {
    format!("Give the user's numeric id: /{command} 123456789")
}

pub fn banned(id: &str, banned: bool) -> String {
    if banned {
        format!("User {id} is banned; their requests are refused.")
    } else {
        format!("User {id} may make stickers again.")
    }
}

pub fn budget_unavailable() -> String {
    "There is no spending to show: the paid Pika backend is turned off (pika.enabled = false), so every sticker renders locally for free."
        .to_string()
}

/// Today's paid spend for an admin: everyone's against the cap, and the asker's own.
pub fn budget(all_usd: f64, mine_usd: f64, cap_usd: f64) -> String {
    format!(
        "Pika spend today (UTC): ${all_usd:.2} of ${cap_usd:.2} ({left} left). Yours: ${mine_usd:.2}.",
        left = format_args!("${:.2}", (cap_usd - all_usd).max(0.0))
    )
}

/// Cuts text to `max` characters, marking the cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

/// The caption of the whole clip sent beside a sticker.
pub fn full_clip_caption(secs: f32) -> String {
    format!("The whole {secs} s clip (stickers stop at 3 s).")
}

// Discord: what differs there (server stickers instead of packs, attachments, upload limits).

/// The status line on Discord once the clip is attached.
pub fn discord_delivered() -> String {
    "Here it is! Re-roll it, vary it, add it as a server sticker or get the full clip with the buttons."
        .to_string()
}

/// The text above a delivered clip: the prompt and how to make it again.
pub fn clip_caption(prompt: &str, seed: u32) -> String {
    format!("{} · seed {seed}", shorten(prompt, 180))
}

/// The MP4 is over the channel's upload limit, so the sticker version is attached instead.
pub fn clip_too_big(limit_bytes: u64) -> String {
    format!(
        "The clip is larger than this channel allows ({}), so here is the sticker version.",
        megabytes(limit_bytes)
    )
}

fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// Why a clip could not become a server sticker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStickerProblem {
    /// Pressed in a DM: stickers belong to servers.
    NotInServer,
    /// The member who pressed may not create expressions here.
    MemberLacksPermission,
    /// The bot may not create expressions here.
    BotLacksPermission,
    /// Every sticker slot is taken (Boosts add slots).
    SlotsFull,
    /// Discord refused the file's size or shape.
    TooBig,
    /// The sticker file is no longer stored.
    Gone,
    Other,
}

pub fn server_sticker_added(name: &str) -> String {
    format!("Added \"{name}\" to this server's stickers.")
}

pub fn server_sticker_problem(problem: ServerStickerProblem) -> String {
    match problem {
        ServerStickerProblem::NotInServer => {
            "Server stickers belong to a server; press this in a server channel.".to_string()
        }
        ServerStickerProblem::MemberLacksPermission => {
            "You need the Create Expressions permission in this server to add stickers."
                .to_string()
        }
        ServerStickerProblem::BotLacksPermission => {
            "I don't have the Create Expressions permission in this server; an admin can grant it."
                .to_string()
        }
        ServerStickerProblem::SlotsFull => {
            "This server's sticker slots are full. Remove one, or boost the server for more."
                .to_string()
        }
        ServerStickerProblem::TooBig => {
            "Discord refused this sticker's file (stickers must be 320×320, under 512 KB and 5 s). Re-roll and try the new one."
                .to_string()
        }
        ServerStickerProblem::Gone => {
            "That sticker is no longer stored here; make a new one to add it.".to_string()
        }
        ServerStickerProblem::Other => {
            "I couldn't add the sticker to this server; please try again.".to_string()
        }
    }
}

/// Why a picture given to /animate was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PictureProblem {
    /// Not PNG, JPEG or WebP (the type Discord reports, if any).
    NotAPicture(Option<String>),
    TooLarge {
        bytes: u64,
        max: u64,
    },
    /// Sides outside the accepted range, or unknown.
    BadSize {
        width: u32,
        height: u32,
    },
}

pub fn picture_problem(problem: &PictureProblem) -> String {
    match problem {
        PictureProblem::NotAPicture(Some(kind)) => {
            format!("I take PNG, JPEG or WebP pictures; that file is {kind}.")
        }
        PictureProblem::NotAPicture(None) => {
            "I can't tell what that file is; attach a PNG, JPEG or WebP.".to_string()
        }
        PictureProblem::TooLarge { bytes, max } => format!(
            "That picture is {}; the most I take is {}.",
            megabytes(*bytes),
            megabytes(*max)
        ),
        PictureProblem::BadSize { width, height } => format!(
            "That picture is {width}×{height}; each side must be between 64 and 4096 pixels."
        ),
    }
}
