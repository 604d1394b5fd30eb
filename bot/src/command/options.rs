//! Prompts with inline options, in the style of Pika's Discord bot:
//! `a red fox running -ar 9:16 -motion 3 -fps 24 -seed 42 -neg "blurry, text" -style anime -duration 5`.
//!
//! Words that are not options make the prompt, in order. An option's value is the next word,
//! except `-neg` and `-style`, which take every word up to the next option (or a quoted
//! phrase, with straight or curly quotes). Every value is checked with the engine's own rules,
//! so the messages match what the engine would say.

use loopsmith_engine::protocol::{Fit, Overrides, Timing};
use loopsmith_engine::request::{self, ValidationError};

/// The options, with their aliases, as shown in help texts.
pub const OPTIONS: [(&str, &str); 9] = [
    ("-ar", "aspect ratio: 1:1, 16:9, 9:16, 4:5, 5:4, 3:2 or 2:3"),
    ("-motion", "0 (still) to 4 (lively)"),
    ("-fps", "frames per second, 8 to 30"),
    ("-duration", "seconds, 3 to 10"),
    ("-seed", "a number, for the same result again"),
    ("-neg", "what to keep out of the picture"),
    ("-style", "a style preset"),
    ("-gs", "guidance scale, 0 to 20"),
    ("-fit", "pad or crop, how the clip goes into the sticker"),
];

/// A prompt and the options given with it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parsed {
    pub prompt: String,
    pub overrides: Overrides,
}

/// Why a message could not be read as a prompt with options. Each is one sentence for chat.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionError {
    #[error("I don't know the option {0}; the options are {list}.", list = names())]
    Unknown(String),
    #[error("{option} needs a value, like {example}.")]
    MissingValue {
        option: &'static str,
        example: &'static str,
    },
    #[error("You gave {0} twice; give it once.")]
    Repeated(&'static str),
    #[error("{option} must be a number; \"{value}\" isn't one.")]
    NotANumber { option: &'static str, value: String },
    #[error("-fit must be pad or crop; you gave \"{0}\".")]
    BadFit(String),
    #[error("A quote is opened but never closed.")]
    UnclosedQuote,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

fn names() -> String {
    OPTIONS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which option a word names, with its canonical spelling.
fn option_name(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().trim_start_matches('-') {
        "ar" | "aspect" => "-ar",
        "motion" => "-motion",
        "fps" => "-fps",
        "duration" | "dur" => "-duration",
        "seed" => "-seed",
        "neg" | "no" => "-neg",
        "style" => "-style",
        "gs" | "guidance" => "-gs",
        "fit" => "-fit",
        "speedup" | "speed-up" => "-speedup",
        _ => return None,
    })
}

/// A word that looks like an option: a dash (or two), then a letter. "-5°C" or "-" stay text.
fn looks_like_option(word: &str) -> bool {
    let rest = word.trim_start_matches('-');
    word.starts_with('-')
        && word.len() - rest.len() <= 2
        && rest.chars().next().is_some_and(char::is_alphabetic)
}

/// Splits on whitespace, keeping quoted phrases together (quotes removed).
fn words(text: &str) -> Result<Vec<(String, bool)>, OptionError> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut in_quote: Option<char> = None;
    for c in text.chars() {
        match (in_quote, c) {
            (None, '"' | '“' | '«') => {
                in_quote = Some(match c {
                    '“' => '”',
                    '«' => '»',
                    _ => '"',
                });
                quoted = true;
            }
            (Some(close), c) if c == close => in_quote = None,
            (None, c) if c.is_whitespace() => {
                if !current.is_empty() || quoted {
                    out.push((std::mem::take(&mut current), quoted));
                }
                quoted = false;
            }
            (_, c) => current.push(c),
        }
    }
    if in_quote.is_some() {
        return Err(OptionError::UnclosedQuote);
    }
    if !current.is_empty() || quoted {
        out.push((current, quoted));
    }
    Ok(out)
}

/// Reads a message as a prompt with options.
pub fn parse(text: &str) -> Result<Parsed, OptionError> {
    parse_with(text, &[])
}

/// Reads a prompt with options plus options given apart from it (Discord's typed slash
/// command options, as (name, value) with names like `-seed`). One given both ways is
/// refused as given twice, as it would be in one message.
pub fn parse_with(text: &str, extra: &[(&str, String)]) -> Result<Parsed, OptionError> {
    let words = words(text)?;
    let mut prompt = Vec::new();
    let mut parsed = Parsed::default();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let (word, quoted) = &words[i];
        i += 1;
        if *quoted || !looks_like_option(word) {
            prompt.push(word.clone());
            continue;
        }
        let option = option_name(word).ok_or_else(|| OptionError::Unknown(request::echo(word)))?;
        if seen.contains(&option) {
            return Err(OptionError::Repeated(option));
        }
        seen.push(option);
        if option == "-speedup" {
            parsed.overrides.timing = Some(Timing::SpeedUp);
            continue;
        }
        // -neg and -style take words up to the next option; the rest take one word.
        let takes_phrase = matches!(option, "-neg" | "-style");
        let mut value = Vec::new();
        while i < words.len() && (words[i].1 || !looks_like_option(&words[i].0)) {
            value.push(words[i].0.clone());
            i += 1;
            if !takes_phrase {
                break;
            }
        }
        if value.is_empty() {
            return Err(OptionError::MissingValue {
                option,
                example: example(option),
            });
        }
        apply(&mut parsed.overrides, option, &value.join(" "))?;
    }
    for (name, value) in extra {
        let option = option_name(name).ok_or_else(|| OptionError::Unknown(name.to_string()))?;
        if seen.contains(&option) {
            return Err(OptionError::Repeated(option));
        }
        seen.push(option);
        if option == "-speedup" {
            parsed.overrides.timing = Some(Timing::SpeedUp);
        } else {
            apply(&mut parsed.overrides, option, value.trim())?;
        }
    }
    parsed.prompt = prompt.join(" ");
    request::normalize_prompt(&parsed.prompt)?;
    Ok(parsed)
}

