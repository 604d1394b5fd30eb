//! diffusers' `FlowMatchEulerDiscreteScheduler` (rectified flow: the denoiser predicts the
//! velocity `noise - sample`), with exponential time shifting and without Karras, exponential or
//! beta sigmas, inverted sigmas, stochastic sampling or per-token timesteps.
//!
//! Two things in diffusers' maths decide the numbers and are kept:
//! - Sigmas the scheduler spaces itself go from its `sigma_max` to its `sigma_min`, which
//!   `__init__` already shifted; `set_timesteps` then shifts again. With `shift = 3` the last
//!   sigma is `shift(shift(0.001))`, not `shift(1 / steps)`.
//! - Those are computed in f64 (numpy), but explicit sigmas (what LTX-Video's and Flux's
//!   pipelines pass) are cast to float32 first, and numpy keeps the shifting in float32.

use super::config::{SchedulerConfig, SchedulerKind};
use super::numeric::np_linspace;
use super::{Scheduler, check_step_args, check_steps};
use crate::ModelError;

/// `FlowMatchEulerDiscreteScheduler` after `set_timesteps`.
#[derive(Debug, Clone)]
pub struct FlowMatchEuler {
    timesteps: Vec<f32>,
    /// One per timestep, then 0.
    sigmas: Vec<f32>,
}

/// The sigmas LTX-Video's and Flux's pipelines hand the scheduler:
/// `np.linspace(1.0, 1 / steps, steps)`, as float32 (the scheduler's first cast).
pub fn linspace_sigmas(steps: usize) -> Vec<f32> {
    let last = if steps == 0 { 1.0 } else { 1.0 / steps as f64 };
    np_linspace(1.0, last, steps, true)
        .into_iter()
        .map(|s| s as f32)
        .collect()
}

/// How the sigmas get shifted: a static factor, or `exp(mu)` for dynamic shifting.
#[derive(Debug, Clone, Copy)]
enum Shift {
    Static(f64),
    Dynamic { mu: f64 },
}

impl FlowMatchEuler {
    /// `set_timesteps(steps, mu=mu)`: the scheduler spaces the sigmas. `image_seq_len` gives
    /// `mu` when the configuration uses dynamic shifting.
    pub fn new(
        config: &SchedulerConfig,
        steps: usize,
        image_seq_len: Option<usize>,
    ) -> Result<Self, ModelError> {
        let shift = prepare(config, steps, image_seq_len)?;
        let train = config.num_train_timesteps;
        // __init__: sigmas = linspace(1, train, train)[::-1] / train in float32, shifted there
        // (in float32) unless shifting is dynamic; sigma_max and sigma_min are its ends.
        let init = |t: f32| -> f64 {
            let sigma = t / train as f32;
            let sigma = match shift {
                Shift::Static(s) => (s as f32 * sigma) / (1.0 + (s - 1.0) as f32 * sigma),
                Shift::Dynamic { .. } => sigma,
            };
            f64::from(sigma)
        };
        let (sigma_max, sigma_min) = (init(train as f32), init(1.0));
        // set_timesteps: timesteps = linspace(sigma_max * train, sigma_min * train, steps) and
        // sigmas = timesteps / train, all f64, then shifted (again) in f64.
        let train_f = train as f64;
        let sigmas: Vec<f64> = np_linspace(sigma_max * train_f, sigma_min * train_f, steps, true)
            .into_iter()
            .map(|t| t / train_f)
            .collect();
        let sigmas: Vec<f64> = match shift {
            Shift::Static(s) => sigmas
                .into_iter()
                .map(|x| s * x / (1.0 + (s - 1.0) * x))
                .collect(),
            Shift::Dynamic { mu } => {
                let e = mu.exp();
                sigmas
                    .into_iter()
                    .map(|t| e / (e + (1.0 / t - 1.0)))
                    .collect()
            }
        };
        let sigmas = if config.shift_terminal != 0.0 {
            stretch_f64(&sigmas, config.shift_terminal)
        } else {
            sigmas
        };
        Self::finish(config, sigmas.into_iter().map(|s| s as f32).collect())
    }

