//! The `[scheduler]` table of a bundle's `model.toml`: `kind` plus diffusers' own config field
//! names. Omitted fields take the default of the diffusers class that `kind` names (they differ:
//! `DDIMScheduler` clips samples by default, `LCMScheduler` starts from SD's betas, ...).

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Which diffusers scheduler class the table configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    /// `EulerDiscreteScheduler`.
    EulerDiscrete,
    /// `DDIMScheduler` (deterministic, eta = 0).
    Ddim,
    /// `LCMScheduler`.
    Lcm,
    /// `FlowMatchEulerDiscreteScheduler`.
    FlowMatchEuler,
}

impl SchedulerKind {
    /// The name used in `model.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulerKind::EulerDiscrete => "euler_discrete",
            SchedulerKind::Ddim => "ddim",
            SchedulerKind::Lcm => "lcm",
            SchedulerKind::FlowMatchEuler => "flow_match_euler",
        }
    }
}

/// diffusers' `beta_schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    /// `torch.linspace(beta_start, beta_end, n)`.
    Linear,
    /// `torch.linspace(beta_start ** 0.5, beta_end ** 0.5, n) ** 2` (Stable Diffusion's).
    ScaledLinear,
}

/// diffusers' `timestep_spacing` (table 2 of "Common Diffusion Noise Schedules and Sample Steps
/// are Flawed").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepSpacing {
    /// Count down from the last training timestep (AnimateDiff-Lightning).
    Trailing,
    /// Multiples of `num_train_timesteps / steps` from 0, plus `steps_offset`.
    Leading,
    /// Evenly spaced between 0 and the last training timestep, both included.
    Linspace,
}

impl TimestepSpacing {
    /// The name used in `model.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimestepSpacing::Trailing => "trailing",
            TimestepSpacing::Leading => "leading",
            TimestepSpacing::Linspace => "linspace",
        }
    }
}

/// What the denoiser predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionType {
    /// The added noise.
    Epsilon,
    /// Imagen Video's v = alpha * noise - sigma * sample.
    VPrediction,
    /// The clean sample itself.
    Sample,
    /// The flow-matching velocity (noise - sample); the only one `flow_match_euler` takes.
    Velocity,
}

impl PredictionType {
    fn as_str(self) -> &'static str {
        match self {
            PredictionType::Epsilon => "epsilon",
            PredictionType::VPrediction => "v_prediction",
            PredictionType::Sample => "sample",
            PredictionType::Velocity => "velocity",
        }
    }
}

/// A scheduler configuration with every field resolved. Deserialise it from the `[scheduler]`
/// table (unknown fields are refused; omitted ones take the diffusers class default for `kind`),
/// or start from [`SchedulerConfig::new`]. Fields that `kind` does not use are kept but ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSchedulerConfig")]
pub struct SchedulerConfig {
    pub kind: SchedulerKind,
    pub num_train_timesteps: usize,
    pub beta_start: f64,
    pub beta_end: f64,
    pub beta_schedule: BetaSchedule,
    pub timestep_spacing: TimestepSpacing,
    pub prediction_type: PredictionType,
    pub steps_offset: usize,
    /// DDIM and LCM: clamp the predicted clean sample to ±`clip_sample_range`.
    pub clip_sample: bool,
    pub clip_sample_range: f64,
    /// DDIM and LCM: the "previous" alpha product past the last step is 1 (else the first one).
    pub set_alpha_to_one: bool,
    /// LCM: the distillation schedule's length.
    pub original_inference_steps: usize,
    /// LCM: timestep multiplier in the boundary-condition scalings.
    pub timestep_scaling: f64,
    /// Flow matching: static shift of the sigmas (1 = none).
    pub shift: f64,
    /// Flow matching: shift by `mu`, interpolated from the latent sequence length.
    pub use_dynamic_shifting: bool,
    pub base_shift: f64,
    pub max_shift: f64,
    pub base_image_seq_len: usize,
    pub max_image_seq_len: usize,
    /// Flow matching: stretch the sigmas so the last one is this value; 0 = no stretch.
    pub shift_terminal: f64,
}

