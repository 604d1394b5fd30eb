use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Frame shape of a clip. Stickers are fitted to their platform's box afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Aspect {
    #[serde(rename = "1:1")]
    Square,
    #[serde(rename = "16:9")]
    Wide,
    #[serde(rename = "9:16")]
    Tall,
    #[serde(rename = "4:5")]
    Portrait,
    #[serde(rename = "5:4")]
    Landscape,
    #[serde(rename = "3:2")]
    Photo,
    #[serde(rename = "2:3")]
    PhotoTall,
}

impl Aspect {
    pub const ALL: [Aspect; 7] = [
        Aspect::Square,
        Aspect::Wide,
        Aspect::Tall,
        Aspect::Portrait,
        Aspect::Landscape,
        Aspect::Photo,
        Aspect::PhotoTall,
    ];

    /// Width and height of the ratio, e.g. (16, 9).
    pub fn ratio(self) -> (u32, u32) {
        match self {
            Aspect::Square => (1, 1),
            Aspect::Wide => (16, 9),
            Aspect::Tall => (9, 16),
            Aspect::Portrait => (4, 5),
            Aspect::Landscape => (5, 4),
            Aspect::Photo => (3, 2),
            Aspect::PhotoTall => (2, 3),
        }
    }
}

impl fmt::Display for Aspect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (w, h) = self.ratio();
        write!(f, "{w}:{h}")
    }
}

impl FromStr for Aspect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Aspect::ALL
            .into_iter()
            .find(|a| a.to_string() == s.trim())
            .ok_or_else(|| s.trim().to_string())
    }
}

/// A file the engine can make from a clip. Surfaces ask for the ones they deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// Telegram video sticker: WebM VP9, 512 px box, under 3 s, at most 256 KB.
    WebmSticker,
    /// Telegram custom emoji: WebM VP9, 100×100.
    WebmEmoji,
    /// The whole clip as H.264 MP4 (Telegram animation, Discord inline video).
    Mp4,
    /// Discord server sticker as APNG, 320×320, at most 512 KiB.
    Apng,
    /// Discord server sticker as GIF, 320×320, at most 512 KiB.
    Gif,
}

impl OutputKind {
    pub const ALL: [OutputKind; 5] = [
        OutputKind::WebmSticker,
        OutputKind::WebmEmoji,
        OutputKind::Mp4,
        OutputKind::Apng,
        OutputKind::Gif,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutputKind::WebmSticker => "webm_sticker",
            OutputKind::WebmEmoji => "webm_emoji",
            OutputKind::Mp4 => "mp4",
            OutputKind::Apng => "apng",
            OutputKind::Gif => "gif",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputKind::WebmSticker | OutputKind::WebmEmoji => "webm",
            OutputKind::Mp4 => "mp4",
            OutputKind::Apng => "png",
            OutputKind::Gif => "gif",
        }
    }
}

impl fmt::Display for OutputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutputKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| s.trim().to_string())
    }
}

/// Which backend a request wants. `Auto` lets the router choose and fall back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    #[default]
    Auto,
    Local,
    Pika,
}

impl BackendChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Local => "local",
            BackendChoice::Pika => "pika",
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a clip of another shape goes into a sticker's box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Scale so the whole picture shows; a fixed square box is padded (transparent where the
    /// clip has alpha, else black).
    #[default]
    Pad,
    /// Scale so the box is filled and cut the overflow, centred.
    Crop,
}

/// What to do with a clip longer than a platform allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// Keep the beginning.
    #[default]
    Trim,
    /// Keep all of it, played faster.
    SpeedUp,
}

/// Everything a backend needs to render one clip, fully resolved: the user's style, their
/// defaults and the request's own options have all been applied. Recorded with the job so any
/// sticker can be reproduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// The prompt the backend renders: character anchor, style and suffixes applied.
    pub prompt: String,
    /// The prompt as the user typed it, after trimming and NFKC normalisation.
    pub user_prompt: String,
    pub negative_prompt: String,
    pub duration_secs: f32,
    pub fps: u32,
    pub aspect: Aspect,
    /// 0 (still) to 4 (lively).
    pub motion: u8,
    pub seed: u32,
    /// Classifier-free guidance scale; `None` keeps the model's own default.
    pub guidance: Option<f32>,
    /// Name of the style preset that was applied.
    pub style: String,
    pub outputs: Vec<OutputKind>,
    pub backend: BackendChoice,
    /// Records written before these options existed read as the defaults.
    #[serde(default)]
    pub fit: Fit,
    #[serde(default)]
    pub timing: Timing,
    /// Cross-fade the end into the start when the clip would otherwise jump as it loops.
    #[serde(default = "yes")]
    pub seamless_loop: bool,
    /// The picture to animate (image-to-video); its bytes are in the store under its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
}

/// A user's picture a job animates: what it is, and the key of its bytes in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    /// Hex SHA-256 of the bytes; also their key in the store, so a re-roll shares them.
    pub sha256: String,
    /// `image/jpeg`, `image/png` or `image/webp`, read from the bytes.
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspect_parses_its_display_and_serde_name() {
        for a in Aspect::ALL {
            assert_eq!(a.to_string().parse::<Aspect>(), Ok(a));
            let json = serde_json::to_string(&a).expect("aspect serialises");
            assert_eq!(json, format!("\"{a}\""));
        }
        assert!("7:3".parse::<Aspect>().is_err());
    }

    #[test]
    fn output_kinds_parse_their_names() {
        for k in OutputKind::ALL {
            assert_eq!(k.as_str().parse::<OutputKind>(), Ok(k));
        }
    }
}