fn example(option: &str) -> &'static str {
    match option {
        "-ar" => "-ar 9:16",
        "-motion" => "-motion 3",
        "-fps" => "-fps 24",
        "-duration" => "-duration 5",
        "-seed" => "-seed 42",
        "-neg" => "-neg blurry, text",
        "-style" => "-style anime",
        "-gs" => "-gs 7.5",
        _ => "-fit crop",
    }
}

fn number<T: std::str::FromStr>(option: &'static str, value: &str) -> Result<T, OptionError> {
    value.parse().map_err(|_| OptionError::NotANumber {
        option,
        value: request::echo(value),
    })
}

fn apply(o: &mut Overrides, option: &'static str, value: &str) -> Result<(), OptionError> {
    match option {
        "-ar" => o.params.aspect = Some(request::parse_aspect(value)?),
        "-motion" => {
            let motion: u32 = number(option, value)?;
            o.params.motion = Some(request::check_motion(
                u8::try_from(motion).unwrap_or(u8::MAX),
            )?);
        }
        "-fps" => o.params.fps = Some(request::check_fps(number(option, value)?)?),
        "-duration" => {
            o.params.duration_secs = Some(request::check_duration(number(option, value)?)?)
        }
        "-seed" => o.seed = Some(request::parse_seed(value)?),
        "-neg" => o.params.negative_prompt = Some(value.to_string()),
        "-style" => o.style = Some(value.to_ascii_lowercase()),
        "-gs" => o.params.guidance = Some(request::check_guidance(number(option, value)?)?),
        _ => {
            o.fit = Some(match value.to_ascii_lowercase().as_str() {
                "pad" => Fit::Pad,
                "crop" => Fit::Crop,
                _ => return Err(OptionError::BadFit(request::echo(value))),
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_given_apart_join_those_in_the_text() {
        let parsed = parse_with(
            "a fox -ar 9:16",
            &[("-seed", "42".into()), ("-neg", "blurry, text".into())],
        )
        .expect("valid");
        assert_eq!(parsed.prompt, "a fox");
        assert_eq!(parsed.overrides.seed, Some(42));
        assert_eq!(
            parsed.overrides.params.negative_prompt.as_deref(),
            Some("blurry, text")
        );
        assert!(parsed.overrides.params.aspect.is_some());
        assert_eq!(
            parse_with("a fox -seed 1", &[("-seed", "2".into())]),
            Err(OptionError::Repeated("-seed"))
        );
        assert!(matches!(
            parse_with("a fox", &[("-motion", "9".into())]),
            Err(OptionError::Invalid(_))
        ));
        assert_eq!(
            parse_with("a fox", &[("-zoom", "2".into())]),
            Err(OptionError::Unknown("-zoom".into()))
        );
    }
}
