//! What is sent to Pika: the four v2.2 endpoints and their inputs, built from a job's
//! resolved parameters (text-to-video) or given directly (image-based endpoints).
//!
//! Durations are sent as integers (the Aug 2026 schema). Pika makes 5 s or 10 s clips, so a
//! sticker of up to 5 s asks for 5 and the clip is cut afterwards.

use bytes::Bytes;
use loopsmith_protocol::{Aspect, Params};
use serde_json::{Map, Value, json};

use super::error::PikaError;

pub const TEXT_TO_VIDEO: &str = "fal-ai/pika/v2.2/text-to-video";
pub const IMAGE_TO_VIDEO: &str = "fal-ai/pika/v2.2/image-to-video";
pub const PIKASCENES: &str = "fal-ai/pika/v2.2/pikascenes";
pub const PIKAFRAMES: &str = "fal-ai/pika/v2.2/pikaframes";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    P720,
    P1080,
}

impl Resolution {
    pub fn parse(text: &str) -> Option<Resolution> {
        match text {
            "720p" => Some(Resolution::P720),
            "1080p" => Some(Resolution::P1080),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::P720 => "720p",
            Resolution::P1080 => "1080p",
        }
    }
}

/// An image input: a URL fal can fetch, or bytes to upload to fal storage first.
#[derive(Clone, PartialEq, Eq)]
pub enum ImageSource {
    Url(String),
    Bytes {
        bytes: Bytes,
        /// e.g. `image/png`.
        content_type: String,
        file_name: String,
    },
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageSource::Url(url) => f.debug_tuple("Url").field(url).finish(),
            ImageSource::Bytes {
                bytes, file_name, ..
            } => write!(f, "Bytes({file_name}, {} bytes)", bytes.len()),
        }
    }
}

/// How Pikascenes combines its ingredient images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IngredientsMode {
    #[default]
    Precise,
    Creative,
}

/// One Pikaframes transition, between keyframe n and n+1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub duration_secs: u32,
    pub prompt: String,
}

/// What every endpoint shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    /// Required except for Pikaframes, where an empty prompt is left out.
    pub prompt: String,
    /// Empty leaves the endpoint's default.
    pub negative_prompt: String,
    pub seed: u32,
    pub resolution: Resolution,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PikaInput {
    TextToVideo {
        common: Common,
        aspect: Aspect,
        duration_secs: u32,
    },
    ImageToVideo {
        common: Common,
        image: ImageSource,
        duration_secs: u32,
    },
    Scenes {
        common: Common,
        images: Vec<ImageSource>,
        mode: IngredientsMode,
        aspect: Aspect,
        duration_secs: u32,
    },
    Frames {
        common: Common,
        keyframes: Vec<ImageSource>,
        /// One per gap between keyframes; empty gives Pika's 5 s each.
        transitions: Vec<Transition>,
    },
}

/// The clip length to ask for: Pika offers 5 s and 10 s.
pub fn clip_length(duration_secs: f32) -> Result<u32, PikaError> {
    // NaN is neither above nor below zero; it is refused here too.
    if duration_secs.is_nan() || duration_secs <= 0.0 {
        return Err(PikaError::Input(
            "The clip needs a length above zero.".into(),
        ));
    }
    if duration_secs <= 5.0 {
        Ok(5)
    } else if duration_secs <= 10.0 {
        Ok(10)
    } else {
        Err(PikaError::Input(format!(
            "Pika makes clips of at most 10 seconds; {duration_secs} seconds were asked for."
        )))
    }
}

impl PikaInput {
    /// From a job's resolved parameters: text-to-video, or image-to-video when the job
    /// animates a picture (`image` holds its bytes, read from the store).
    pub fn from_params(
        params: &Params,
        resolution: Resolution,
        image: Option<ImageSource>,
    ) -> Result<PikaInput, PikaError> {
        let common = Common {
            prompt: params.prompt.clone(),
            negative_prompt: params.negative_prompt.clone(),
            seed: params.seed,
            resolution,
        };
        let duration_secs = clip_length(params.duration_secs)?;
        Ok(match image {
            // Image-to-video takes no aspect ratio: the picture's own shape decides.
            Some(image) => PikaInput::ImageToVideo {
                common,
                image,
                duration_secs,
            },
            None => PikaInput::TextToVideo {
                common,
                aspect: params.aspect,
                duration_secs,
            },
        })
    }

