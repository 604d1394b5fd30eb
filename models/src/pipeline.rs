//! Text to frames: tokenize → encode the text (conditional and, for classifier-free guidance,
//! unconditional; cached per prompt) → seeded initial noise → the denoising loop (scale the
//! input, run the denoiser, `u + g·(c − u)`, scheduler step) → VAE decode in chunks → RGB.
//!
//! Everything that touches ONNX Runtime runs on the model worker's own thread; the caller's
//! thread only waits. Progress is reported after every denoiser call and cancellation is
//! checked between steps.

mod noise;
mod tensor;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::ModelError;
use crate::bundle::{Bundle, Family, GraphRole, Manifest};
use crate::runtime::{HostInput, ModelWorker, Runtime, Sessions};
use crate::scheduler::{self, SchedulerConfig};

pub use noise::gaussian_noise;

/// Frames decoded per VAE call, as diffusers' `decode_chunk_size`.
const DECODE_CHUNK: usize = 16;

/// One generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generate {
    pub prompt: String,
    pub negative_prompt: String,
    /// Denoising steps; the bundle's default when `None`.
    pub steps: Option<usize>,
    /// Classifier-free guidance scale; the bundle's default when `None`. 1.0 or less runs one
    /// denoiser pass per step.
    pub guidance: Option<f32>,
    pub seed: u32,
    /// A scheduler other than the bundle's (same model, another sampler).
    pub scheduler: Option<SchedulerConfig>,
    /// Initial latents to use instead of seeded noise (already multiplied by nothing; the
    /// scheduler's `init_noise_sigma` is applied as for noise).
    pub latents: Option<Vec<f32>>,
}

/// Frames with values in [0, 1], `[frame][channel-interleaved RGB]`, and how long each stage took.
#[derive(Debug, Clone)]
pub struct Generated {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// RGB floats in [0, 1], one Vec per frame, interleaved.
    pub frames: Vec<Vec<f32>>,
    pub timings: StageTimings,
}

impl Generated {
    /// Frames as 8-bit RGB.
    pub fn rgb8(&self) -> Vec<Vec<u8>> {
        self.frames
            .iter()
            .map(|f| {
                f.iter()
                    .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
                    .collect()
            })
            .collect()
    }
}

/// Wall time per stage, for the benchmark's overhead figure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimings {
    pub text_encoder: Duration,
    /// Each denoiser session run, in order.
    pub denoiser: Vec<Duration>,
    pub scheduler: Duration,
    pub decode: Duration,
    pub total: Duration,
}

impl StageTimings {
    /// Time spent inside session runs; what is left of `total` is the pipeline's own overhead.
    pub fn session_time(&self) -> Duration {
        self.text_encoder + self.denoiser.iter().sum::<Duration>() + self.decode
    }
}

/// A loaded bundle on its worker thread.
#[derive(Debug)]
pub struct Pipeline {
    manifest: Arc<Manifest>,
    scheduler: SchedulerConfig,
    tokenizer: Arc<Tokenizer>,
    worker: ModelWorker,
    /// Text embeddings by prompt: re-rolls and variations reuse them.
    text_cache: Arc<Mutex<HashMap<String, Arc<Vec<f32>>>>>,
}

impl Pipeline {
    /// Loads every graph of the bundle on a new worker thread.
    pub fn load(bundle: &Bundle, runtime: Runtime) -> Result<Pipeline, ModelError> {
        let manifest = bundle.manifest().clone();
        let scheduler: SchedulerConfig = toml::Value::Table(manifest.scheduler.clone())
            .try_into()
            .map_err(|e: toml::de::Error| ModelError::Scheduler(e.message().to_string()))?;
        scheduler.validate()?;
        let tokenizer = load_tokenizer(&bundle.tokenizer_path(), &manifest)?;
        let specs = bundle
            .session_specs()
            .into_iter()
            .map(|(_, spec)| spec)
            .collect();
        let worker = ModelWorker::spawn(runtime, specs, 2)?;
        Ok(Pipeline {
            manifest: Arc::new(manifest),
            scheduler,
            tokenizer: Arc::new(tokenizer),
            worker,
            text_cache: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Token ids for a prompt, padded and truncated to the bundle's `max_length`.
    pub fn tokenize(&self, text: &str) -> Result<Vec<i64>, ModelError> {
        tokenize(&self.tokenizer, text)
    }

    /// Runs one generation. `progress(done, total)` is called after each denoiser call;
    /// `cancelled()` is checked between steps.
    pub fn generate(
        &self,
        request: &Generate,
        progress: impl FnMut(usize, usize) + Send + 'static,
        cancelled: impl Fn() -> bool + Send + 'static,
    ) -> Result<Generated, ModelError> {
        let job = Job {
            manifest: self.manifest.clone(),
            scheduler: request
                .scheduler
                .clone()
                .unwrap_or_else(|| self.scheduler.clone()),
            tokenizer: self.tokenizer.clone(),
            cache: self.text_cache.clone(),
            request: request.clone(),
        };
        self.worker
            .handle()
            .call(move |sessions| job.run(sessions, progress, cancelled))
    }
}

fn load_tokenizer(path: &Path, manifest: &Manifest) -> Result<Tokenizer, ModelError> {
    let mut tokenizer = Tokenizer::from_file(path)
        .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
    let max_length = manifest.text.max_length as usize;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            ..TruncationParams::default()
        }))
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    let pad_token = tokenizer
        .id_to_token(manifest.text.pad_id)
        .unwrap_or_default();
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::Fixed(max_length),
        direction: PaddingDirection::Right,
        pad_id: manifest.text.pad_id,
        pad_token,
        ..PaddingParams::default()
    }));
    Ok(tokenizer)
}

