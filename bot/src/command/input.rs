//! Reading a chat message as a command: `/name args`, `/name@bot args` in groups. Slash
//! commands on Discord arrive already split and map onto the same [`Command`].

/// Every command the bots understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Start,
    Help,
    /// `/sticker <prompt with options>`.
    Sticker(String),
    Style(String),
    Styles,
    Suffix(String),
    Character(String),
    Seed(String),
    Settings,
    History,
    Cancel,
    Pack,
    Stats,
    Ban(String),
    Unban(String),
    Budget,
    Unknown(String),
}

/// What a message starting with `/` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Command(Command),
    /// `/cmd@otherbot`: meant for another bot in the group; stay quiet.
    ForAnotherBot,
}

/// Reads `text` as a command, or `None` when it is not one. `bot_username` is without the `@`.
pub fn read(text: &str, bot_username: &str) -> Option<Read> {
    let text = text.trim_start();
    let rest = text.strip_prefix('/')?;
    let (head, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let (name, target) = match head.split_once('@') {
        Some((name, target)) => (name, Some(target)),
        None => (head, None),
    };
    if target.is_some_and(|t| !t.eq_ignore_ascii_case(bot_username)) {
        return Some(Read::ForAnotherBot);
    }
    if name.is_empty() {
        return None;
    }
    let args = args.to_string();
    Some(Read::Command(match name.to_ascii_lowercase().as_str() {
        "start" => Command::Start,
        "help" => Command::Help,
        "sticker" | "s" | "make" => Command::Sticker(args),
        "style" => Command::Style(args),
        "styles" => Command::Styles,
        "suffix" => Command::Suffix(args),
        "character" => Command::Character(args),
        "seed" => Command::Seed(args),
        "settings" => Command::Settings,
        "history" => Command::History,
        "cancel" => Command::Cancel,
        "pack" => Command::Pack,
        "stats" => Command::Stats,
        "ban" => Command::Ban(args),
        "unban" => Command::Unban(args),
        "budget" => Command::Budget,
        _ => Command::Unknown(name.chars().take(32).collect()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_with_and_without_the_bot_name() {
        assert_eq!(
            read("/sticker a cat -ar 9:16", "LoopBot"),
            Some(Read::Command(Command::Sticker("a cat -ar 9:16".into())))
        );
        assert_eq!(
            read("/sticker@loopbot   a cat ", "LoopBot"),
            Some(Read::Command(Command::Sticker("a cat".into())))
        );
        assert_eq!(
            read("/sticker@otherbot a cat", "LoopBot"),
            Some(Read::ForAnotherBot)
        );
        assert_eq!(read("/HELP", "b"), Some(Read::Command(Command::Help)));
        assert_eq!(
            read("/frobnicate x", "b"),
            Some(Read::Command(Command::Unknown("frobnicate".into())))
        );
        assert_eq!(read("a cat", "b"), None);
        assert_eq!(read("/", "b"), None);
        assert_eq!(read("/@b", "b"), None);
        assert_eq!(
            read("/seed\nlock 42", "b"),
            Some(Read::Command(Command::Seed("lock 42".into())))
        );
    }
}
