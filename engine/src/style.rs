//! Style presets and how a request's parameters are resolved.
//!
//! Each parameter is taken from the first layer that sets it:
//! **request > user default > preset > global default**. The preset itself is picked the same
//! way (request's style > user's preset > `styles.preset`). The seed is the request's, else the
//! user's seed lock, else random. The prompt the backend sees is
//! `character, preset prefix + prompt + preset suffix, user suffix` (empty parts left out), and
//! the negative prompt is the request's (else the user's default) followed by the preset's.

use loopsmith_config::StylesSettings;
use loopsmith_protocol::{
    Aspect, BackendChoice, OutputKind, Overrides, ParamDefaults, Params, UserStyle,
};

use crate::Error;
use crate::request::{self, ValidationError};

/// A named look: text around the prompt, a negative prompt, and parameter defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: String,
    pub prefix: String,
    pub suffix: String,
    pub negative: String,
    pub defaults: ParamDefaults,
}

impl Preset {
    fn builtin(
        name: &str,
        prefix: &str,
        suffix: &str,
        negative: &str,
        defaults: ParamDefaults,
    ) -> Self {
        Preset {
            name: name.to_string(),
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
            negative: negative.to_string(),
            defaults,
        }
    }
}

/// The presets shipped with loopsmith.
pub fn builtin_presets() -> Vec<Preset> {
    let motion = |m: u8| ParamDefaults {
        motion: Some(m),
        ..ParamDefaults::default()
    };
    vec![
        Preset::builtin("none", "", "", "", ParamDefaults::default()),
        Preset::builtin(
            "anime",
            "anime style,",
            "cel shading, vibrant colours, clean line art",
            "photorealistic, 3d render",
            motion(3),
        ),
        Preset::builtin(
            "pixel-art",
            "pixel art,",
            "16-bit sprite, limited palette, crisp pixels",
            "blurry, smooth gradients, photorealistic",
            ParamDefaults {
                fps: Some(12),
                ..ParamDefaults::default()
            },
        ),
        Preset::builtin(
            "claymation",
            "claymation,",
            "stop-motion clay figures, soft studio light",
            "photorealistic, flat",
            ParamDefaults {
                fps: Some(12),
                motion: Some(2),
                ..ParamDefaults::default()
            },
        ),
        Preset::builtin(
            "watercolor",
            "watercolor painting of",
            "soft washes, paper texture",
            "photorealistic, hard edges",
            motion(1),
        ),
        Preset::builtin(
            "cinematic",
            "cinematic shot of",
            "dramatic lighting, shallow depth of field, film grain",
            "cartoon, flat colours",
            ParamDefaults {
                aspect: Some(Aspect::Wide),
                ..ParamDefaults::default()
            },
        ),
        Preset::builtin(
            "sticker-outline",
            "die-cut sticker of",
            "thick white outline, plain background, bold shapes",
            "busy background, photorealistic",
            ParamDefaults::default(),
        ),
    ]
}

/// The presets on offer (built-in plus the operator's own) and the global defaults.
#[derive(Debug, Clone)]
pub struct StyleCatalog {
    presets: Vec<Preset>,
    global: Globals,
}

#[derive(Debug, Clone)]
struct Globals {
    preset: String,
    duration_secs: f32,
    fps: u32,
    aspect: Aspect,
    motion: u8,
    outputs: Vec<OutputKind>,
}

impl StyleCatalog {
    /// Built-in presets, then `styles.custom` (an operator's preset replaces a built-in of the
    /// same name), with `styles.*` as the global defaults.
    pub fn new(settings: &StylesSettings) -> Result<StyleCatalog, Error> {
        let mut presets = builtin_presets();
        for (name, custom) in &settings.custom {
            let aspect =
                if custom.aspect.is_empty() {
                    None
                } else {
                    Some(request::parse_aspect(&custom.aspect).map_err(|e| {
                        Error::Settings(format!("styles.custom.{name}.aspect: {e}"))
                    })?)
                };
            let preset = Preset {
                name: name.clone(),
                prefix: custom.prefix.clone(),
                suffix: custom.suffix.clone(),
                negative: custom.negative.clone(),
                defaults: ParamDefaults {
                    negative_prompt: None,
                    duration_secs: (custom.duration_secs > 0.0).then_some(custom.duration_secs),
                    fps: (custom.fps > 0).then_some(custom.fps),
                    aspect,
                    motion: u8::try_from(custom.motion).ok(),
                    guidance: (custom.guidance > 0.0).then_some(custom.guidance),
                },
            };
            match presets.iter_mut().find(|p| &p.name == name) {
                Some(existing) => *existing = preset,
                None => presets.push(preset),
            }
        }
        let aspect = request::parse_aspect(&settings.aspect)
            .map_err(|e| Error::Settings(format!("styles.aspect: {e}")))?;
        let catalog = StyleCatalog {
            presets,
            global: Globals {
                preset: settings.preset.clone(),
                duration_secs: settings.duration_secs,
                fps: settings.fps,
                aspect,
                motion: settings.motion,
                outputs: vec![OutputKind::WebmSticker],
            },
        };
        if catalog.get(&settings.preset).is_none() {
            return Err(Error::Settings(format!(
                "styles.preset: there is no preset called `{}`; presets are: {}",
                settings.preset,
                catalog.names().join(", ")
            )));
        }
        Ok(catalog)
    }

