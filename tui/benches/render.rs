//! Frame render time with 10k jobs of history, per screen, on ratatui's TestBackend at
//! 200×60 (a large terminal), and the cost of a clip playing in kitty or sixel pictures.
//! Target: ≤ 16 ms a frame. Run with
//! `cargo bench -p loopsmith-console --bench render`.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loopsmith_console::App;
use loopsmith_console::app::Net;
use loopsmith_console::graphics::{Graphics, Mode, Painter};
use loopsmith_console::ui;
use loopsmith_protocol::control::{
    BackendRow, BackendState, LogLevel, LogLine, PreviewFrames, ServerMsg, Snapshot, UserRow,
};
use loopsmith_protocol::{
    Artifact, Aspect, BackendChoice, Fit, Job, JobEvent, JobId, JobState, OutputKind, Params,
    Platform, Timing, Timings, UserKey, UserStyle,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const JOBS: u64 = 10_000;
const NOW: u64 = 1_795_284_000_000;

fn snapshot() -> Snapshot {
    let users: Vec<UserKey> = (0..500)
        .map(|i| {
            UserKey::new(
                if i % 2 == 0 {
                    Platform::Telegram
                } else {
                    Platform::Discord
                },
                format!("{}", 100_000 + i),
            )
        })
        .collect();
    let jobs = (1..=JOBS)
        .map(|id| {
            let state = match id % 50 {
                0 => JobState::Queued,
                1 => JobState::Running {
                    backend: "local".into(),
                    progress: (id % 100) as f32 / 100.0,
                },
                2 => JobState::Failed {
                    reason: "Rendering failed on our side; please try again.".into(),
                    retryable: true,
                    chain: vec![
                        "local failed".into(),
                        "the denoiser failed at step 3 of 8".into(),
                        "onnxruntime: failed to allocate 512 MiB on the device".into(),
                    ],
                },
                _ => JobState::Done {
                    artifacts: vec![Artifact {
                        kind: OutputKind::Mp4,
                        path: format!("/data/artifacts/{id}/sticker.mp4").into(),
                        bytes: 40_000,
                    }],
                },
            };
            let created_ms = NOW - (JOBS - id) * 30_000;
            Job {
                id: JobId(id),
                user: users[(id % 500) as usize].clone(),
                origin: None,
                params: Params {
                    prompt: format!("prompt number {id}, anime style"),
                    user_prompt: format!("prompt number {id} with a cat and a hat"),
                    negative_prompt: String::new(),
                    duration_secs: 3.0,
                    fps: 8,
                    aspect: Aspect::Square,
                    motion: 2,
                    seed: id as u32,
                    guidance: None,
                    style: "anime".into(),
                    outputs: vec![OutputKind::Mp4],
                    backend: BackendChoice::Auto,
                    fit: Fit::Pad,
                    timing: Timing::Trim,
                    seamless_loop: true,
                    image: None,
                },
                timings: Timings {
                    created_ms,
                    started_ms: Some(created_ms + 1_000),
                    rendered_ms: Some(created_ms + 5_000),
                    finished_ms: state.is_terminal().then_some(created_ms + 6_000),
                },
                state,
                backend: Some("local".into()),
                attempts: 1,
            }
        })
        .collect();
    Snapshot {
        jobs,
        users: users
            .iter()
            .map(|key| UserRow {
                key: key.clone(),
                name: Some("someone".into()),
                style: UserStyle::default(),
                banned: false,
                quota_used: 3,
                quota_limit: 50,
                jobs_total: 20,
                spend_usd: None,
            })
            .collect(),
        backends: vec![BackendRow {
            name: "local".into(),
            state: BackendState::Ready,
            model: "tiny".into(),
            provider: "cpu".into(),
            device: "cpu".into(),
            running: 0,
            capacity: 1,
            pausable: true,
        }],
        queue_len: 200,
        logs: (0..5000)
            .map(|i| LogLine {
                at_ms: NOW - 5000 + i,
                level: LogLevel::ALL[(i % 5) as usize],
                target: "loopsmith_engine".into(),
                text: format!("line {i} job={i}"),
            })
            .collect(),
        spend: None,
        now_ms: NOW,
    }
}

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

/// Mean and worst of `n` frames, after a warm-up frame.
fn measure(terminal: &mut Terminal<TestBackend>, app: &App, n: u32) -> (Duration, Duration) {
    terminal.draw(|f| ui::draw(f, app)).expect("draws");
    let mut worst = Duration::ZERO;
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        terminal.draw(|f| ui::draw(f, app)).expect("draws");
        worst = worst.max(t.elapsed());
    }
    (start.elapsed() / n, worst)
}

