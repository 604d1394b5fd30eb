use serde::{Deserialize, Serialize};

use crate::{Aspect, BackendChoice, Fit, OutputKind, Timing, UserKey};

/// Parameters that a preset, a user's defaults or a request may each set. Unset fields fall
/// through to the next layer: request > user default > preset > global default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ParamDefaults {
    pub negative_prompt: Option<String>,
    pub duration_secs: Option<f32>,
    pub fps: Option<u32>,
    pub aspect: Option<Aspect>,
    pub motion: Option<u8>,
    pub guidance: Option<f32>,
}

/// What one request asks for beyond its prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Overrides {
    #[serde(flatten)]
    pub params: ParamDefaults,
    pub seed: Option<u32>,
    pub style: Option<String>,
    pub outputs: Option<Vec<OutputKind>>,
    pub backend: Option<BackendChoice>,
    pub fit: Option<Fit>,
    pub timing: Option<Timing>,
    pub seamless_loop: Option<bool>,
}

/// A user's saved style state, applied to every request they make.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserStyle {
    /// Preset used when a request names none.
    pub preset: Option<String>,
    pub defaults: ParamDefaults,
    /// Appended to every prompt (like Midjourney's `/prefer suffix`).
    pub suffix: Option<String>,
    /// A character or scene description put before every prompt, so a series of stickers
    /// shows the same subject.
    pub character: Option<String>,
    /// When set, every request without its own seed uses this one.
    pub seed_lock: Option<u32>,
}

/// What the engine keeps about a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    pub key: UserKey,
    /// Display name as the platform last reported it.
    pub name: Option<String>,
    pub style: UserStyle,
    pub banned: bool,
}

impl UserProfile {
    pub fn new(key: UserKey) -> Self {
        UserProfile {
            key,
            name: None,
            style: UserStyle::default(),
            banned: false,
        }
    }
}
