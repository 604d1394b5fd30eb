//! diffusers' `DDIMScheduler` with `eta = 0` (the deterministic sampler pipelines use by
//! default), no dynamic thresholding and no zero-terminal-SNR rescaling.

use super::config::{PredictionType, SchedulerConfig, SchedulerKind, TimestepSpacing};
use super::numeric::{alphas_cumprod, spaced_timesteps};
use super::{Scheduler, check_step_args, check_steps, clip};
use crate::ModelError;

/// `DDIMScheduler` after `set_timesteps(steps)`.
#[derive(Debug, Clone)]
pub struct Ddim {
    prediction_type: PredictionType,
    clip_range: Option<f32>,
    /// Whole timesteps, as f32 for the denoiser.
    timesteps: Vec<f32>,
    /// The same, as indices into `alphas_cumprod`.
    indices: Vec<usize>,
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f32,
    /// diffusers steps back `num_train_timesteps // steps` from each timestep, whatever the
    /// spacing.
    step_ratio: usize,
}

impl Ddim {
    /// The schedule for `steps` inference steps.
    pub fn new(config: &SchedulerConfig, steps: usize) -> Result<Self, ModelError> {
        config.validate()?;
        check_steps(config, steps)?;
        if config.kind != SchedulerKind::Ddim {
            return Err(ModelError::Scheduler(format!(
                "Ddim was given a {} configuration",
                config.kind.as_str()
            )));
        }
        let train = config.num_train_timesteps;
        let spaced = spaced_timesteps(config.timestep_spacing, train, steps, config.steps_offset);
        let mut indices = Vec::with_capacity(spaced.len());
        for t in spaced {
            // numpy rounds half to even before the int64 cast (linspace only; the others are
            // whole already).
            let t = match config.timestep_spacing {
                TimestepSpacing::Linspace => t.round_ties_even(),
                TimestepSpacing::Leading | TimestepSpacing::Trailing => t,
            };
            if !(0.0..train as f64).contains(&t) {
                return Err(ModelError::Scheduler(format!(
                    "ddim with {} spacing, steps_offset {} and {steps} steps reaches timestep \
                     {t}, outside the {train} training timesteps; choose another step count",
                    config.timestep_spacing.as_str(),
                    config.steps_offset
                )));
            }
            indices.push(t as usize);
        }
        let alphas_cumprod = alphas_cumprod(config);
        let final_alpha_cumprod = if config.set_alpha_to_one {
            1.0
        } else {
            alphas_cumprod.first().copied().unwrap_or(1.0)
        };
        Ok(Ddim {
            prediction_type: config.prediction_type,
            clip_range: config
                .clip_sample
                .then_some(config.clip_sample_range as f32),
            timesteps: indices.iter().map(|&t| t as f32).collect(),
            indices,
            alphas_cumprod,
            final_alpha_cumprod,
            step_ratio: train / steps,
        })
    }

    fn alpha_at(&self, timestep: usize) -> Result<f32, ModelError> {
        self.alphas_cumprod.get(timestep).copied().ok_or_else(|| {
            ModelError::Scheduler(format!("ddim has no alpha for timestep {timestep}"))
        })
    }
}

impl Scheduler for Ddim {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Ddim
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    fn step_in_place(
        &self,
        model_output: &[f32],
        step_index: usize,
        sample: &mut [f32],
        _noise: Option<&[f32]>,
    ) -> Result<(), ModelError> {
        check_step_args(
            self.kind(),
            self.timesteps.len(),
            step_index,
            model_output,
            sample,
        )?;
        let t = self.indices.get(step_index).copied().unwrap_or(0);
        let alpha_t = self.alpha_at(t)?;
        let alpha_prev = match t.checked_sub(self.step_ratio) {
            Some(prev) => self.alpha_at(prev)?,
            None => self.final_alpha_cumprod,
        };
        let beta_t = 1.0 - alpha_t;
        let (sqrt_alpha_t, sqrt_beta_t) = (alpha_t.sqrt(), beta_t.sqrt());
        // eta = 0: std_dev_t = 0, so the direction coefficient is sqrt(1 - alpha_prev - 0).
        let direction = (1.0 - alpha_prev - 0.0).sqrt();
        let sqrt_alpha_prev = alpha_prev.sqrt();
        for (x, &m) in sample.iter_mut().zip(model_output) {
            let (pred_original, pred_epsilon) = match self.prediction_type {
                PredictionType::Epsilon => ((*x - sqrt_beta_t * m) / sqrt_alpha_t, m),
                PredictionType::Sample | PredictionType::Velocity => {
                    (m, (*x - sqrt_alpha_t * m) / sqrt_beta_t)
                }
                PredictionType::VPrediction => (
                    sqrt_alpha_t * *x - sqrt_beta_t * m,
                    sqrt_alpha_t * m + sqrt_beta_t * *x,
                ),
            };
            let pred_original = clip(pred_original, self.clip_range);
            *x = sqrt_alpha_prev * pred_original + direction * pred_epsilon;
        }
        Ok(())
    }
}
