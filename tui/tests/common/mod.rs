//! A console with known data, for the state and screen tests.
#![allow(dead_code)] // each test file uses a different part

use std::path::PathBuf;

use loopsmith_console::App;
use loopsmith_console::app::Net;
use loopsmith_protocol::control::{
    BackendRow, BackendState, LogLevel, LogLine, ServerMsg, Snapshot, Spend, UserRow,
};
use loopsmith_protocol::{
    Artifact, Aspect, BackendChoice, Fit, Job, JobId, JobState, OutputKind, Params, Platform,
    Timing, Timings, UserKey, UserStyle,
};

/// 2026-11-21 18:00:00 UTC.
pub const NOW: u64 = 1_795_284_000_000;

pub fn operator() -> UserKey {
    UserKey::new(Platform::Console, "ops")
}

pub fn params(prompt: &str, seed: u32) -> Params {
    Params {
        prompt: format!("{prompt}, anime style"),
        user_prompt: prompt.to_string(),
        negative_prompt: String::new(),
        duration_secs: 3.0,
        fps: 8,
        aspect: Aspect::Square,
        motion: 2,
        seed,
        guidance: None,
        style: "anime".into(),
        outputs: vec![OutputKind::Mp4],
        backend: BackendChoice::Auto,
        fit: Fit::Pad,
        timing: Timing::Trim,
        seamless_loop: true,
        image: None,
    }
}

pub fn job(id: u64, user: &UserKey, prompt: &str, state: JobState) -> Job {
    let created_ms = NOW - 600_000 + id * 10_000;
    let finished = state.is_terminal().then_some(created_ms + 4_000 + id * 100);
    Job {
        id: JobId(id),
        user: user.clone(),
        origin: None,
        params: params(prompt, 1000 + id as u32),
        backend: (!matches!(state, JobState::Queued)).then(|| "local".to_string()),
        state,
        attempts: 1,
        timings: Timings {
            created_ms,
            started_ms: Some(created_ms + 500),
            rendered_ms: finished.map(|f| f - 300),
            finished_ms: finished,
        },
    }
}

pub fn done() -> JobState {
    JobState::Done {
        artifacts: vec![Artifact {
            kind: OutputKind::Mp4,
            path: PathBuf::from("/data/artifacts/1/sticker.mp4"),
            bytes: 48_213,
        }],
    }
}

pub fn snapshot() -> Snapshot {
    let ann = UserKey::new(Platform::Telegram, "1001");
    let bob = UserKey::new(Platform::Discord, "2002");
    let jobs = vec![
        job(1, &ann, "a red ball bouncing", done()),
        job(2, &bob, "a cat waving", done()),
        job(
            3,
            &ann,
            "a dragon breathing fire",
            JobState::Failed {
                reason: "Rendering failed on our side; please try again.".into(),
                retryable: true,
                chain: vec![
                    "local failed".into(),
                    "the denoiser failed at step 3 of 8".into(),
                    "onnxruntime: Non-zero status code returned while running Conv node. \
                     Name:'/unet/down.0/conv' Status Message: Failed to allocate memory for \
                     requested buffer of size 536870912"
                        .into(),
                ],
            },
        ),
        job(
            4,
            &bob,
            "pixel art spaceship",
            JobState::Cancelled { by: bob.clone() },
        ),
        job(
            5,
            &ann,
            "a dancing robot",
            JobState::Running {
                backend: "local".into(),
                progress: 0.4,
            },
        ),
        job(6, &operator(), "sunset over the sea", JobState::Queued),
    ];
    Snapshot {
        jobs,
        users: vec![
            UserRow {
                key: ann.clone(),
                name: Some("Ann".into()),
                style: UserStyle {
                    preset: Some("anime".into()),
                    suffix: Some("pastel".into()),
                    ..UserStyle::default()
                },
                banned: false,
                quota_used: 3,
                quota_limit: 50,
                jobs_total: 3,
                spend_usd: None,
            },
            UserRow {
                key: bob.clone(),
                name: Some("Bob".into()),
                style: UserStyle::default(),
                banned: true,
                quota_used: 2,
                quota_limit: 50,
                jobs_total: 2,
                spend_usd: Some(0.4),
            },
        ],
        backends: vec![
            BackendRow {
                name: "local".into(),
                state: BackendState::Busy {
                    detail: "1 job(s) rendering on cpu".into(),
                },
                model: "tiny-animatediff".into(),
                provider: "cpu".into(),
                device: "cpu".into(),
                running: 1,
                capacity: 1,
                pausable: true,
            },
            BackendRow {
                name: "pika".into(),
                state: BackendState::Paused,
                model: "pika-2.2".into(),
                provider: "fal".into(),
                device: "remote".into(),
                running: 0,
                capacity: 4,
                pausable: true,
            },
        ],
        queue_len: 1,
        logs: vec![
            log(NOW - 5_000, LogLevel::Info, "engine started boot_epoch=3"),
            log(NOW - 4_000, LogLevel::Debug, "polling fal"),
            log(NOW - 3_000, LogLevel::Warn, "render failed job=3"),
            log(NOW - 2_000, LogLevel::Error, "encoding failed job=3"),
        ],
        spend: Some(Spend {
            today_usd: 1.25,
            cap_usd: 5.0,
        }),
        now_ms: NOW,
    }
}

pub fn log(at_ms: u64, level: LogLevel, text: &str) -> LogLine {
    LogLine {
        at_ms,
        level,
        target: "loopsmith_engine".into(),
        text: text.into(),
    }
}

/// A connected console holding [`snapshot`], its clock at [`NOW`].
pub fn app() -> App {
    let mut app = App::new("socket loopsmith-data/control.sock");
    app.on_net(Net::Connected {
        server: "loopsmith 0.1.0".into(),
        operator: operator(),
    });
    app.on_net(Net::Message(Box::new(ServerMsg::Snapshot(Box::new(
        snapshot(),
    )))));
    app.status = None;
    app.now_ms = NOW;
    app
}
