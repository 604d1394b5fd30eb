//! The local backend: the ONNX pipeline behind the engine's `Backend` boundary.
//!
//! A model renders a fixed number of frames at its native size and rate. This backend turns
//! that into what the request asked for:
//! - **aspect**: the native frame is cropped, centred, to the requested ratio (a square model
//!   asked for 16:9 keeps its middle band), since padding a generated clip wastes its pixels;
//! - **duration**: the clip is repeated from the start until it lasts the requested time, then
//!   resampled to the requested frame rate (nearest frame). Generated clips are short loops,
//!   so repeating them is what a sticker does anyway; no frames are invented.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use loopsmith_models::ModelError;
use loopsmith_models::pipeline::{Generate, Pipeline};
use loopsmith_protocol::Fit;
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, BackendError, Clip, Health, ProgressSink, RenderJob};
use crate::media::{Frames, PixelFormat};

/// Share of the progress bar the denoising steps fill; decode and reshaping take the rest.
const DENOISE_SHARE: f32 = 0.9;

#[derive(Debug)]
pub struct LocalBackend {
    pipeline: Arc<Pipeline>,
    /// Provider description for health reports, e.g. "cpu (CUDA unavailable: …)".
    provider: String,
    capacity: usize,
    running: Arc<AtomicUsize>,
}

impl LocalBackend {
    pub fn new(pipeline: Pipeline, provider: String, capacity: usize) -> Self {
        LocalBackend {
            pipeline: Arc::new(pipeline),
            provider,
            capacity: capacity.max(1),
            running: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// Counts a render as running for as long as it lives.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn name(&self) -> &str {
        "local"
    }

    fn health(&self) -> Health {
        let running = self.running.load(Ordering::SeqCst);
        if running >= self.capacity {
            Health::Busy {
                detail: format!("{running} job(s) rendering on {}", self.provider),
            }
        } else {
            Health::Ready
        }
    }

    async fn render(
        &self,
        job: &RenderJob,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> Result<Clip, BackendError> {
        self.running.fetch_add(1, Ordering::SeqCst);
        let _slot = Slot(self.running.clone());
        let params = job.params.clone();
        let request = Generate {
            prompt: params.prompt.clone(),
            negative_prompt: params.negative_prompt.clone(),
            steps: None,
            guidance: params.guidance,
            seed: params.seed,
            scheduler: None,
            latents: None,
        };
        let pipeline = self.pipeline.clone();
        let sink = progress.clone();
        let token = cancel.clone();
        // The pipeline blocks until its worker thread answers; keep that off the async threads.
        let generated = tokio::task::spawn_blocking(move || {
            pipeline.generate(
                &request,
                move |done, total| {
                    sink.report(
                        "local",
                        DENOISE_SHARE * done as f32 / total as f32,
                        Some(format!("denoising step {done}/{total}")),
                    )
                },
                move || token.is_cancelled(),
            )
        })
        .await
        .map_err(|e| failed(format!("the render task ended abnormally: {e}")))?
        .map_err(|e| match e {
            ModelError::Cancelled => BackendError::Cancelled,
            other => BackendError::Failed {
                backend: "local".into(),
                retry_elsewhere: true,
                source: Box::new(other),
            },
        })?;

        let native = Frames {
            width: generated.width,
            height: generated.height,
            format: PixelFormat::Rgb8,
            fps: generated.fps.max(1),
            frames: generated.rgb8(),
        };
        let clip = shape(
            &native,
            params.aspect.ratio(),
            params.duration_secs,
            params.fps,
        );
        progress.report("local", 1.0, None);
        Ok(Clip {
            width: clip.width,
            height: clip.height,
            fps: clip.fps,
            frames: clip.frames,
            seed: params.seed,
            backend: "local".into(),
        })
    }
}

fn failed(message: String) -> BackendError {
    BackendError::Failed {
        backend: "local".into(),
        retry_elsewhere: true,
        source: message.into(),
    }
}

/// Crops to the aspect ratio, repeats to the duration, resamples to the frame rate.
pub fn shape(native: &Frames, (aw, ah): (u32, u32), duration_secs: f32, fps: u32) -> Frames {
    let (w, h) = (native.width, native.height);
    let (cw, ch) = if w * ah > h * aw {
        ((h * aw / ah).max(2) & !1, h & !1)
    } else {
        (w & !1, (w * ah / aw).max(2) & !1)
    };
    let cropped = native.fit_into(cw, ch, Fit::Crop, true);
    let wanted = (duration_secs as f64 * cropped.fps as f64).round().max(1.0) as usize;
    let looped: Vec<Vec<u8>> = cropped
        .frames
        .iter()
        .cycle()
        .take(wanted)
        .cloned()
        .collect();
    Frames {
        frames: looped,
        ..cropped
    }
    .with_fps(fps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(n: usize) -> Frames {
        Frames {
            width: 16,
            height: 16,
            format: PixelFormat::Rgb8,
            fps: 8,
            frames: (0..n).map(|i| vec![i as u8; 16 * 16 * 3]).collect(),
        }
    }

    #[test]
    fn shaping_crops_to_the_aspect_and_repeats_to_the_duration() {
        let clip = shape(&native(16), (16, 9), 5.0, 24);
        assert_eq!((clip.width, clip.height, clip.fps), (16, 8, 24));
        assert_eq!(clip.frames.len(), 120, "5 s at 24 fps");
        // 2 s of model frames repeat: 8 fps → frame 16 is the first frame again.
        assert_eq!(clip.frames[0][0], 0);
        assert_eq!(clip.frames[48][0], 0, "t = 2 s starts the second loop");
        assert_eq!(clip.frames[47][0], 15);
        let tall = shape(&native(16), (9, 16), 3.0, 8);
        assert_eq!((tall.width, tall.height, tall.frames.len()), (8, 16, 24));
        let square = shape(&native(16), (1, 1), 3.0, 8);
        assert_eq!((square.width, square.height), (16, 16));
    }
}
