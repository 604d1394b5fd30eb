//! The entry point of the `options` cargo-fuzz target (fuzz/fuzz_targets/options.rs), shared
//! with the test below that replays the committed seeds on stable. Built only for tests or
//! with the `fuzzing` feature.

use crate::command::input::{self, Command, Read};
use crate::command::options::{self, OptionError, Parsed};

/// The bot's username in groups (`/sticker@LoopBot`).
const BOT: &str = "LoopBot";
/// Telegram's longest message; an error reply must fit in one.
const MAX_REPLY_CHARS: usize = 4096;

/// Reads `data` as a user's chat message, as Telegram's handler does: a `/sticker` command's
/// arguments, or else the whole message (a private chat's prompt), through the option parser.
/// Bytes that are not UTF-8 are converted lossily. After the first NUL byte (which chat
/// platforms do not deliver) each NUL-separated `name=value` part is an option given apart
/// from the text, as Discord's typed slash-command options are.
///
/// Panics only on a bug: a panic inside the parser, or an error reply that is empty or longer
/// than a chat message may be.
pub fn chat_message(data: &[u8]) -> Result<Parsed, OptionError> {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let message = parts.next().unwrap_or_default();
    let apart: Vec<(&str, String)> = parts
        .map(|part| match part.split_once('=') {
            Some((name, value)) => (name, value.to_string()),
            None => (part, String::new()),
        })
        .collect();
    let prompt = match input::read(message, BOT) {
        Some(Read::Command(Command::Sticker(args))) => args,
        _ => message.to_string(),
    };
    let result = options::parse_with(&prompt, &apart);
    if let Err(e) = &result {
        let reply = e.to_string();
        assert!(!reply.is_empty(), "an empty reply for {e:?}");
        assert!(
            reply.chars().count() <= MAX_REPLY_CHARS,
            "a reply of {} characters",
            reply.chars().count()
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Every seed of the fuzz target is read without a panic; `ok-*` seeds parse, `err-*` seeds
    /// are refused. Crashes the fuzzer found are kept as seeds, so they stay fixed on stable.
    #[test]
    fn fuzz_seeds_parse_or_are_refused() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/options");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("the seed folder") {
            let path = entry.expect("a seed").path();
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .to_string();
            let data = std::fs::read(&path).expect("a readable seed");
            let result = chat_message(&data);
            match name.split('-').next() {
                Some("ok") => assert!(result.is_ok(), "{name}: {:?}", result.err()),
                Some("err") => assert!(result.is_err(), "{name} parsed: {result:?}"),
                _ => panic!("{name}: seed names start with ok- or err-"),
            }
            seen += 1;
        }
        assert!(seen > 0, "no seeds in {}", dir.display());
    }
}
