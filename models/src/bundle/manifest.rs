//! `model.toml`, format 1 (see `BUNDLE.md`): the typed form, parsing with messages that name the
//! line, and the checks serde cannot express.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path};

use serde::Deserialize;

/// The only format this build reads.
pub const FORMAT: i64 = 1;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// Shown by `loopsmith models list`.
    pub name: String,
    pub family: Family,
    pub licence: String,
    #[serde(default)]
    pub description: String,
    pub video: Video,
    pub latent: Latent,
    /// diffusers' scheduler config fields, kept untyped here: the scheduler module reads them.
    pub scheduler: toml::Table,
    pub defaults: Defaults,
    pub text: Text,
    pub tensors: Tensors,
    pub files: Files,
    /// File (relative to the bundle) → lowercase hex sha256, for every file the bundle uses,
    /// external weight files included.
    pub sha256: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Family {
    /// Latent UNet with motion modules, decoded by a VAE.
    #[serde(rename = "animatediff")]
    AnimateDiff,
    /// Denoises pixels directly; no VAE.
    #[serde(rename = "pixel")]
    Pixel,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::AnimateDiff => "animatediff",
            Family::Pixel => "pixel",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Video {
    /// Native output size in pixels.
    pub width: u32,
    pub height: u32,
    pub frames: u32,
    pub fps: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latent {
    pub channels: u32,
    /// Pixels per latent cell; 1 for pixel-space models.
    pub downscale: u32,
    pub scaling_factor: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub steps: u32,
    /// 1.0 = no classifier-free guidance (one denoiser batch per step).
    pub guidance: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    /// Tokens, padded and truncated to this.
    pub max_length: u32,
    /// Token id used for padding.
    pub pad_id: u32,
    pub hidden_size: u32,
}

/// Graph input and output names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tensors {
    pub text_input_ids: String,
    pub text_output: String,
    pub denoiser_sample: String,
    pub denoiser_timestep: String,
    pub denoiser_context: String,
    pub denoiser_output: String,
    /// Absent for pixel-space models.
    pub vae_input: Option<String>,
    pub vae_output: Option<String>,
}

/// File names, relative to the bundle folder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    pub tokenizer: String,
    pub text_encoder: String,
    pub denoiser: String,
    /// Absent for pixel-space models.
    pub vae_decoder: Option<String>,
}

impl Files {
    /// (`files.<key>`, file) for every file named, in pipeline order.
    pub fn named(&self) -> Vec<(&'static str, &str)> {
        let mut named = vec![
            ("tokenizer", self.tokenizer.as_str()),
            ("text_encoder", self.text_encoder.as_str()),
            ("denoiser", self.denoiser.as_str()),
        ];
        if let Some(vae) = &self.vae_decoder {
            named.push(("vae_decoder", vae.as_str()));
        }
        named
    }
}

/// Parses `model.toml` text. The format is checked before the fields, so a newer bundle gets
/// "format 2 is not supported" rather than a confusing complaint about a field it added.
pub fn parse(text: &str) -> Result<Manifest, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| describe(text, &e))?;
    match table.get("format") {
        None => {
            return Err(format!(
                "missing `format` (this loopsmith reads format {FORMAT})"
            ));
        }
        Some(toml::Value::Integer(FORMAT)) => {}
        Some(toml::Value::Integer(other)) => {
            return Err(format!(
                "format {other} is not supported; this loopsmith reads format {FORMAT}"
            ));
        }
        Some(other) => {
            return Err(format!(
                "`format` must be the integer {FORMAT}, not {}",
                other.type_str()
            ));
        }
    }
    let manifest: Manifest = toml::from_str(text).map_err(|e| describe(text, &e))?;
    validate(&manifest)?;
    Ok(manifest)
}

/// toml's own message with the line it points at, on one line.
fn describe(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().to_string();
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// What the types cannot say: sizes that must be positive, family rules, safe file names,
/// hashes for every file.
fn validate(m: &Manifest) -> Result<(), String> {
    if m.name.trim().is_empty() {
        return Err("`name` is empty".to_string());
    }
    for (key, value) in [
        ("video.width", m.video.width),
        ("video.height", m.video.height),
        ("video.frames", m.video.frames),
        ("video.fps", m.video.fps),
        ("latent.channels", m.latent.channels),
        ("latent.downscale", m.latent.downscale),
        ("defaults.steps", m.defaults.steps),
        ("text.max_length", m.text.max_length),
        ("text.hidden_size", m.text.hidden_size),
    ] {
        if value == 0 {
            return Err(format!("`{key}` must be at least 1"));
        }
    }
    if !m.video.width.is_multiple_of(m.latent.downscale)
        || !m.video.height.is_multiple_of(m.latent.downscale)
    {
        return Err(format!(
            "video size {}×{} is not a multiple of latent.downscale {}",
            m.video.width, m.video.height, m.latent.downscale
        ));
    }
    if !(m.latent.scaling_factor.is_finite() && m.latent.scaling_factor > 0.0) {
        return Err("`latent.scaling_factor` must be a positive number".to_string());
    }
    if !(m.defaults.guidance.is_finite() && m.defaults.guidance >= 1.0) {
        return Err(
            "`defaults.guidance` must be at least 1.0 (1.0 = no classifier-free guidance)"
                .to_string(),
        );
    }
    for (key, name) in [
        ("text_input_ids", &m.tensors.text_input_ids),
        ("text_output", &m.tensors.text_output),
        ("denoiser_sample", &m.tensors.denoiser_sample),
        ("denoiser_timestep", &m.tensors.denoiser_timestep),
        ("denoiser_context", &m.tensors.denoiser_context),
        ("denoiser_output", &m.tensors.denoiser_output),
    ] {
        if name.is_empty() {
            return Err(format!("`tensors.{key}` is empty"));
        }
    }
    let has_vae = (
        m.files.vae_decoder.is_some(),
        m.tensors.vae_input.is_some(),
        m.tensors.vae_output.is_some(),
    );
    match m.family {
        Family::AnimateDiff => match has_vae {
            (true, true, true) => {}
            (false, _, _) => return Err("family animatediff needs `files.vae_decoder`".to_string()),
            _ => {
                return Err(
                    "family animatediff needs `tensors.vae_input` and `tensors.vae_output`"
                        .to_string(),
                );
            }
        },
        Family::Pixel => {
            if has_vae != (false, false, false) {
                return Err("family pixel has no VAE: remove `files.vae_decoder`, \
                            `tensors.vae_input` and `tensors.vae_output`"
                    .to_string());
            }
            if m.latent.downscale != 1 {
                return Err(
                    "family pixel works in pixel space: `latent.downscale` must be 1".to_string(),
                );
            }
        }
    }
    for (key, file) in m.files.named() {
        check_relative(file).map_err(|why| format!("`files.{key}` = \"{file}\": {why}"))?;
        if !m.sha256.contains_key(file) {
            return Err(format!(
                "`files.{key}` = \"{file}\" has no entry under [sha256]"
            ));
        }
    }
    for (file, hash) in &m.sha256 {
        check_relative(file).map_err(|why| format!("[sha256] \"{file}\": {why}"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "[sha256] \"{file}\" = \"{hash}\" is not a sha256 (64 hex digits)"
            ));
        }
    }
    Ok(())
}

/// A bundle names files inside itself only: nothing absolute, nothing climbing out with `..`.
fn check_relative(file: &str) -> Result<(), &'static str> {
    let path = Path::new(file);
    if file.is_empty() {
        return Err("empty file name");
    }
    if path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(())
    } else {
        Err("must be a path inside the bundle folder")
    }
}
