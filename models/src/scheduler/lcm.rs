//! diffusers' `LCMScheduler` (latent consistency models, AnimateLCM) at strength 1, without
//! thresholding or zero-terminal-SNR rescaling. `timestep_spacing` and `steps_offset` do not
//! apply: the timesteps come from the distillation schedule of `original_inference_steps`.

use super::config::{PredictionType, SchedulerConfig, SchedulerKind};
use super::numeric::{alphas_cumprod, np_linspace};
use super::{Scheduler, check_step_args, check_steps, clip};
use crate::ModelError;

/// `LCMScheduler` after `set_timesteps(steps)`.
#[derive(Debug, Clone)]
pub struct Lcm {
    prediction_type: PredictionType,
    clip_range: Option<f32>,
    timestep_scaling: f32,
    timesteps: Vec<f32>,
    indices: Vec<usize>,
    alphas_cumprod: Vec<f32>,
}

/// diffusers' `sigma_data` for the consistency-model boundary condition.
const SIGMA_DATA: f32 = 0.5;

impl Lcm {
    /// The schedule for `steps` inference steps.
    pub fn new(config: &SchedulerConfig, steps: usize) -> Result<Self, ModelError> {
        config.validate()?;
        check_steps(config, steps)?;
        if config.kind != SchedulerKind::Lcm {
            return Err(ModelError::Scheduler(format!(
                "Lcm was given a {} configuration",
                config.kind.as_str()
            )));
        }
        let original = config.original_inference_steps;
        if steps > original {
            return Err(ModelError::Scheduler(format!(
                "lcm takes at most original_inference_steps ({original}) steps, not {steps}: its \
                 timesteps are a subset of that schedule"
            )));
        }
        // lcm_origin_timesteps = arange(1, original + 1) * k - 1, largest first.
        let k = config.num_train_timesteps / original;
        let origin: Vec<usize> = (1..=original).rev().map(|i| i * k - 1).collect();
        // inference_indices = floor(linspace(0, len, steps, endpoint=False)).
        let mut indices = Vec::with_capacity(steps);
        for position in np_linspace(0.0, origin.len() as f64, steps, false) {
            let position = position.floor() as usize;
            let t = origin.get(position).copied().ok_or_else(|| {
                ModelError::Scheduler(format!(
                    "lcm schedule position {position} is past its {} timesteps",
                    origin.len()
                ))
            })?;
            indices.push(t);
        }
        Ok(Lcm {
            prediction_type: config.prediction_type,
            clip_range: config
                .clip_sample
                .then_some(config.clip_sample_range as f32),
            timestep_scaling: config.timestep_scaling as f32,
            timesteps: indices.iter().map(|&t| t as f32).collect(),
            indices,
            alphas_cumprod: alphas_cumprod(config),
        })
    }

    fn alpha_at(&self, timestep: usize) -> Result<f32, ModelError> {
        self.alphas_cumprod.get(timestep).copied().ok_or_else(|| {
            ModelError::Scheduler(format!("lcm has no alpha for timestep {timestep}"))
        })
    }
}

impl Scheduler for Lcm {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lcm
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    fn needs_noise(&self, step_index: usize) -> bool {
        step_index + 1 < self.timesteps.len()
    }

    fn step_in_place(
        &self,
        model_output: &[f32],
        step_index: usize,
        sample: &mut [f32],
        noise: Option<&[f32]>,
    ) -> Result<(), ModelError> {
        let steps = self.timesteps.len();
        check_step_args(self.kind(), steps, step_index, model_output, sample)?;
        let noise = if self.needs_noise(step_index) {
            match noise {
                Some(n) if n.len() == sample.len() => Some(n),
                Some(n) => {
                    return Err(ModelError::Scheduler(format!(
                        "lcm step: the noise has {} values but the sample has {}",
                        n.len(),
                        sample.len()
                    )));
                }
                None => {
                    return Err(ModelError::Scheduler(format!(
                        "lcm step {step_index} of {steps} re-noises the sample and needs a noise \
                         tensor"
                    )));
                }
            }
        } else {
            None
        };
        let t = self.indices.get(step_index).copied().unwrap_or(0);
        // The last step "steps" to its own timestep; its alpha goes unused.
        let prev_t = self.indices.get(step_index + 1).copied().unwrap_or(t);
        let alpha_t = self.alpha_at(t)?;
        let alpha_prev = self.alpha_at(prev_t)?;
        let (beta_t, beta_prev) = (1.0 - alpha_t, 1.0 - alpha_prev);
        let (sqrt_alpha_t, sqrt_beta_t) = (alpha_t.sqrt(), beta_t.sqrt());
        let (sqrt_alpha_prev, sqrt_beta_prev) = (alpha_prev.sqrt(), beta_prev.sqrt());

        // Boundary-condition scalings; the pipeline's timestep is an int64 tensor, so
        // `timestep * timestep_scaling` and everything after it is float32.
        let scaled = t as f32 * self.timestep_scaling;
        let sigma_data_sq = SIGMA_DATA * SIGMA_DATA;
        let c_skip = sigma_data_sq / (scaled * scaled + sigma_data_sq);
        let c_out = scaled / (scaled * scaled + sigma_data_sq).sqrt();

        for (i, (x, &m)) in sample.iter_mut().zip(model_output).enumerate() {
            let pred_original = match self.prediction_type {
                PredictionType::Epsilon => (*x - sqrt_beta_t * m) / sqrt_alpha_t,
                PredictionType::Sample | PredictionType::Velocity => m,
                PredictionType::VPrediction => sqrt_alpha_t * *x - sqrt_beta_t * m,
            };
            let pred_original = clip(pred_original, self.clip_range);
            let denoised = c_out * pred_original + c_skip * *x;
            *x = match noise.and_then(|n| n.get(i)) {
                Some(&z) => sqrt_alpha_prev * denoised + sqrt_beta_prev * z,
                None => denoised,
            };
        }
        Ok(())
    }
}
