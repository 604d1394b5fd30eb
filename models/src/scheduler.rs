//! Noise schedulers, ported from diffusers so a bundle's `[scheduler]` table (diffusers' config
//! field names, see `BUNDLE.md`) denoises here exactly as it does in Python.
//!
//! Four diffusers classes are covered, each in its own module: [`EulerDiscrete`]
//! (`EulerDiscreteScheduler`, AnimateDiff-Lightning), [`Ddim`] (`DDIMScheduler`, eta = 0),
//! [`Lcm`] (`LCMScheduler`, AnimateLCM) and [`FlowMatchEuler`]
//! (`FlowMatchEulerDiscreteScheduler`, LTX-Video). Schedules are computed with the precision
//! diffusers uses (numpy in f64, torch tensors in f32) and state is f32, so timesteps and sigmas
//! agree with diffusers to the last bit or two and a step to about 1e-6
//! (`tests/schedulers.rs` checks this against numbers `export/scheduler_reference.py` recorded).
//!
//! A scheduler holds no mutable state: the caller says which step it is at. Tensors are flat
//! f32 slices in any layout, since every update is elementwise.
//!
//! ```
//! use loopsmith_models::scheduler::{self, SchedulerConfig};
//!
//! let config = SchedulerConfig::from_toml(
//!     r#"
//!     kind = "euler_discrete"
//!     beta_start = 0.00085
//!     beta_end = 0.012
//!     beta_schedule = "linear"
//!     timestep_spacing = "trailing"
//!     "#,
//! )?;
//! let scheduler = scheduler::build(&config, 4, None)?;
//! assert_eq!(scheduler.timesteps(), &[999.0, 749.0, 499.0, 249.0]);
//!
//! let mut latents = vec![scheduler.init_noise_sigma(); 8]; // noise * init_noise_sigma
//! for i in 0..scheduler.timesteps().len() {
//!     let input = scheduler.scale_model_input(&latents, i)?;
//!     let prediction = vec![0.0; input.len()]; // the denoiser's output for `input`
//!     scheduler.step_in_place(&prediction, i, &mut latents, None)?;
//! }
//! # Ok::<(), loopsmith_models::ModelError>(())
//! ```

mod config;
mod ddim;
mod euler;
mod flow_match;
mod lcm;
mod numeric;

pub use config::{BetaSchedule, PredictionType, SchedulerConfig, SchedulerKind, TimestepSpacing};
pub use ddim::Ddim;
pub use euler::EulerDiscrete;
pub use flow_match::{FlowMatchEuler, linspace_sigmas};
pub use lcm::Lcm;

use crate::ModelError;

/// One configured denoising schedule: the timesteps to feed the denoiser, and the update from
/// its output to the next sample.
pub trait Scheduler: Send + Sync + std::fmt::Debug {
    /// The diffusers class this follows.
    fn kind(&self) -> SchedulerKind;

    /// The timestep to give the denoiser at each step, largest first. Usually one per requested
    /// step; diffusers' trailing spacing yields one more for a few step counts (61, 103, ...),
    /// and so does this.
    fn timesteps(&self) -> &[f32];

    /// The noise levels, one per timestep plus the final 0 (Euler and flow matching only).
    fn sigmas(&self) -> Option<&[f32]> {
        None
    }

    /// The standard deviation of the starting noise: multiply unit Gaussian noise by this.
    fn init_noise_sigma(&self) -> f32 {
        1.0
    }

    /// Whether `step` at `step_index` needs a `noise` tensor (LCM re-noises all but the last).
    fn needs_noise(&self, step_index: usize) -> bool {
        let _ = step_index;
        false
    }

    /// Scales the denoiser's input in place (Euler divides by `sqrt(sigma² + 1)`; the others
    /// leave it as it is).
    /// Most schedulers feed the sample unscaled; only the step index is checked. Euler
    /// overrides this with its `1/sqrt(σ² + 1)` scaling.
    fn scale_model_input_in_place(
        &self,
        _sample: &mut [f32],
        step_index: usize,
    ) -> Result<(), ModelError> {
        check_index(self.kind(), self.timesteps().len(), step_index)
    }

    /// The denoiser's input for `sample` at `step_index`.
    fn scale_model_input(&self, sample: &[f32], step_index: usize) -> Result<Vec<f32>, ModelError> {
        let mut scaled = sample.to_vec();
        self.scale_model_input_in_place(&mut scaled, step_index)?;
        Ok(scaled)
    }