fn tokenize(tokenizer: &Tokenizer, text: &str) -> Result<Vec<i64>, ModelError> {
    let encoding = tokenizer
        .encode(text, true)
        .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
    Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
}

/// Everything one generation needs, moved onto the worker thread.
struct Job {
    manifest: Arc<Manifest>,
    scheduler: SchedulerConfig,
    tokenizer: Arc<Tokenizer>,
    cache: Arc<Mutex<HashMap<String, Arc<Vec<f32>>>>>,
    request: Generate,
}

impl Job {
    fn run(
        self,
        sessions: &mut Sessions,
        mut progress: impl FnMut(usize, usize),
        cancelled: impl Fn() -> bool,
    ) -> Result<Generated, ModelError> {
        let started = Instant::now();
        let m = &self.manifest;
        let mut timings = StageTimings::default();
        let steps = self.request.steps.unwrap_or(m.defaults.steps as usize);
        let guidance = self.request.guidance.unwrap_or(m.defaults.guidance);
        let cfg = guidance > 1.0;
        let frames = m.video.frames as usize;
        let (channels, lh, lw) = latent_shape(m);

        // Text: [uncond, cond] when guiding, as diffusers orders the batch.
        let t0 = Instant::now();
        let cond = self.embed(sessions, &self.request.prompt)?;
        let context = if cfg {
            let uncond = self.embed(sessions, &self.request.negative_prompt)?;
            [
                tensor::repeat_frames(&uncond, frames),
                tensor::repeat_frames(&cond, frames),
            ]
            .concat()
        } else {
            tensor::repeat_frames(&cond, frames)
        };
        timings.text_encoder = t0.elapsed();
        let (max_length, hidden) = (m.text.max_length as usize, m.text.hidden_size as usize);
        let batch = if cfg { 2 } else { 1 };

        let image_seq_len = Some(frames * lh * lw);
        let schedule = scheduler::build(&self.scheduler, steps, image_seq_len)?;
        let latent_len = channels * frames * lh * lw;
        let mut x = match &self.request.latents {
            Some(given) if given.len() == latent_len => given.clone(),
            Some(given) => {
                return Err(ModelError::Shape(format!(
                    "initial latents have {} values; this model needs {latent_len} ({channels}x{frames}x{lh}x{lw})",
                    given.len()
                )));
            }
            None => gaussian_noise(u64::from(self.request.seed), latent_len),
        };
        let sigma0 = schedule.init_noise_sigma();
        x.iter_mut().for_each(|v| *v *= sigma0);

        let total = schedule.timesteps().len();
        let t = &m.tensors;
        let sample_shape = [batch, channels, frames, lh, lw];
        let context_shape = [batch * frames, max_length, hidden];
        let denoiser = sessions.graph(GraphRole::Denoiser.name())?;
        // IO binding: the prompt embedding (the largest input, [2·frames, 77, 768] for SD1.5)
        // goes to the device once and stays bound for every step; the output is bound to
        // device memory. The latents come to the host each step because the scheduler is
        // host-side Rust; at 1 MB for SD1.5 that copy is small next to one UNet call.
        let mut binding = denoiser.binding()?;
        let context_value = denoiser.input_value(
            t.denoiser_context.as_str(),
            HostInput::F32 {
                shape: &context_shape,
                data: &context,
            },
        )?;
        binding.bind_input(t.denoiser_context.as_str(), &context_value)?;
        for i in 0..total {
            if cancelled() {
                return Err(ModelError::Cancelled);
            }
            let ts = Instant::now();
            let scaled = schedule.scale_model_input(&x, i)?;
            let input = if cfg {
                [scaled.as_slice(), scaled.as_slice()].concat()
            } else {
                scaled
            };
            let timestep = vec![schedule.timesteps()[i]; batch];
            timings.scheduler += ts.elapsed();

            let td = Instant::now();
            let sample_value = denoiser.input_value(
                t.denoiser_sample.as_str(),
                HostInput::F32 {
                    shape: &sample_shape,
                    data: &input,
                },
            )?;
            binding.bind_input(t.denoiser_sample.as_str(), &sample_value)?;
            let timestep_value = denoiser.input_value(
                t.denoiser_timestep.as_str(),
                HostInput::F32 {
                    shape: &[batch],
                    data: &timestep,
                },
            )?;
            binding.bind_input(t.denoiser_timestep.as_str(), &timestep_value)?;
            let mut out = denoiser.run_binding(&binding)?;
            let predicted = out
                .remove(&t.denoiser_output)
                .ok_or_else(|| missing(&t.denoiser_output))?;
            let prediction = denoiser.to_host(&t.denoiser_output, &predicted)?.data;
            timings.denoiser.push(td.elapsed());
            if prediction.len() != latent_len * batch {
                return Err(ModelError::Shape(format!(
                    "the denoiser returned {} values; expected {}",
                    prediction.len(),
                    latent_len * batch
                )));
            }

            let ts = Instant::now();
            let guided = if cfg {
                let (u, c) = prediction.split_at(latent_len);
                u.iter()
                    .zip(c)
                    .map(|(u, c)| u + guidance * (c - u))
                    .collect()
            } else {
                prediction
            };
            let noise = schedule.needs_noise(i).then(|| {
                gaussian_noise(
                    u64::from(self.request.seed) ^ ((i as u64 + 1) << 32),
                    latent_len,
                )
            });
            schedule.step_in_place(&guided, i, &mut x, noise.as_deref())?;
            timings.scheduler += ts.elapsed();
            progress(i + 1, total);
        }

        let tdec = Instant::now();
        let (width, height, pixels) = match m.family {
            Family::Pixel => (
                lw,
                lh,
                tensor::channels_first_video_to_frames(&x, channels, frames, lh, lw),
            ),
            Family::AnimateDiff => self.decode(sessions, &x)?,
        };
        timings.decode = tdec.elapsed();
        timings.total = started.elapsed();
        Ok(Generated {
            width: width as u32,
            height: height as u32,
            fps: m.video.fps,
            frames: pixels,
            timings,
        })
    }