impl SchedulerConfig {
    /// The diffusers class defaults for `kind` (what `Class()` with no arguments configures).
    pub fn new(kind: SchedulerKind) -> Self {
        let lcm = kind == SchedulerKind::Lcm;
        SchedulerConfig {
            kind,
            num_train_timesteps: 1000,
            beta_start: if lcm { 0.00085 } else { 0.0001 },
            beta_end: if lcm { 0.012 } else { 0.02 },
            beta_schedule: if lcm {
                BetaSchedule::ScaledLinear
            } else {
                BetaSchedule::Linear
            },
            timestep_spacing: match kind {
                SchedulerKind::EulerDiscrete | SchedulerKind::FlowMatchEuler => {
                    TimestepSpacing::Linspace
                }
                SchedulerKind::Ddim | SchedulerKind::Lcm => TimestepSpacing::Leading,
            },
            prediction_type: if kind == SchedulerKind::FlowMatchEuler {
                PredictionType::Velocity
            } else {
                PredictionType::Epsilon
            },
            steps_offset: 0,
            clip_sample: kind == SchedulerKind::Ddim,
            clip_sample_range: 1.0,
            set_alpha_to_one: true,
            original_inference_steps: 50,
            timestep_scaling: 10.0,
            shift: 1.0,
            use_dynamic_shifting: false,
            base_shift: 0.5,
            max_shift: 1.15,
            base_image_seq_len: 256,
            max_image_seq_len: 4096,
            shift_terminal: 0.0,
        }
    }

    /// Parses a `[scheduler]` table on its own (the text of the table's body).
    pub fn from_toml(text: &str) -> Result<Self, ModelError> {
        toml::from_str(text).map_err(|e| ModelError::Scheduler(e.message().to_string()))
    }

    /// Checks the values `kind` uses. [`crate::scheduler::build`] calls this; deserialising
    /// does too.
    pub fn validate(&self) -> Result<(), ModelError> {
        let fail = |msg: String| Err(ModelError::Scheduler(msg));
        if self.num_train_timesteps < 2 {
            return fail(format!(
                "num_train_timesteps is {}; it must be at least 2",
                self.num_train_timesteps
            ));
        }
        let kind = self.kind.as_str();
        match self.kind {
            SchedulerKind::FlowMatchEuler => {
                if self.prediction_type != PredictionType::Velocity {
                    return fail(format!(
                        "flow_match_euler denoisers predict a velocity; prediction_type must be \
                         \"velocity\" or omitted, not \"{}\"",
                        self.prediction_type.as_str()
                    ));
                }
                if !(self.shift.is_finite() && self.shift > 0.0) {
                    return fail(format!("shift is {}; it must be positive", self.shift));
                }
                if !(self.shift_terminal.is_finite() && (0.0..1.0).contains(&self.shift_terminal)) {
                    return fail(format!(
                        "shift_terminal is {}; it must be at least 0 (none) and below 1",
                        self.shift_terminal
                    ));
                }
                if self.use_dynamic_shifting {
                    if !(self.base_shift.is_finite() && self.max_shift.is_finite()) {
                        return fail("base_shift and max_shift must be finite".to_string());
                    }
                    if self.base_image_seq_len == self.max_image_seq_len {
                        return fail(format!(
                            "base_image_seq_len and max_image_seq_len are both {}; dynamic \
                             shifting interpolates between two different lengths",
                            self.base_image_seq_len
                        ));
                    }
                }
            }
            SchedulerKind::EulerDiscrete | SchedulerKind::Ddim | SchedulerKind::Lcm => {
                if self.prediction_type == PredictionType::Velocity {
                    return fail(format!(
                        "prediction_type \"velocity\" is for flow_match_euler; {kind} takes \
                         epsilon, v_prediction or sample"
                    ));
                }
                for (name, beta) in [("beta_start", self.beta_start), ("beta_end", self.beta_end)] {
                    if !(beta.is_finite() && beta > 0.0 && beta < 1.0) {
                        return fail(format!("{name} is {beta}; it must lie between 0 and 1"));
                    }
                }
                if self.clip_sample
                    && !(self.clip_sample_range.is_finite() && self.clip_sample_range > 0.0)
                {
                    return fail(format!(
                        "clip_sample_range is {}; it must be positive",
                        self.clip_sample_range
                    ));
                }
            }
        }
        if self.kind == SchedulerKind::Lcm {
            if self.original_inference_steps == 0
                || self.original_inference_steps > self.num_train_timesteps
            {
                return fail(format!(
                    "original_inference_steps is {}; it must be between 1 and \
                     num_train_timesteps ({})",
                    self.original_inference_steps, self.num_train_timesteps
                ));
            }
            if !self.timestep_scaling.is_finite() {
                return fail("timestep_scaling must be finite".to_string());
            }
        }
        Ok(())
    }

