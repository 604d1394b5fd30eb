//! What the commands and buttons do, over the engine, for every platform. Each returns the
//! text to answer with; an `Err` is an engine refusal or fault whose `Display` is one
//! sentence for the user (the adapter logs the chain).

use loopsmith_engine::protocol::{Job, JobId, JobState, Params, Platform, UserKey, UserStyle};
use loopsmith_engine::{Engine, Error, request};

use super::texts::{self, TextSetting};

/// How many stickers /history lists.
pub const HISTORY_LEN: usize = 8;

/// A button's meaning, carried in its payload (Telegram's callback data: at most 64 bytes).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Same parameters, new seed.
    Reroll(JobId),
    /// Same seed, guidance nudged: a close relative of the sticker.
    Vary(JobId),
    /// Keep the sticker: in the user's pack on Telegram, as a server sticker on Discord.
    AddToPack(JobId),
    FullClip(JobId),
    /// Send an earlier sticker again (from /history).
    Resend(JobId),
    /// Change one of the user's defaults (from /settings).
    Set(Setting, String),
}

/// Defaults /settings can change with a tap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    Aspect,
    Motion,
    Duration,
    Fps,
    Reset,
}

impl Setting {
    fn code(self) -> &'static str {
        match self {
            Setting::Aspect => "ar",
            Setting::Motion => "mo",
            Setting::Duration => "du",
            Setting::Fps => "fp",
            Setting::Reset => "rs",
        }
    }

    fn from_code(code: &str) -> Option<Setting> {
        [
            Setting::Aspect,
            Setting::Motion,
            Setting::Duration,
            Setting::Fps,
            Setting::Reset,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            Setting::Aspect => "Aspect",
            Setting::Motion => "Motion",
            Setting::Duration => "Duration",
            Setting::Fps => "Frame rate",
            Setting::Reset => "Reset",
        }
    }
}

impl Action {
    pub fn encode(&self) -> String {
        match self {
            Action::Reroll(j) => format!("rr:{j}"),
            Action::Vary(j) => format!("va:{j}"),
            Action::AddToPack(j) => format!("pk:{j}"),
            Action::FullClip(j) => format!("fc:{j}"),
            Action::Resend(j) => format!("hs:{j}"),
            Action::Set(s, v) => format!("set:{}:{v}", s.code()),
        }
    }

    /// Reads a payload; anything else (old, forged, truncated) is `None`.
    pub fn decode(data: &str) -> Option<Action> {
        let (kind, rest) = data.split_once(':')?;
        let job = || rest.parse().ok().map(JobId);
        Some(match kind {
            "rr" => Action::Reroll(job()?),
            "va" => Action::Vary(job()?),
            "pk" => Action::AddToPack(job()?),
            "fc" => Action::FullClip(job()?),
            "hs" => Action::Resend(job()?),
            "set" => {
                let (code, value) = rest.split_once(':')?;
                Action::Set(Setting::from_code(code)?, value.to_string())
            }
            _ => return None,
        })
    }
}

/// The buttons under a delivered sticker, as rows of (label, action).
pub fn sticker_buttons(job: JobId) -> Vec<Vec<(String, Action)>> {
    vec![
        vec![
            ("🎲 Re-roll".to_string(), Action::Reroll(job)),
            ("✨ Variation".to_string(), Action::Vary(job)),
        ],
        vec![
            ("➕ Add to my pack".to_string(), Action::AddToPack(job)),
            ("🎞 Full clip".to_string(), Action::FullClip(job)),
        ],
    ]
}

/// The buttons under a clip on Discord: one row (Discord allows five per row); the sticker
/// is kept as a server sticker there, since Discord has no personal packs.
pub fn discord_sticker_buttons(job: JobId) -> Vec<Vec<(String, Action)>> {
    vec![vec![
        ("🎲 Re-roll".to_string(), Action::Reroll(job)),
        ("✨ Variation".to_string(), Action::Vary(job)),
        (
            "➕ Add as server sticker".to_string(),
            Action::AddToPack(job),
        ),
        ("🎞 Full clip".to_string(), Action::FullClip(job)),
    ]]
}

