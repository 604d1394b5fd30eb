//! What a surface hands the engine, and the checks every request passes before it becomes a
//! job. Each refusal's `Display` is one sentence a chat user understands.

use loopsmith_protocol::{Aspect, Overrides, Params, UserKey};
use unicode_normalization::UnicodeNormalization;

use crate::image_input::InputImage;

pub const MAX_PROMPT_CHARS: usize = 1000;
pub const MAX_SUFFIX_CHARS: usize = 300;
pub const DURATION_SECS: (f32, f32) = (3.0, 10.0);
pub const FPS: (u32, u32) = (8, 30);
pub const MAX_MOTION: u8 = 4;
pub const GUIDANCE: (f32, f32) = (0.0, 20.0);

/// One request for a sticker, as a surface builds it.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub user: UserKey,
    pub prompt: String,
    pub overrides: Overrides,
    /// The platform event id (Telegram update id, Discord interaction id), so a replayed event
    /// never makes a second job.
    pub origin: Option<String>,
    /// A picture to animate (image-to-video), already checked by [`crate::image_input::inspect`].
    pub image: Option<InputImage>,
}

impl GenerationRequest {
    pub fn new(user: UserKey, prompt: impl Into<String>) -> Self {
        GenerationRequest {
            user,
            prompt: prompt.into(),
            overrides: Overrides::default(),
            origin: None,
            image: None,
        }
    }
}

/// A request option out of bounds, or a prompt that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    #[error("Please describe the sticker you want; the prompt is empty.")]
    EmptyPrompt,
    #[error("Prompts can be at most {MAX_PROMPT_CHARS} characters; yours has {chars}.")]
    PromptTooLong { chars: usize },
    #[error("The negative prompt can be at most {MAX_PROMPT_CHARS} characters; yours has {chars}.")]
    NegativeTooLong { chars: usize },
    #[error("Duration must be between 3 and 10 seconds; you asked for {asked}.")]
    Duration { asked: f32 },
    #[error("Frame rate must be between 8 and 30 fps; you asked for {asked}.")]
    Fps { asked: u32 },
    #[error("Motion must be between 0 and 4; you asked for {asked}.")]
    Motion { asked: u8 },
    #[error("Guidance must be between 0 and 20; you asked for {asked}.")]
    Guidance { asked: f32 },
    #[error(
        "Aspect ratio must be one of 1:1, 16:9, 9:16, 4:5, 5:4, 3:2 or 2:3; you asked for {asked}."
    )]
    Aspect { asked: String },
    #[error("Seed must be a whole number from 0 to 4294967295; you gave {asked}.")]
    Seed { asked: String },
    #[error("There is no style called \"{asked}\"; try one of: {known}.")]
    UnknownStyle { asked: String, known: String },
    #[error("The {what} can be at most {MAX_SUFFIX_CHARS} characters; yours has {chars}.")]
    StyleTextTooLong { what: &'static str, chars: usize },
    #[error("Ask for at least one output format.")]
    NoOutputs,
}

/// Trims, NFKC-normalises and cleans a prompt: control and zero-width characters go, runs of
/// whitespace become one space. Then checks its length in characters.
pub fn normalize_prompt(raw: &str) -> Result<String, ValidationError> {
    let text = clean_text(raw);
    let chars = text.chars().count();
    if chars == 0 {
        return Err(ValidationError::EmptyPrompt);
    }
    if chars > MAX_PROMPT_CHARS {
        return Err(ValidationError::PromptTooLong { chars });
    }
    Ok(text)
}

/// Cleans a negative prompt as prompts are cleaned; it may be empty.
pub fn normalize_negative(raw: &str) -> Result<String, ValidationError> {
    let text = clean_text(raw);
    let chars = text.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(ValidationError::NegativeTooLong { chars });
    }
    Ok(text)
}

/// The cleaning `normalize_prompt` does, without length rules (for negative prompts, suffixes).
pub fn clean_text(raw: &str) -> String {
    let normalized: String = raw.nfkc().collect();
    let mut out = String::with_capacity(normalized.len());
    let mut pending_space = false;
    for c in normalized.chars() {
        if c.is_whitespace() || c.is_control() {
            // Controls other than whitespace are dropped; whitespace collapses to one space.
            pending_space |= c.is_whitespace();
            continue;
        }
        if matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}') {
            continue;
        }
        if pending_space && !out.is_empty() {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
    }
    out
}

pub fn check_duration(asked: f32) -> Result<f32, ValidationError> {
    if (DURATION_SECS.0..=DURATION_SECS.1).contains(&asked) {
        Ok(asked)
    } else {
        Err(ValidationError::Duration { asked })
    }
}

pub fn check_fps(asked: u32) -> Result<u32, ValidationError> {
    if (FPS.0..=FPS.1).contains(&asked) {
        Ok(asked)
    } else {
        Err(ValidationError::Fps { asked })
    }
}

pub fn check_motion(asked: u8) -> Result<u8, ValidationError> {
    if asked <= MAX_MOTION {
        Ok(asked)
    } else {
        Err(ValidationError::Motion { asked })
    }
}

pub fn check_guidance(asked: f32) -> Result<f32, ValidationError> {
    if (GUIDANCE.0..=GUIDANCE.1).contains(&asked) {
        Ok(asked)
    } else {
        Err(ValidationError::Guidance { asked })
    }
}