    /// diffusers' `alphas_cumprod` for this beta schedule (one per training timestep), as
    /// the DDPM-family schedulers compute it: f32 betas from torch's `linspace`, f32 alphas and
    /// torch's CPU `cumprod`.
    pub fn alphas_cumprod(&self) -> Vec<f32> {
        super::numeric::alphas_cumprod(self)
    }

    /// `mu` for dynamic shifting: diffusers' `calculate_shift` (Flux, LTX-Video), a straight line
    /// through (base_image_seq_len, base_shift) and (max_image_seq_len, max_shift).
    pub fn dynamic_shift_mu(&self, image_seq_len: usize) -> f64 {
        let m = (self.max_shift - self.base_shift)
            / (self.max_image_seq_len as f64 - self.base_image_seq_len as f64);
        let b = self.base_shift - m * self.base_image_seq_len as f64;
        image_seq_len as f64 * m + b
    }
}

/// The table as written: every field optional, none unknown.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedulerConfig {
    kind: SchedulerKind,
    num_train_timesteps: Option<usize>,
    beta_start: Option<f64>,
    beta_end: Option<f64>,
    beta_schedule: Option<BetaSchedule>,
    timestep_spacing: Option<TimestepSpacing>,
    prediction_type: Option<PredictionType>,
    steps_offset: Option<usize>,
    clip_sample: Option<bool>,
    clip_sample_range: Option<f64>,
    set_alpha_to_one: Option<bool>,
    original_inference_steps: Option<usize>,
    timestep_scaling: Option<f64>,
    shift: Option<f64>,
    use_dynamic_shifting: Option<bool>,
    base_shift: Option<f64>,
    max_shift: Option<f64>,
    base_image_seq_len: Option<usize>,
    max_image_seq_len: Option<usize>,
    shift_terminal: Option<f64>,
}

impl TryFrom<RawSchedulerConfig> for SchedulerConfig {
    type Error = String;

    fn try_from(raw: RawSchedulerConfig) -> Result<Self, String> {
        let d = SchedulerConfig::new(raw.kind);
        let config = SchedulerConfig {
            kind: raw.kind,
            num_train_timesteps: raw.num_train_timesteps.unwrap_or(d.num_train_timesteps),
            beta_start: raw.beta_start.unwrap_or(d.beta_start),
            beta_end: raw.beta_end.unwrap_or(d.beta_end),
            beta_schedule: raw.beta_schedule.unwrap_or(d.beta_schedule),
            timestep_spacing: raw.timestep_spacing.unwrap_or(d.timestep_spacing),
            prediction_type: raw.prediction_type.unwrap_or(d.prediction_type),
            steps_offset: raw.steps_offset.unwrap_or(d.steps_offset),
            clip_sample: raw.clip_sample.unwrap_or(d.clip_sample),
            clip_sample_range: raw.clip_sample_range.unwrap_or(d.clip_sample_range),
            set_alpha_to_one: raw.set_alpha_to_one.unwrap_or(d.set_alpha_to_one),
            original_inference_steps: raw
                .original_inference_steps
                .unwrap_or(d.original_inference_steps),
            timestep_scaling: raw.timestep_scaling.unwrap_or(d.timestep_scaling),
            shift: raw.shift.unwrap_or(d.shift),
            use_dynamic_shifting: raw.use_dynamic_shifting.unwrap_or(d.use_dynamic_shifting),
            base_shift: raw.base_shift.unwrap_or(d.base_shift),
            max_shift: raw.max_shift.unwrap_or(d.max_shift),
            base_image_seq_len: raw.base_image_seq_len.unwrap_or(d.base_image_seq_len),
            max_image_seq_len: raw.max_image_seq_len.unwrap_or(d.max_image_seq_len),
            shift_terminal: raw.shift_terminal.unwrap_or(d.shift_terminal),
        };
        match config.validate() {
            Ok(()) => Ok(config),
            Err(ModelError::Scheduler(msg)) => Err(msg),
            Err(other) => Err(other.to_string()),
        }
    }
}
