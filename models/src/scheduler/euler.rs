//! diffusers' `EulerDiscreteScheduler` with its defaults for everything the `[scheduler]` table
//! does not name: linear sigma interpolation, final sigma 0, no Karras/exponential/beta sigmas,
//! discrete timesteps, and the deterministic (`s_churn = 0`) step.

use super::config::{PredictionType, SchedulerConfig, SchedulerKind, TimestepSpacing};
use super::numeric::{alphas_cumprod, np_interp_index, spaced_timesteps};
use super::{Scheduler, check_index, check_step_args, check_steps};
use crate::ModelError;

/// `EulerDiscreteScheduler` after `set_timesteps(steps)`.
#[derive(Debug, Clone)]
pub struct EulerDiscrete {
    prediction_type: PredictionType,
    timesteps: Vec<f32>,
    /// One per timestep, then 0.
    sigmas: Vec<f32>,
    init_noise_sigma: f32,
}

impl EulerDiscrete {
    /// The schedule for `steps` inference steps.
    pub fn new(config: &SchedulerConfig, steps: usize) -> Result<Self, ModelError> {
        config.validate()?;
        check_steps(config, steps)?;
        if config.kind != SchedulerKind::EulerDiscrete {
            return Err(ModelError::Scheduler(format!(
                "EulerDiscrete was given a {} configuration",
                config.kind.as_str()
            )));
        }
        // sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5, in f32 like the torch tensor.
        let train_sigmas: Vec<f32> = alphas_cumprod(config)
            .into_iter()
            .map(|a| ((1.0 - a) / a).sqrt())
            .collect();
        // numpy computes the spacing in f64 and casts to float32 (linspace keeps fractions);
        // leading adds steps_offset and trailing subtracts 1 to whole numbers, exact in f32.
        let timesteps: Vec<f32> = spaced_timesteps(
            config.timestep_spacing,
            config.num_train_timesteps,
            steps,
            config.steps_offset,
        )
        .into_iter()
        .map(|t| t as f32)
        .collect();
        // np.interp(timesteps, arange, sigmas) in f64, then cast to float32 with the final 0.
        let mut sigmas: Vec<f32> = timesteps
            .iter()
            .map(|&t| np_interp_index(f64::from(t), &train_sigmas) as f32)
            .collect();
        sigmas.push(0.0);
        let max_sigma = sigmas.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let init_noise_sigma = match config.timestep_spacing {
            TimestepSpacing::Linspace | TimestepSpacing::Trailing => max_sigma,
            TimestepSpacing::Leading => (max_sigma * max_sigma + 1.0).sqrt(),
        };
        Ok(EulerDiscrete {
            prediction_type: config.prediction_type,
            timesteps,
            sigmas,
            init_noise_sigma,
        })
    }

    /// `sigmas[i]` and `sigmas[i + 1]`; `i` is checked against the timesteps already.
    fn sigma_pair(&self, step_index: usize) -> Result<(f32, f32), ModelError> {
        match (self.sigmas.get(step_index), self.sigmas.get(step_index + 1)) {
            (Some(&s), Some(&next)) => Ok((s, next)),
            _ => Err(ModelError::Scheduler(format!(
                "euler_discrete has no sigma for step index {step_index}"
            ))),
        }
    }
}

impl Scheduler for EulerDiscrete {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::EulerDiscrete
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    fn sigmas(&self) -> Option<&[f32]> {
        Some(&self.sigmas)
    }

    fn init_noise_sigma(&self) -> f32 {
        self.init_noise_sigma
    }

    fn scale_model_input_in_place(
        &self,
        sample: &mut [f32],
        step_index: usize,
    ) -> Result<(), ModelError> {
        check_index(self.kind(), self.timesteps.len(), step_index)?;
        let (sigma, _) = self.sigma_pair(step_index)?;
        let denominator = (sigma * sigma + 1.0).sqrt();
        for x in sample {
            *x /= denominator;
        }
        Ok(())
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
        let (sigma, sigma_next) = self.sigma_pair(step_index)?;
        // gamma = 0, so sigma_hat = sigma. The operations stay in diffusers' order so the f32
        // rounding matches.
        let dt = sigma_next - sigma;
        let v_out = -sigma / (sigma * sigma + 1.0).sqrt();
        let v_in = sigma * sigma + 1.0;
        for (x, &m) in sample.iter_mut().zip(model_output) {
            let pred_original = match self.prediction_type {
                PredictionType::Epsilon => *x - sigma * m,
                PredictionType::VPrediction => m * v_out + *x / v_in,
                PredictionType::Sample | PredictionType::Velocity => m,
            };
            let derivative = (*x - pred_original) / sigma;
            *x += derivative * dt;
        }
        Ok(())
    }
}
