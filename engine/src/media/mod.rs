//! Turning frames into the files platforms accept, and video from elsewhere back into frames.
//!
//! Every encoder checks its own output against the platform's limits with an independent
//! reader ([`inspect`]) before returning it: a file that would be refused is an error here,
//! never a surprise in a chat.

pub mod decode;
pub mod discord;
mod encoder;
pub mod frames;
pub mod inspect;
pub mod looping;
pub mod mp4;
pub mod sticker;
mod vpx;
mod webm;
pub mod yuv;

use std::fmt::Debug;
use std::path::Path;

use loopsmith_protocol::{Artifact, Params};

use crate::backend::Clip;
pub use encoder::MediaEncoder;
pub use frames::{Fit, Frames, PixelFormat, Timing};
pub use vpx::libvpx_version;

/// Why media could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("invalid frames: {0}")]
    InvalidFrames(String),
    #[error("{codec} encoder failed: {message}")]
    Encoder {
        codec: &'static str,
        message: String,
    },
    /// Even the smallest variant tried did not fit the platform's byte limit.
    #[error("cannot fit {what} into {limit} bytes; the smallest attempt was {bytes} bytes")]
    TooBig {
        what: &'static str,
        bytes: usize,
        limit: usize,
    },
    /// The finished file broke a platform rule; it is not delivered.
    #[error("{what} breaks a platform rule: {rule}")]
    Violation { what: &'static str, rule: String },
    #[error("cannot read {what}: {message}")]
    Malformed { what: &'static str, message: String },
    #[error("cannot decode the video: {0}")]
    Decode(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("cannot write {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub trait Encoder: Send + Sync + Debug {
    /// Writes exactly the outputs `params.outputs` asks for into `dir`, each inside its
    /// platform's limits.
    fn encode(&self, clip: &Clip, params: &Params, dir: &Path)
    -> Result<Vec<Artifact>, MediaError>;
}
