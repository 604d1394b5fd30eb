//! Turning a rendered [`Clip`] into the files surfaces deliver. The encoders themselves (VP9
//! WebM, H.264 MP4, APNG, GIF) live behind [`Encoder`] so the engine can be exercised without
//! spending seconds in libvpx.

use std::fmt::Debug;
use std::path::Path;

use loopsmith_protocol::{Artifact, OutputKind};

use crate::backend::Clip;

/// A clip could not be made into a requested file.
#[derive(Debug, thiserror::Error)]
#[error("cannot make {kind} from the clip: {reason}")]
pub struct EncodeError {
    pub kind: OutputKind,
    pub reason: String,
}

pub trait Encoder: Send + Sync + Debug {
    /// Writes exactly the outputs asked for into `dir`, each inside its platform's limits.
    fn encode(
        &self,
        clip: &Clip,
        outputs: &[OutputKind],
        dir: &Path,
    ) -> Result<Vec<Artifact>, EncodeError>;
}