    /// Advances `sample` in place from `timesteps()[step_index]` to the next timestep, given the
    /// denoiser's output for it. `noise` (unit Gaussian, like `sample`) is read only where
    /// [`Scheduler::needs_noise`] says so; the caller draws it from its own generator.
    fn step_in_place(
        &self,
        model_output: &[f32],
        step_index: usize,
        sample: &mut [f32],
        noise: Option<&[f32]>,
    ) -> Result<(), ModelError>;

    /// [`Scheduler::step_in_place`] on a copy: returns the previous (less noisy) sample.
    fn step(
        &self,
        model_output: &[f32],
        step_index: usize,
        sample: &[f32],
        noise: Option<&[f32]>,
    ) -> Result<Vec<f32>, ModelError> {
        let mut next = sample.to_vec();
        self.step_in_place(model_output, step_index, &mut next, noise)?;
        Ok(next)
    }
}

/// Builds the scheduler `config` describes for `steps` inference steps, as diffusers'
/// `set_timesteps(steps)` would. `image_seq_len` (latent tokens: frames × height × width after
/// patching) is needed only by flow matching with `use_dynamic_shifting`.
pub fn build(
    config: &SchedulerConfig,
    steps: usize,
    image_seq_len: Option<usize>,
) -> Result<Box<dyn Scheduler>, ModelError> {
    Ok(match config.kind {
        SchedulerKind::EulerDiscrete => Box::new(EulerDiscrete::new(config, steps)?),
        SchedulerKind::Ddim => Box::new(Ddim::new(config, steps)?),
        SchedulerKind::Lcm => Box::new(Lcm::new(config, steps)?),
        SchedulerKind::FlowMatchEuler => {
            Box::new(FlowMatchEuler::new(config, steps, image_seq_len)?)
        }
    })
}

/// Builds a flow-matching scheduler from explicit sigmas, as diffusers'
/// `set_timesteps(sigmas=..., mu=...)`; LTX-Video's and Flux's pipelines pass
/// [`linspace_sigmas`]`(steps)` this way rather than letting the scheduler space them.
pub fn build_with_sigmas(
    config: &SchedulerConfig,
    sigmas: &[f32],
    image_seq_len: Option<usize>,
) -> Result<Box<dyn Scheduler>, ModelError> {
    match config.kind {
        SchedulerKind::FlowMatchEuler => Ok(Box::new(FlowMatchEuler::with_sigmas(
            config,
            sigmas,
            image_seq_len,
        )?)),
        other => Err(ModelError::Scheduler(format!(
            "explicit sigmas are supported for flow_match_euler only, not {}",
            other.as_str()
        ))),
    }
}

/// Checks `steps` against the configuration: at least 1, at most the training timesteps.
fn check_steps(config: &SchedulerConfig, steps: usize) -> Result<(), ModelError> {
    if steps == 0 {
        return Err(ModelError::Scheduler(
            "the number of inference steps must be at least 1".to_string(),
        ));
    }
    if steps > config.num_train_timesteps {
        return Err(ModelError::Scheduler(format!(
            "{steps} inference steps exceed the {} timesteps the model was trained with",
            config.num_train_timesteps
        )));
    }
    Ok(())
}

/// Checks a step's arguments: the index is in the schedule and the tensors match in length.
fn check_step_args(
    kind: SchedulerKind,
    steps: usize,
    step_index: usize,
    model_output: &[f32],
    sample: &[f32],
) -> Result<(), ModelError> {
    if step_index >= steps {
        return Err(ModelError::Scheduler(format!(
            "{} step index {step_index} is past the last of its {steps} steps",
            kind.as_str()
        )));
    }
    if model_output.len() != sample.len() {
        return Err(ModelError::Scheduler(format!(
            "{} step: the model output has {} values but the sample has {}",
            kind.as_str(),
            model_output.len(),
            sample.len()
        )));
    }
    Ok(())
}

/// Checks `step_index` alone (for `scale_model_input`).
fn check_index(kind: SchedulerKind, steps: usize, step_index: usize) -> Result<(), ModelError> {
    if step_index >= steps {
        return Err(ModelError::Scheduler(format!(
            "{} step index {step_index} is past the last of its {steps} steps",
            kind.as_str()
        )));
    }
    Ok(())
}

/// Clamps a predicted clean value as DDIM and LCM do with `clip_sample` (`range` is positive).
fn clip(value: f32, range: Option<f32>) -> f32 {
    match range {
        // Like torch.clamp: NaN passes through.
        Some(r) if value < -r => -r,
        Some(r) if value > r => r,
        Some(_) => value,
        None => value,
    }
}
