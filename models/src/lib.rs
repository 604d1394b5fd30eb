//! The local ONNX text-to-video pipeline: model bundles ([`bundle`], format in `BUNDLE.md`),
//! the ONNX Runtime it runs on ([`runtime`]), and diffusers-compatible noise schedulers
//! ([`scheduler`]).

pub mod bundle;
mod error;
pub mod pipeline;
pub mod runtime;
pub mod scheduler;

pub use error::ModelError;
