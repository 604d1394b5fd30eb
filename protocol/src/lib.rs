//! The vocabulary shared by the loopsmith engine, its chat surfaces and the operator console.
//!
//! Everything here is plain serde data: who asked ([`UserKey`]), what they asked for
//! ([`Params`]), where the job is ([`JobState`], [`Job`]) and what happened to it
//! ([`JobEvent`]). The engine gives these types their behaviour (validation, storage,
//! scheduling); the console receives them over the control socket. This crate links neither
//! ONNX Runtime nor sled, so the console stays small.

mod job;
mod params;
mod style;
mod user;

pub use job::{Artifact, Job, JobEvent, JobId, JobState, Timings};
pub use params::{Aspect, BackendChoice, Fit, ImageRef, OutputKind, Params, Timing};
pub use style::{Overrides, ParamDefaults, UserProfile, UserStyle};
pub use user::{Platform, UserKey};

pub mod control;