    pub fn get(&self, name: &str) -> Option<&Preset> {
        self.presets.iter().find(|p| p.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.presets.iter().map(|p| p.name.as_str()).collect()
    }

    fn preset(&self, name: &str) -> Result<&Preset, ValidationError> {
        self.get(name).ok_or_else(|| ValidationError::UnknownStyle {
            asked: request::echo(name),
            known: self.names().join(", "),
        })
    }

    /// Checks a user's style before it is saved, so a bad default never reaches a request.
    pub fn check_user_style(&self, style: &UserStyle) -> Result<(), ValidationError> {
        if let Some(name) = &style.preset {
            self.preset(name)?;
        }
        check_defaults(&style.defaults)?;
        for (what, text) in [
            ("suffix", &style.suffix),
            ("character description", &style.character),
        ] {
            if let Some(text) = text {
                let chars = request::clean_text(text).chars().count();
                if chars > request::MAX_SUFFIX_CHARS {
                    return Err(ValidationError::StyleTextTooLong { what, chars });
                }
            }
        }
        Ok(())
    }

    /// Resolves a request into concrete parameters; `random_seed` is used when neither the
    /// request nor the user's seed lock sets one.
    pub fn resolve(
        &self,
        prompt: &str,
        overrides: &Overrides,
        user: &UserStyle,
        random_seed: u32,
    ) -> Result<Params, ValidationError> {
        let user_prompt = request::normalize_prompt(prompt)?;
        let style_name = overrides
            .style
            .as_deref()
            .or(user.preset.as_deref())
            .unwrap_or(&self.global.preset);
        let preset = self.preset(style_name)?;
        let layers = [&overrides.params, &user.defaults, &preset.defaults];

        let duration_secs = request::check_duration(
            layers
                .iter()
                .find_map(|l| l.duration_secs)
                .unwrap_or(self.global.duration_secs),
        )?;
        let fps = request::check_fps(layers.iter().find_map(|l| l.fps).unwrap_or(self.global.fps))?;
        let aspect = layers
            .iter()
            .find_map(|l| l.aspect)
            .unwrap_or(self.global.aspect);
        let motion = request::check_motion(
            layers
                .iter()
                .find_map(|l| l.motion)
                .unwrap_or(self.global.motion),
        )?;
        let guidance = layers
            .iter()
            .find_map(|l| l.guidance)
            .map(request::check_guidance)
            .transpose()?;
        let outputs = overrides
            .outputs
            .clone()
            .unwrap_or_else(|| self.global.outputs.clone());
        if outputs.is_empty() {
            return Err(ValidationError::NoOutputs);
        }

        let user_negative = overrides
            .params
            .negative_prompt
            .as_deref()
            .or(user.defaults.negative_prompt.as_deref())
            .map(request::normalize_negative)
            .transpose()?
            .unwrap_or_default();
        let negative_prompt = join(&[&user_negative, &preset.negative], ", ");

        let styled = join(&[&preset.prefix, &user_prompt, &preset.suffix], " ");
        let character = user
            .character
            .as_deref()
            .map(request::clean_text)
            .unwrap_or_default();
        let suffix = user
            .suffix
            .as_deref()
            .map(request::clean_text)
            .unwrap_or_default();
        let prompt = join(&[&character, &styled, &suffix], ", ");

        Ok(Params {
            prompt,
            user_prompt,
            negative_prompt,
            duration_secs,
            fps,
            aspect,
            motion,
            seed: overrides.seed.or(user.seed_lock).unwrap_or(random_seed),
            guidance,
            style: preset.name.clone(),
            outputs,
            backend: overrides.backend.unwrap_or(BackendChoice::Auto),
            fit: overrides.fit.unwrap_or_default(),
            timing: overrides.timing.unwrap_or_default(),
            seamless_loop: overrides.seamless_loop.unwrap_or(true),
            image: None,
        })
    }
}

fn check_defaults(d: &ParamDefaults) -> Result<(), ValidationError> {
    if let Some(v) = d.duration_secs {
        request::check_duration(v)?;
    }
    if let Some(v) = d.fps {
        request::check_fps(v)?;
    }
    if let Some(v) = d.motion {
        request::check_motion(v)?;
    }
    if let Some(v) = d.guidance {
        request::check_guidance(v)?;
    }
    if let Some(neg) = &d.negative_prompt {
        request::normalize_negative(neg)?;
    }
    Ok(())
}

fn join(parts: &[&str], separator: &str) -> String {
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(separator)
}