/// The /settings keyboard.
pub fn settings_buttons() -> Vec<Vec<(String, Action)>> {
    let row = |setting: Setting, values: &[(&str, &str)]| {
        values
            .iter()
            .map(|(label, value)| (label.to_string(), Action::Set(setting, value.to_string())))
            .collect::<Vec<_>>()
    };
    vec![
        row(
            Setting::Aspect,
            &[("1:1", "1:1"), ("9:16", "9:16"), ("16:9", "16:9")],
        ),
        row(
            Setting::Motion,
            &[
                ("motion 1", "1"),
                ("motion 2", "2"),
                ("motion 3", "3"),
                ("motion 4", "4"),
            ],
        ),
        row(
            Setting::Duration,
            &[("3 s", "3"), ("5 s", "5"), ("8 s", "8")],
        ),
        row(
            Setting::Fps,
            &[("12 fps", "12"), ("24 fps", "24"), ("30 fps", "30")],
        ),
        row(Setting::Reset, &[("Reset all", "all")]),
    ]
}

/// The parameters of a re-roll: everything as before except a fresh seed.
pub fn reroll(job: &Job, seed: u32) -> Params {
    let mut params = job.params.clone();
    // A fresh seed that is never the old one.
    params.seed = if seed == job.params.seed {
        seed.wrapping_add(1)
    } else {
        seed
    };
    params
}

/// The parameters of a variation: the same seed (so the same composition), with guidance
/// moved by 1.5 so the details change. Unset guidance is taken as the common default 7.5.
pub fn variation(job: &Job) -> Params {
    let mut params = job.params.clone();
    let base = params.guidance.unwrap_or(7.5);
    let nudged = if base + 1.5 <= request::GUIDANCE.1 {
        base + 1.5
    } else {
        base - 1.5
    };
    params.guidance = Some(nudged);
    params
}

/// The emoji a sticker is filed under: the first emoji in the prompt, else one for the first
/// known word, else 🎬.
pub fn sticker_emoji(prompt: &str) -> String {
    if let Some(c) = prompt.chars().find(|c| is_emoji(*c)) {
        return c.to_string();
    }
    const WORDS: [(&str, &str); 16] = [
        ("cat", "🐱"),
        ("dog", "🐶"),
        ("fox", "🦊"),
        ("bird", "🐦"),
        ("fish", "🐟"),
        ("fire", "🔥"),
        ("heart", "❤️"),
        ("love", "❤️"),
        ("rain", "🌧"),
        ("snow", "❄️"),
        ("sun", "☀️"),
        ("star", "⭐"),
        ("dance", "💃"),
        ("laugh", "😂"),
        ("cry", "😢"),
        ("party", "🎉"),
    ];
    let lower = prompt.to_lowercase();
    lower
        .split(|c: char| !c.is_alphanumeric())
        .find_map(|word| {
            WORDS
                .iter()
                .find(|(w, _)| word == *w || word.strip_suffix('s') == Some(*w))
        })
        .map_or_else(|| "🎬".to_string(), |(_, e)| e.to_string())
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF)
}

/// /style.
pub async fn style(engine: &Engine, user: &UserKey, arg: &str) -> Result<String, Error> {
    let mut profile = engine.user(user).await?.style;
    let arg = arg.trim().to_ascii_lowercase();
    if arg.is_empty() {
        return Ok(texts::style_current(profile.preset.as_deref()));
    }
    let preset = match arg.as_str() {
        "none" | "off" | "reset" | "clear" => None,
        _ => Some(arg),
    };
    profile.preset = preset.clone();
    engine.set_style(user, profile).await?;
    Ok(texts::style_set(preset.as_deref()))
}