    /// The text encoder's output for one prompt, from the cache when it has been seen.
    fn embed(&self, sessions: &mut Sessions, prompt: &str) -> Result<Arc<Vec<f32>>, ModelError> {
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(prompt).cloned()) {
            return Ok(hit);
        }
        let ids = tokenize(&self.tokenizer, prompt)?;
        let t = &self.manifest.tensors;
        let mut out = sessions.graph(GraphRole::TextEncoder.name())?.run_host(&[(
            t.text_input_ids.as_str(),
            HostInput::I64 {
                shape: &[1, ids.len()],
                data: &ids,
            },
        )])?;
        let embedding = Arc::new(
            out.remove(&t.text_output)
                .ok_or_else(|| missing(&t.text_output))?
                .data,
        );
        if let Ok(mut cache) = self.cache.lock() {
            // Bounded: a busy bot sees many prompts, and each embedding can be large.
            if cache.len() >= 256 {
                cache.clear();
            }
            cache.insert(prompt.to_string(), embedding.clone());
        }
        Ok(embedding)
    }

    /// Latents `[1, C, F, h, w]` → frames through the VAE, `DECODE_CHUNK` frames per call.
    fn decode(
        &self,
        sessions: &mut Sessions,
        latents: &[f32],
    ) -> Result<(usize, usize, Vec<Vec<f32>>), ModelError> {
        let m = &self.manifest;
        let (channels, lh, lw) = latent_shape(m);
        let frames = m.video.frames as usize;
        let (input, output) = match (&m.tensors.vae_input, &m.tensors.vae_output) {
            (Some(i), Some(o)) => (i.as_str(), o.as_str()),
            _ => {
                return Err(ModelError::Bundle {
                    path: m.name.clone(),
                    message: "an animatediff bundle needs vae_input and vae_output tensors".into(),
                });
            }
        };
        let scaled: Vec<f32> = latents
            .iter()
            .map(|v| v / m.latent.scaling_factor)
            .collect();
        let per_frame = tensor::video_to_frame_batch(&scaled, channels, frames, lh, lw);
        let mut out = Vec::with_capacity(frames);
        let (mut width, mut height) = (0, 0);
        for chunk in per_frame.chunks(DECODE_CHUNK * channels * lh * lw) {
            let n = chunk.len() / (channels * lh * lw);
            let mut decoded = sessions.graph(GraphRole::VaeDecoder.name())?.run_host(&[(
                input,
                HostInput::F32 {
                    shape: &[n, channels, lh, lw],
                    data: chunk,
                },
            )])?;
            let pictures = decoded.remove(output).ok_or_else(|| missing(output))?;
            let [_, 3, h, w] = pictures.shape[..] else {
                return Err(ModelError::Shape(format!(
                    "the VAE returned shape {:?}; expected [N, 3, H, W]",
                    pictures.shape
                )));
            };
            (width, height) = (w, h);
            out.extend(tensor::planar_images_to_frames(&pictures.data, n, h, w));
        }
        Ok((width, height, out))
    }
}

fn latent_shape(m: &Manifest) -> (usize, usize, usize) {
    let d = m.latent.downscale.max(1);
    (
        m.latent.channels as usize,
        (m.video.height / d) as usize,
        (m.video.width / d) as usize,
    )
}

fn missing(name: &str) -> ModelError {
    ModelError::Shape(format!("the graph has no output named `{name}`"))
}