/// A user's value as an answer repeats it: at most 24 characters, then "…", so a 5,000
/// character value makes a one-line answer, not a wall of text.
pub fn echo(value: &str) -> String {
    const MAX: usize = 24;
    if value.chars().count() <= MAX {
        value.to_string()
    } else {
        let mut short: String = value.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

/// Parses an aspect ratio as a user types it ("9:16").
pub fn parse_aspect(asked: &str) -> Result<Aspect, ValidationError> {
    asked.parse().map_err(|_| ValidationError::Aspect {
        asked: echo(asked.trim()),
    })
}

/// Parses a seed as a user types it.
pub fn parse_seed(asked: &str) -> Result<u32, ValidationError> {
    asked.trim().parse().map_err(|_| ValidationError::Seed {
        asked: echo(asked.trim()),
    })
}

/// Checks parameters resolved earlier (a re-roll of a stored job) against today's bounds.
pub fn check_params(params: &Params) -> Result<(), ValidationError> {
    normalize_prompt(&params.prompt)?;
    normalize_negative(&params.negative_prompt)?;
    check_duration(params.duration_secs)?;
    check_fps(params.fps)?;
    check_motion(params.motion)?;
    if let Some(g) = params.guidance {
        check_guidance(g)?;
    }
    if params.outputs.is_empty() {
        return Err(ValidationError::NoOutputs);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_is_trimmed_normalised_and_cleaned() {
        assert_eq!(
            normalize_prompt("  a red ball  ").as_deref(),
            Ok("a red ball")
        );
        // NFKC folds full-width letters and ligatures.
        assert_eq!(normalize_prompt("ｒｅｄ ﬁsh").as_deref(), Ok("red fish"));
        assert_eq!(
            normalize_prompt("a\u{200B}b\u{0007}c\n\n d").as_deref(),
            Ok("abc d")
        );
        assert_eq!(
            normalize_prompt("\u{200B}\u{FEFF} \t\n"),
            Err(ValidationError::EmptyPrompt)
        );
        assert_eq!(normalize_prompt(""), Err(ValidationError::EmptyPrompt));
    }

    #[test]
    fn prompt_length_bounds_count_characters_not_bytes() {
        let exactly = "é".repeat(MAX_PROMPT_CHARS);
        assert_eq!(
            normalize_prompt(&exactly).map(|p| p.chars().count()),
            Ok(1000)
        );
        assert_eq!(normalize_prompt("x"), Ok("x".to_string()));
        let over = "🎈".repeat(1204);
        let err = normalize_prompt(&over).unwrap_err();
        assert_eq!(err, ValidationError::PromptTooLong { chars: 1204 });
        assert_eq!(
            err.to_string(),
            "Prompts can be at most 1000 characters; yours has 1204."
        );
    }

    #[test]
    fn negative_prompts_are_cleaned_and_bounded() {
        assert_eq!(
            normalize_negative(" blurry,\u{200B} text ").as_deref(),
            Ok("blurry, text")
        );
        assert_eq!(normalize_negative("").as_deref(), Ok(""));
        let err = normalize_negative(&"n".repeat(1001)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "The negative prompt can be at most 1000 characters; yours has 1001."
        );
    }

    #[test]
    fn every_bound_accepts_its_edges_and_refuses_past_them() {
        assert_eq!(check_duration(3.0), Ok(3.0));
        assert_eq!(check_duration(10.0), Ok(10.0));
        assert_eq!(
            check_duration(12.0).unwrap_err().to_string(),
            "Duration must be between 3 and 10 seconds; you asked for 12."
        );
        assert_eq!(
            check_duration(2.5).unwrap_err().to_string(),
            "Duration must be between 3 and 10 seconds; you asked for 2.5."
        );
        assert!(check_duration(f32::NAN).is_err());

        assert_eq!(check_fps(8), Ok(8));
        assert_eq!(check_fps(30), Ok(30));
        assert_eq!(
            check_fps(7).unwrap_err().to_string(),
            "Frame rate must be between 8 and 30 fps; you asked for 7."
        );
        assert_eq!(
            check_fps(60).unwrap_err().to_string(),
            "Frame rate must be between 8 and 30 fps; you asked for 60."
        );

        assert_eq!(check_motion(0), Ok(0));
        assert_eq!(check_motion(4), Ok(4));
        assert_eq!(
            check_motion(5).unwrap_err().to_string(),
            "Motion must be between 0 and 4; you asked for 5."
        );

        assert_eq!(check_guidance(0.0), Ok(0.0));
        assert_eq!(check_guidance(20.0), Ok(20.0));
        assert_eq!(
            check_guidance(25.0).unwrap_err().to_string(),
            "Guidance must be between 0 and 20; you asked for 25."
        );
        assert!(check_guidance(-0.5).is_err());
    }

    #[test]
    fn aspect_and_seed_parse_as_typed() {
        assert_eq!(parse_aspect(" 9:16 "), Ok(Aspect::Tall));
        assert_eq!(
            parse_aspect("7:3").unwrap_err().to_string(),
            "Aspect ratio must be one of 1:1, 16:9, 9:16, 4:5, 5:4, 3:2 or 2:3; you asked for 7:3."
        );
        assert_eq!(parse_seed("42"), Ok(42));
        assert_eq!(parse_seed("4294967295"), Ok(u32::MAX));
        assert_eq!(
            parse_seed("4294967296").unwrap_err().to_string(),
            "Seed must be a whole number from 0 to 4294967295; you gave 4294967296."
        );
        assert!(parse_seed("-1").is_err());
    }
}