fn main() {
    let mut app = App::new("bench");
    app.on_net(Net::Connected {
        server: "bench".into(),
        operator: UserKey::new(Platform::Console, "ops"),
    });
    let t = Instant::now();
    app.on_net(Net::Message(Box::new(ServerMsg::Snapshot(Box::new(
        snapshot(),
    )))));
    println!("apply a 10k-job snapshot: {:?}", t.elapsed());
    app.now_ms = NOW;

    let mut terminal = Terminal::new(TestBackend::new(200, 60)).expect("terminal");
    let mut report = |name: &str, app: &App| {
        let (mean, worst) = measure(&mut terminal, app, 50);
        let verdict = if worst <= Duration::from_millis(16) {
            "ok"
        } else {
            "OVER 16 ms"
        };
        println!("{name:<28} mean {mean:>10.2?}  worst {worst:>10.2?}  {verdict}");
    };
    for (n, screen) in [
        "dashboard",
        "jobs",
        "preview",
        "generate",
        "users",
        "backends",
        "logs",
    ]
    .iter()
    .enumerate()
    {
        key(&mut app, KeyCode::Esc);
        key(&mut app, KeyCode::Char((b'1' + n as u8) as char));
        report(screen, &app);
    }
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('2'));
    key(&mut app, KeyCode::End);
    key(&mut app, KeyCode::Enter);
    report("jobs, last row, details", &app);
    // A failed job's details wrap its error chain.
    key(&mut app, KeyCode::Home);
    for _ in 0..48 {
        key(&mut app, KeyCode::Char('j'));
    }
    assert!(matches!(
        app.selected_job().map(|v| &v.job.state),
        Some(JobState::Failed { .. })
    ));
    report("jobs, failed job's details", &app);

    // A progress tick, then a frame: the steady state while a job renders.
    let t = Instant::now();
    for i in 0..1000u64 {
        app.on_message(ServerMsg::Event(JobEvent {
            job: JobId(51),
            user: UserKey::new(Platform::Discord, "100051"),
            state: JobState::Running {
                backend: "local".into(),
                progress: (i % 100) as f32 / 100.0,
            },
            position: None,
            eta_ms: Some(1000),
        }));
    }
    println!("apply a progress event: {:?}", t.elapsed() / 1000);

    // Typing into the filter recomputes the list over all 10k jobs on every key.
    key(&mut app, KeyCode::Char('/'));
    let t = Instant::now();
    for c in "cat".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    println!("filter keystroke over 10k jobs: {:?}", t.elapsed() / 3);
    report("jobs, filtered", &app);

    // A 160×160 clip on a large terminal, its frames varied enough that a palette has work.
    let frames: Vec<Vec<u8>> = (0..48u32)
        .map(|i| {
            (0..160u32 * 160)
                .flat_map(|p| {
                    let (x, y) = (p % 160, p / 160);
                    [
                        (x + i * 3) as u8,
                        (y * 3 / 2 + i) as u8,
                        ((x ^ y) + i * 5) as u8,
                    ]
                })
                .collect()
        })
        .collect();
    app.on_message(ServerMsg::Preview {
        req: 0,
        preview: PreviewFrames::from_rgb(JobId(3), 160, 160, 8, &frames),
    });
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('3'));
    report("preview playing 160×160", &app);

    // The same clip in pixels: each tick draws the frame (the picture's cells skipped) and
    // the painter writes the next picture. Sixel encodes each frame the first time round and
    // reuses it after; kitty sends the frame's RGB each time.
    for (name, graphics) in [
        (
            "kitty",
            Graphics {
                mode: Mode::Kitty,
                cell_px: None,
            },
        ),
        (
            "sixel",
            Graphics {
                mode: Mode::Sixel,
                cell_px: Some((10, 20)),
            },
        ),
    ] {
        app.graphics = graphics;
        let mut painter = Painter::new(graphics);
        for pass in ["first loop", "second loop"] {
            let mut worst = Duration::ZERO;
            let mut bytes = 0usize;
            let start = Instant::now();
            for _ in 0..frames.len() {
                app.tick_player();
                let t = Instant::now();
                let mut placement = None;
                terminal
                    .draw(|f| placement = ui::draw_frame(f, &app))
                    .expect("draws");
                let mut out = Vec::new();
                painter
                    .paint(placement, &app.preview, &mut out)
                    .expect("paints");
                worst = worst.max(t.elapsed());
                bytes += out.len();
            }
            let mean = start.elapsed() / frames.len() as u32;
            println!(
                "{:<28} mean {mean:>10.2?}  worst {worst:>10.2?}  {} KiB a frame",
                format!("{name} picture, {pass}"),
                bytes / frames.len() / 1024
            );
        }
    }
}