/// /styles.
pub async fn styles(engine: &Engine, user: &UserKey) -> Result<String, Error> {
    let current = engine.user(user).await?.style.preset;
    let catalog = engine.styles();
    let looks: Vec<(String, String)> = catalog
        .names()
        .into_iter()
        .filter_map(|name| catalog.get(name))
        .map(|p| {
            let look = [p.prefix.trim(), p.suffix.trim()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" … ");
            (p.name.clone(), look)
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = looks
        .iter()
        .map(|(n, l)| (n.as_str(), l.as_str()))
        .collect();
    Ok(texts::styles(&borrowed, current.as_deref()))
}

/// /suffix and /character.
pub async fn text_setting(
    engine: &Engine,
    user: &UserKey,
    which: TextSetting,
    arg: &str,
) -> Result<String, Error> {
    let mut style = engine.user(user).await?.style;
    fn slot(s: &mut UserStyle, which: TextSetting) -> &mut Option<String> {
        match which {
            TextSetting::Suffix => &mut s.suffix,
            TextSetting::Character => &mut s.character,
        }
    }
    let arg = request::clean_text(arg);
    if arg.is_empty() {
        return Ok(texts::text_setting(
            which,
            slot(&mut style, which).as_deref(),
        ));
    }
    let value = match arg.to_ascii_lowercase().as_str() {
        "off" | "none" | "clear" | "reset" => None,
        _ => Some(arg),
    };
    *slot(&mut style, which) = value.clone();
    engine.set_style(user, style).await?;
    Ok(texts::text_setting_set(which, value.as_deref()))
}

/// /seed lock [N] | unlock.
pub async fn seed(engine: &Engine, user: &UserKey, arg: &str) -> Result<String, Error> {
    let mut style = engine.user(user).await?.style;
    let words: Vec<&str> = arg.split_whitespace().collect();
    match words.as_slice() {
        ["unlock"] | ["off"] => {
            style.seed_lock = None;
            engine.set_style(user, style).await?;
            Ok(texts::seed_unlocked())
        }
        ["lock", value] | [value] if value.chars().all(|c| c.is_ascii_digit()) => {
            let seed = request::parse_seed(value)?;
            style.seed_lock = Some(seed);
            engine.set_style(user, style).await?;
            Ok(texts::seed_locked(seed))
        }
        ["lock", value] => Err(request::parse_seed(value).unwrap_err().into()),
        ["lock"] => {
            let last = engine.recent_jobs(Some(user), 1).await?.into_iter().next();
            match last {
                Some(job) => {
                    style.seed_lock = Some(job.params.seed);
                    engine.set_style(user, style).await?;
                    Ok(texts::seed_locked(job.params.seed))
                }
                None => Ok(texts::seed_nothing_to_lock()),
            }
        }
        _ => Ok(texts::seed_usage(style.seed_lock)),
    }
}

/// /settings: the user's defaults as text (the keyboard comes from [`settings_buttons`]).
pub async fn settings(engine: &Engine, user: &UserKey) -> Result<String, Error> {
    let style = engine.user(user).await?.style;
    let d = &style.defaults;
    let or_default = |v: Option<String>| v.unwrap_or_else(|| "default".to_string());
    let lines = [
        ("Style", or_default(style.preset.clone())),
        ("Aspect", or_default(d.aspect.map(|a| a.to_string()))),
        ("Motion", or_default(d.motion.map(|m| m.to_string()))),
        (
            "Duration",
            or_default(d.duration_secs.map(|s| format!("{s} s"))),
        ),
        ("Frame rate", or_default(d.fps.map(|f| format!("{f} fps")))),
        (
            "Seed",
            style
                .seed_lock
                .map_or("random".to_string(), |s| format!("locked to {s}")),
        ),
        (
            "Suffix",
            style.suffix.clone().unwrap_or_else(|| "none".into()),
        ),
        (
            "Character",
            style.character.clone().unwrap_or_else(|| "none".into()),
        ),
    ];
    Ok(texts::settings(&lines))
}

/// A tap on a /settings button.
pub async fn apply_setting(
    engine: &Engine,
    user: &UserKey,
    setting: Setting,
    value: &str,
) -> Result<String, Error> {
    let mut style = engine.user(user).await?.style;
    let d = &mut style.defaults;
    // Buttons carry numbers we wrote; anything else is a forged or stale payload.
    let number = || value.parse::<u32>().ok();
    match (setting, number()) {
        (Setting::Aspect, _) => d.aspect = Some(request::parse_aspect(value)?),
        (Setting::Motion, Some(n)) => {
            d.motion = Some(request::check_motion(u8::try_from(n).unwrap_or(u8::MAX))?)
        }
        (Setting::Duration, Some(n)) => d.duration_secs = Some(request::check_duration(n as f32)?),
        (Setting::Fps, Some(n)) => d.fps = Some(request::check_fps(n)?),
        (Setting::Reset, _) => style.defaults = Default::default(),
        _ => return Ok(texts::button_expired()),
    }
    engine.set_style(user, style).await?;
    Ok(match setting {
        Setting::Reset => "Your defaults are reset.".to_string(),
        Setting::Duration => texts::setting_changed(setting.label(), &format!("{value} s")),
        Setting::Fps => texts::setting_changed(setting.label(), &format!("{value} fps")),
        _ => texts::setting_changed(setting.label(), value),
    })
}

/// /history: the text and the jobs it lists, newest first.
pub async fn history(engine: &Engine, user: &UserKey) -> Result<(String, Vec<JobId>), Error> {
    let jobs: Vec<Job> = engine
        .recent_jobs(Some(user), 50)
        .await?
        .into_iter()
        .filter(|j| matches!(j.state, JobState::Done { .. }))
        .take(HISTORY_LEN)
        .collect();
    let items: Vec<(u64, String)> = jobs
        .iter()
        .map(|j| (j.id.0, j.params.user_prompt.clone()))
        .collect();
    Ok((texts::history(&items), jobs.iter().map(|j| j.id).collect()))
}

/// /cancel: stops the user's newest job that has not finished.
pub async fn cancel(engine: &Engine, user: &UserKey) -> Result<String, Error> {
    let active = engine
        .recent_jobs(Some(user), 50)
        .await?
        .into_iter()
        .find(|j| !j.state.is_terminal());
    match active {
        None => Ok(texts::nothing_to_cancel()),
        Some(job) => {
            engine.cancel(job.id, user).await?;
            Ok(texts::cancelling(job.id.0))
        }
    }
}

/// /stats, for admins.
pub async fn stats(engine: &Engine) -> Result<String, Error> {
    let recent = engine.recent_jobs(None, 1000).await?;
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for job in &recent {
        match counts
            .iter_mut()
            .find(|(name, _)| *name == job.state.name())
        {
            Some((_, n)) => *n += 1,
            None => counts.push((job.state.name(), 1)),
        }
    }
    let health = format!("{:?}", engine.backend_health());
    Ok(texts::stats(engine.queue_len(), &health, &counts))
}

/// /ban and /unban, for admins: `arg` is the platform's numeric user id.
pub async fn ban(
    engine: &Engine,
    platform: Platform,
    command: &str,
    arg: &str,
    banned: bool,
) -> Result<String, Error> {
    let id = arg.trim();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) || id.len() > 20 {
        return Ok(texts::ban_usage(command));
    }
    engine
        .set_banned(&UserKey::new(platform, id), banned)
        .await?;
    Ok(texts::banned(id, banned))
}

#[cfg(test)]
mod tests {
    use loopsmith_engine::protocol::{
        Aspect, BackendChoice, OutputKind, Params, Platform, Timings,
    };

    use super::*;

    fn job(seed: u32, guidance: Option<f32>) -> Job {
        Job {
            id: JobId(5),
            user: UserKey::new(Platform::Telegram, "1"),
            origin: None,
            params: Params {
                prompt: "anime style, a cat".into(),
                user_prompt: "a cat".into(),
                negative_prompt: "blurry".into(),
                duration_secs: 4.0,
                fps: 24,
                aspect: Aspect::Tall,
                motion: 3,
                seed,
                guidance,
                style: "anime".into(),
                outputs: vec![OutputKind::WebmSticker, OutputKind::Mp4],
                backend: BackendChoice::Auto,
                fit: Default::default(),
                timing: Default::default(),
                seamless_loop: true,
                image: None,
            },
            state: JobState::Queued,
            backend: None,
            attempts: 1,
            timings: Timings::default(),
        }
    }

    #[test]
    fn a_reroll_changes_only_the_seed() {
        let original = job(42, None);
        let params = reroll(&original, 7);
        assert_eq!(params.seed, 7);
        assert_eq!(Params { seed: 42, ..params }, original.params);
        assert_eq!(reroll(&original, 42).seed, 43, "never the same seed again");
    }

    #[test]
    fn a_variation_keeps_the_seed_and_nudges_guidance_within_bounds() {
        let original = job(42, None);
        let params = variation(&original);
        assert_eq!(params.guidance, Some(9.0));
        assert_eq!(
            Params {
                guidance: None,
                ..params
            },
            original.params
        );
        assert_eq!(variation(&job(1, Some(19.5))).guidance, Some(18.0));
        assert_eq!(variation(&job(1, Some(0.0))).guidance, Some(1.5));
    }

    #[test]
    fn a_sticker_gets_an_emoji_from_its_prompt() {
        assert_eq!(sticker_emoji("a dancing 🦄 in space"), "🦄");
        assert_eq!(sticker_emoji("two Cats waving"), "🐱");
        assert_eq!(sticker_emoji("a campfire"), "🎬", "whole words only");
        assert_eq!(sticker_emoji("a red ball"), "🎬");
    }

    #[test]
    fn payloads_round_trip_and_fit_telegram() {
        let all = [
            Action::Reroll(JobId(u64::MAX)),
            Action::Vary(JobId(1)),
            Action::AddToPack(JobId(2)),
            Action::FullClip(JobId(3)),
            Action::Resend(JobId(4)),
            Action::Set(Setting::Aspect, "9:16".into()),
            Action::Set(Setting::Reset, "all".into()),
        ];
        for action in all {
            let data = action.encode();
            assert!(data.len() <= 64, "{data}");
            assert_eq!(Action::decode(&data), Some(action));
        }
        for junk in [
            "", "rr", "rr:", "rr:x", "zz:1", "set:xx:1", "set:ar", "rr:-1",
        ] {
            assert_eq!(Action::decode(junk), None, "{junk}");
        }
    }
}
