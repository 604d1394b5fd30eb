//! What the Pika tests share: a fake fal server, a backend pointed at it with a clock that
//! never waits, test videos made by the engine's own encoder, and a progress recorder.
#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use loopsmith_engine::media::mp4::{AnimationLimits, encode_animation};
use loopsmith_engine::media::{Frames, PixelFormat};
use loopsmith_engine::pika::{
    DownloadPolicy, ManualClock, PikaBackend, PikaOptions, PriceTable, Resolution, RetryPolicy,
};
use loopsmith_engine::protocol::{
    Aspect, BackendChoice, JobId, OutputKind, Params, Platform, UserKey,
};
use loopsmith_engine::store::{SpendCaps, SpendEntry, SpendState};
use loopsmith_engine::{
    Backend, BackendError, Clip, MemoryStore, Progress, ProgressSink, RenderJob, Store,
};
use loopsmith_fakes::fal::{FakeFal, Media};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

/// The key the fake accepts. It must never show up in logs, errors or Debug output.
pub const KEY: &str = "canary-fal-key-7f3a9c";

pub struct Setup {
    pub fal: FakeFal,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub options: PikaOptions,
}

impl Setup {
    pub async fn new() -> Setup {
        Setup::with_store(Arc::new(MemoryStore::new())).await
    }

    pub async fn with_store(store: Arc<dyn Store>) -> Setup {
        let fal = FakeFal::start(KEY)
            .await
            .expect("the fake fal server starts");
        fal.put_media(
            "result.mp4",
            Media::File {
                bytes: five_second_mp4(),
                content_type: "video/mp4".into(),
            },
        );
        let options = options(&fal.base_url());
        Setup {
            fal,
            store,
            clock: Arc::new(ManualClock::new()),
            options,
        }
    }

    /// A backend over this set-up's fake, store and clock, with the options as they are now.
    pub fn backend(&self) -> PikaBackend {
        self.backend_with_key(Some(KEY))
    }

    /// Renders the tests' usual job (job 1 of user "a", 3 s at 8 fps) with nothing watching
    /// its progress and nothing cancelling it.
    pub async fn render_one(&self) -> Result<Clip, BackendError> {
        self.backend()
            .render(
                &job(1, &user("a"), 3.0, 8),
                Recorder::default().sink(),
                CancellationToken::new(),
            )
            .await
    }

    pub fn backend_with_key(&self, key: Option<&str>) -> PikaBackend {
        PikaBackend::new(
            self.options.clone(),
            key.map(|k| SecretString::from(k.to_string())),
            self.store.clone(),
            self.clock.clone(),
        )
        .expect("the backend builds")
    }

    pub fn entries(&self) -> Vec<(u64, SpendState, u64)> {
        self.store
            .spend_entries()
            .expect("ledger")
            .into_iter()
            .map(|e: SpendEntry| (e.job.0, e.state, e.micro_usd))
            .collect()
    }
}

pub fn options(base_url: &str) -> PikaOptions {
    PikaOptions {
        base_url: base_url.to_string(),
        storage_url: base_url.to_string(),
        resolution: Resolution::P720,
        prices: PriceTable::from_usd(0.20, 0.45),
        caps: SpendCaps {
            user_micro_usd: 1_000_000,
            global_micro_usd: 5_000_000,
        },
        poll_interval: Duration::from_secs(2),
        status_stream: false,
        stream_silence: Duration::from_secs(5),
        start_timeout_secs: 300,
        deadline: Duration::from_secs(600),
        retry: RetryPolicy::DEFAULT,
        download: DownloadPolicy {
            hosts: vec!["127.0.0.1".into()],
            max_bytes: 4 * 1024 * 1024,
            stall_timeout: Duration::from_secs(5),
            total_timeout: Duration::from_secs(20),
        },
    }
}

pub fn user(id: &str) -> UserKey {
    UserKey::new(Platform::Telegram, id)
}

pub fn job(id: u64, user: &UserKey, duration_secs: f32, fps: u32) -> RenderJob {
    RenderJob {
        id: JobId(id),
        user: user.clone(),
        params: Params {
            prompt: "a red ball bouncing".into(),
            user_prompt: "a red ball bouncing".into(),
            negative_prompt: "blurry".into(),
            duration_secs,
            fps,
            aspect: Aspect::Square,
            motion: 2,
            seed: 1234,
            guidance: None,
            style: "none".into(),
            outputs: vec![OutputKind::WebmSticker],
            backend: BackendChoice::Pika,
            fit: Default::default(),
            timing: Default::default(),
            seamless_loop: true,
            image: None,
        },
    }
}

/// A 5 s, 8 fps, 64×64 H.264 MP4 whose frames count up in brightness, made once.
pub fn five_second_mp4() -> Bytes {
    static MP4: OnceLock<Bytes> = OnceLock::new();
    MP4.get_or_init(|| {
        let (w, h, fps, n) = (64u32, 64u32, 8u32, 40usize);
        let frames = Frames {
            width: w,
            height: h,
            format: PixelFormat::Rgb8,
            fps,
            frames: (0..n)
                .map(|i| vec![(i * 6) as u8; (w * h * 3) as usize])
                .collect(),
        };
        let limits = AnimationLimits {
            max_side: 1280,
            max_bytes: 10_000_000,
            max_fps: 30,
        };
        Bytes::from(encode_animation(&frames, &limits).expect("the test video encodes"))
    })
    .clone()
}

/// The committed Pika-like fixture: H.264 High profile with B-frames, 320×180, 24 fps, 1 s.
pub fn high_profile_mp4() -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mp4/high_bframes_320x180_24fps.mp4");
    Bytes::from(std::fs::read(path).expect("the committed fixture is readable"))
}

/// Collects progress reports.
#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Progress>>>);

impl Recorder {
    pub fn sink(&self) -> ProgressSink {
        let seen = self.0.clone();
        ProgressSink::new(move |p| seen.lock().expect("lock").push(p))
    }

    pub fn notes(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|p| p.note.clone())
            .collect()
    }

    pub fn fractions(&self) -> Vec<f32> {
        self.0
            .lock()
            .expect("lock")
            .iter()
            .map(|p| p.fraction)
            .collect()
    }
}

/// Every sleep the clock was asked for, in seconds.
pub fn secs(sleeps: &[Duration]) -> Vec<f64> {
    sleeps.iter().map(Duration::as_secs_f64).collect()
}
