//! The loopsmith engine.
//!
//! Surfaces build a [`GenerationRequest`] and call [`Engine::submit`]; the engine validates it,
//! resolves the user's style ([`style`]), checks limits, writes the job durably ([`store`]),
//! queues it fairly across users ([`queue`]), renders it on a [`Backend`] (usually a
//! [`Router`] over the local model and Pika), turns the clip into files ([`media`]) and
//! publishes every state change as a [`JobEvent`](loopsmith_protocol::JobEvent).

pub mod backend;
pub mod blocklist;
pub mod control;
mod engine;
mod error;
mod events;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod image_input;
pub mod local;
pub mod media;
pub mod metrics;
pub mod pika;
pub mod queue;
pub mod request;
pub mod router;
pub mod store;
pub mod style;

pub use backend::{
    Backend, BackendError, Clip, Explained, Health, Progress, ProgressSink, RenderJob,
};
pub use engine::{Engine, now_ms};
pub use error::{Error, error_chain, error_levels};
pub use events::{JobEvents, Submitted};
pub use image_input::{ImageError, InputImage};
pub use local::LocalBackend;
pub use loopsmith_protocol as protocol;
pub use pika::{PikaBackend, PikaOptions};
pub use request::{GenerationRequest, ValidationError};
pub use router::{BreakerPolicy, Router, RouterPolicy};
pub use store::{Delivery, MemoryStore, SledStore, Store, StoreError};
/// The token `Backend::render` takes, re-exported so callers need no tokio-util of their own.
pub use tokio_util::sync::CancellationToken;