    /// `set_timesteps(sigmas=sigmas, mu=mu)`: the caller's sigmas (largest first, no final 0),
    /// shifted and stretched as the configuration says, in float32 as numpy does it.
    pub fn with_sigmas(
        config: &SchedulerConfig,
        sigmas: &[f32],
        image_seq_len: Option<usize>,
    ) -> Result<Self, ModelError> {
        let shift = prepare(config, sigmas.len(), image_seq_len)?;
        if let Some(bad) = sigmas
            .iter()
            .find(|s| !(s.is_finite() && **s > 0.0 && **s <= 1.0))
        {
            return Err(ModelError::Scheduler(format!(
                "flow_match_euler sigmas must lie in (0, 1]; got {bad}"
            )));
        }
        // numpy 2 keeps float32 arrays float32 when mixed with Python floats, so each Python
        // constant is rounded to f32 first and every operation is an f32 one.
        let shifted: Vec<f32> = match shift {
            Shift::Static(s) => {
                let (s32, s_minus_one) = (s as f32, (s - 1.0) as f32);
                sigmas
                    .iter()
                    .map(|&x| s32 * x / (1.0 + s_minus_one * x))
                    .collect()
            }
            Shift::Dynamic { mu } => {
                let e = mu.exp() as f32;
                sigmas.iter().map(|&t| e / (e + (1.0 / t - 1.0))).collect()
            }
        };
        let shifted = if config.shift_terminal != 0.0 {
            let one_minus_terminal = (1.0 - config.shift_terminal) as f32;
            let last = shifted.last().map_or(0.0, |t| 1.0 - t);
            let scale = last / one_minus_terminal;
            shifted.iter().map(|t| 1.0 - (1.0 - t) / scale).collect()
        } else {
            shifted
        };
        Self::finish(config, shifted)
    }

    /// timesteps = sigmas * num_train_timesteps (float32), then the final sigma 0.
    fn finish(config: &SchedulerConfig, mut sigmas: Vec<f32>) -> Result<Self, ModelError> {
        if let Some(bad) = sigmas.iter().find(|s| !s.is_finite()) {
            return Err(ModelError::Scheduler(format!(
                "flow_match_euler produced a non-finite sigma ({bad}); check shift, mu and \
                 shift_terminal"
            )));
        }
        let train = config.num_train_timesteps as f32;
        let timesteps = sigmas.iter().map(|s| s * train).collect();
        sigmas.push(0.0);
        Ok(FlowMatchEuler { timesteps, sigmas })
    }
}

/// Validation shared by both constructors, and the shift to apply.
fn prepare(
    config: &SchedulerConfig,
    steps: usize,
    image_seq_len: Option<usize>,
) -> Result<Shift, ModelError> {
    config.validate()?;
    check_steps(config, steps)?;
    if config.kind != SchedulerKind::FlowMatchEuler {
        return Err(ModelError::Scheduler(format!(
            "FlowMatchEuler was given a {} configuration",
            config.kind.as_str()
        )));
    }
    if config.shift_terminal != 0.0 && steps < 2 {
        // diffusers divides 0 by 0 here (the only sigma is 1, so is the last one).
        return Err(ModelError::Scheduler(
            "shift_terminal needs at least 2 steps: with one, stretching to the terminal sigma \
             divides by zero"
                .to_string(),
        ));
    }
    if config.use_dynamic_shifting {
        let Some(len) = image_seq_len else {
            return Err(ModelError::Scheduler(
                "use_dynamic_shifting needs the latent sequence length (image_seq_len) to \
                 compute mu"
                    .to_string(),
            ));
        };
        Ok(Shift::Dynamic {
            mu: config.dynamic_shift_mu(len),
        })
    } else {
        Ok(Shift::Static(config.shift))
    }
}

/// diffusers' `stretch_shift_to_terminal` in f64: scale `1 - sigma` so the last sigma becomes
/// `terminal`.
fn stretch_f64(sigmas: &[f64], terminal: f64) -> Vec<f64> {
    let last = sigmas.last().map_or(0.0, |t| 1.0 - t);
    let scale = last / (1.0 - terminal);
    sigmas.iter().map(|t| 1.0 - (1.0 - t) / scale).collect()
}

impl Scheduler for FlowMatchEuler {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::FlowMatchEuler
    }

    fn timesteps(&self) -> &[f32] {
        &self.timesteps
    }

    fn sigmas(&self) -> Option<&[f32]> {
        Some(&self.sigmas)
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
        let (Some(&sigma), Some(&sigma_next)) =
            (self.sigmas.get(step_index), self.sigmas.get(step_index + 1))
        else {
            return Err(ModelError::Scheduler(format!(
                "flow_match_euler has no sigma for step index {step_index}"
            )));
        };
        let dt = sigma_next - sigma;
        for (x, &v) in sample.iter_mut().zip(model_output) {
            *x += dt * v;
        }
        Ok(())
    }
}