    pub fn endpoint(&self) -> &'static str {
        match self {
            PikaInput::TextToVideo { .. } => TEXT_TO_VIDEO,
            PikaInput::ImageToVideo { .. } => IMAGE_TO_VIDEO,
            PikaInput::Scenes { .. } => PIKASCENES,
            PikaInput::Frames { .. } => PIKAFRAMES,
        }
    }

    fn common(&self) -> &Common {
        match self {
            PikaInput::TextToVideo { common, .. }
            | PikaInput::ImageToVideo { common, .. }
            | PikaInput::Scenes { common, .. }
            | PikaInput::Frames { common, .. } => common,
        }
    }

    pub fn resolution(&self) -> Resolution {
        self.common().resolution
    }

    /// Seconds of video bought: what the price is reckoned on.
    pub fn seconds(&self) -> u32 {
        match self {
            PikaInput::TextToVideo { duration_secs, .. }
            | PikaInput::ImageToVideo { duration_secs, .. }
            | PikaInput::Scenes { duration_secs, .. } => *duration_secs,
            PikaInput::Frames {
                keyframes,
                transitions,
                ..
            } => {
                if transitions.is_empty() {
                    5 * keyframes.len().saturating_sub(1) as u32
                } else {
                    transitions.iter().map(|t| t.duration_secs).sum()
                }
            }
        }
    }

    /// Images to upload, in the order [`PikaInput::to_json`] expects their URLs.
    pub fn images(&self) -> Vec<&ImageSource> {
        match self {
            PikaInput::TextToVideo { .. } => vec![],
            PikaInput::ImageToVideo { image, .. } => vec![image],
            PikaInput::Scenes { images, .. } => images.iter().collect(),
            PikaInput::Frames { keyframes, .. } => keyframes.iter().collect(),
        }
    }

    /// Refuses what the endpoint's schema would refuse, before anything is paid for.
    pub fn validate(&self) -> Result<(), PikaError> {
        let bad = |text: String| Err(PikaError::Input(text));
        let common = self.common();
        let needs_prompt = !matches!(self, PikaInput::Frames { .. });
        if needs_prompt && common.prompt.trim().is_empty() {
            return bad("Pika needs a prompt.".into());
        }
        match self {
            PikaInput::TextToVideo { duration_secs, .. }
            | PikaInput::ImageToVideo { duration_secs, .. }
            | PikaInput::Scenes { duration_secs, .. }
                if ![5, 10].contains(duration_secs) =>
            {
                bad(format!(
                    "Pika makes 5 or 10 second clips, not {duration_secs}."
                ))
            }
            PikaInput::Scenes { images, .. } if images.is_empty() => {
                bad("Pikascenes needs at least one ingredient image.".into())
            }
            PikaInput::Frames {
                keyframes,
                transitions,
                ..
            } => {
                if !(2..=5).contains(&keyframes.len()) {
                    return bad(format!(
                        "Pikaframes takes 2 to 5 keyframes, not {}.",
                        keyframes.len()
                    ));
                }
                if !transitions.is_empty() && transitions.len() != keyframes.len() - 1 {
                    return bad(format!(
                        "{} keyframes need {} transitions, not {}.",
                        keyframes.len(),
                        keyframes.len() - 1,
                        transitions.len()
                    ));
                }
                if transitions.iter().any(|t| t.duration_secs == 0) {
                    return bad("Every Pikaframes transition needs a length above zero.".into());
                }
                if self.seconds() > 25 {
                    return bad(format!(
                        "Pikaframes makes at most 25 seconds; these transitions add up to {}.",
                        self.seconds()
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The endpoint's JSON input; `image_urls` are the URLs of [`PikaInput::images`], in order.
    pub fn to_json(&self, image_urls: &[String]) -> Value {
        let common = self.common();
        let mut body = Map::new();
        if !common.prompt.trim().is_empty() {
            body.insert("prompt".into(), json!(common.prompt));
        }
        if !common.negative_prompt.trim().is_empty() {
            body.insert("negative_prompt".into(), json!(common.negative_prompt));
        }
        body.insert("seed".into(), json!(common.seed));
        body.insert("resolution".into(), json!(common.resolution.as_str()));
        match self {
            PikaInput::TextToVideo {
                aspect,
                duration_secs,
                ..
            } => {
                body.insert("aspect_ratio".into(), json!(aspect.to_string()));
                body.insert("duration".into(), json!(duration_secs));
            }
            PikaInput::ImageToVideo { duration_secs, .. } => {
                body.insert("image_url".into(), json!(image_urls.first()));
                body.insert("duration".into(), json!(duration_secs));
            }
            PikaInput::Scenes {
                mode,
                aspect,
                duration_secs,
                ..
            } => {
                body.insert("image_urls".into(), json!(image_urls));
                body.insert(
                    "ingredients_mode".into(),
                    json!(match mode {
                        IngredientsMode::Precise => "precise",
                        IngredientsMode::Creative => "creative",
                    }),
                );
                body.insert("aspect_ratio".into(), json!(aspect.to_string()));
                body.insert("duration".into(), json!(duration_secs));
            }
            PikaInput::Frames { transitions, .. } => {
                body.insert("image_urls".into(), json!(image_urls));
                if !transitions.is_empty() {
                    let list: Vec<Value> = transitions
                        .iter()
                        .map(|t| json!({"duration": t.duration_secs, "prompt": t.prompt}))
                        .collect();
                    body.insert("transitions".into(), Value::Array(list));
                }
            }
        }
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(prompt: &str) -> Common {
        Common {
            prompt: prompt.into(),
            negative_prompt: String::new(),
            seed: 42,
            resolution: Resolution::P720,
        }
    }

    #[test]
    fn short_stickers_ask_for_five_seconds_and_long_ones_for_ten() {
        assert_eq!(clip_length(1.5).expect("ok"), 5);
        assert_eq!(clip_length(3.0).expect("ok"), 5);
        assert_eq!(clip_length(5.0).expect("ok"), 5);
        assert_eq!(clip_length(5.1).expect("ok"), 10);
        assert!(clip_length(10.5).is_err());
        assert!(clip_length(0.0).is_err());
        assert!(clip_length(f32::NAN).is_err());
    }

    #[test]
    fn text_to_video_sends_integer_durations_and_the_aspect() {
        let input = PikaInput::TextToVideo {
            common: Common {
                negative_prompt: "blurry".into(),
                ..common("a cat")
            },
            aspect: Aspect::Tall,
            duration_secs: 5,
        };
        assert_eq!(
            input.to_json(&[]),
            json!({"prompt":"a cat","negative_prompt":"blurry","seed":42,"resolution":"720p",
                   "aspect_ratio":"9:16","duration":5})
        );
        assert_eq!(input.endpoint(), TEXT_TO_VIDEO);
    }

    #[test]
    fn image_endpoints_use_the_uploaded_urls() {
        let image = ImageSource::Url("https://x/a.png".into());
        let scenes = PikaInput::Scenes {
            common: common("two friends"),
            images: vec![image.clone(), image.clone()],
            mode: IngredientsMode::Creative,
            aspect: Aspect::Square,
            duration_secs: 10,
        };
        let urls = vec!["u1".to_string(), "u2".to_string()];
        let body = scenes.to_json(&urls);
        assert_eq!(body["image_urls"], json!(["u1", "u2"]));
        assert_eq!(body["ingredients_mode"], "creative");
        assert_eq!(body["duration"], 10);

        let frames = PikaInput::Frames {
            common: common(""),
            keyframes: vec![image.clone(), image.clone(), image.clone()],
            transitions: vec![
                Transition {
                    duration_secs: 5,
                    prompt: "zoom in".into(),
                },
                Transition {
                    duration_secs: 3,
                    prompt: "spin".into(),
                },
            ],
        };
        frames.validate().expect("valid");
        assert_eq!(frames.seconds(), 8);
        let body = frames.to_json(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(
            body.get("prompt"),
            None,
            "an empty global prompt is left out"
        );
        assert_eq!(body.get("duration"), None);
        assert_eq!(
            body["transitions"],
            json!([{"duration":5,"prompt":"zoom in"},{"duration":3,"prompt":"spin"}])
        );
    }

    #[test]
    fn inputs_pika_would_refuse_are_refused_before_paying() {
        let image = ImageSource::Url("https://x/a.png".into());
        let frames = |n: usize, t: Vec<u32>| PikaInput::Frames {
            common: common(""),
            keyframes: vec![image.clone(); n],
            transitions: t
                .into_iter()
                .map(|d| Transition {
                    duration_secs: d,
                    prompt: String::new(),
                })
                .collect(),
        };
        assert!(frames(1, vec![]).validate().is_err());
        assert!(frames(6, vec![]).validate().is_err());
        assert!(
            frames(3, vec![5]).validate().is_err(),
            "one transition short"
        );
        assert!(frames(3, vec![20, 10]).validate().is_err(), "over 25 s");
        assert!(frames(5, vec![]).validate().is_ok(), "4 × 5 s default");
        let no_prompt = PikaInput::TextToVideo {
            common: common("  "),
            aspect: Aspect::Square,
            duration_secs: 5,
        };
        assert!(no_prompt.validate().is_err());
    }
}
