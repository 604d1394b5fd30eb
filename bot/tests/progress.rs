//! Following a job on a surface, against a fake surface on paused tokio time: the pacing of
//! edits and of the working indicator, and how each ending is reported.

use std::sync::Mutex;
use std::time::Duration;

use loopsmith_bot::command::texts;
use loopsmith_bot::command::{Outcome, Pacing, Surface, SurfaceError, follow};
use loopsmith_engine::protocol::{
    Artifact, JobEvent, JobId, JobState, OutputKind, Platform, UserKey,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

const JOB: JobId = JobId(7);

/// Records every call with the (paused) time since the surface was made.
struct FakeSurface {
    start: Instant,
    calls: Mutex<Vec<(Duration, &'static str, String)>>,
    fail_delivery: bool,
}

impl FakeSurface {
    fn new() -> Self {
        FakeSurface {
            start: Instant::now(),
            calls: Mutex::new(Vec::new()),
            fail_delivery: false,
        }
    }

    fn record(&self, op: &'static str, text: &str) {
        self.calls
            .lock()
            .expect("lock")
            .push((self.start.elapsed(), op, text.to_string()));
    }

    fn calls(&self, op: &str) -> Vec<(Duration, String)> {
        self.calls
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, o, _)| *o == op)
            .map(|(t, _, text)| (*t, text.clone()))
            .collect()
    }
}

impl Surface for FakeSurface {
    type Status = u32;

    async fn post(&self, text: &str) -> Result<u32, SurfaceError> {
        self.record("post", text);
        Ok(1)
    }

    async fn edit(&self, status: &u32, text: &str) -> Result<(), SurfaceError> {
        assert_eq!(*status, 1);
        self.record("edit", text);
        Ok(())
    }

    async fn working(&self) -> Result<(), SurfaceError> {
        self.record("working", "");
        Ok(())
    }

    async fn deliver(
        &self,
        _status: &u32,
        job: JobId,
        artifacts: &[Artifact],
    ) -> Result<(), SurfaceError> {
        self.record("deliver", &format!("{job} {}", artifacts.len()));
        if self.fail_delivery {
            Err(SurfaceError("upload refused".into()))
        } else {
            Ok(())
        }
    }
}

fn event(state: JobState, position: Option<u32>) -> JobEvent {
    JobEvent {
        job: JOB,
        user: UserKey::new(Platform::Telegram, "1"),
        state,
        position,
        eta_ms: None,
    }
}

fn running(progress: f32) -> JobState {
    JobState::Running {
        backend: "local".into(),
        progress,
    }
}

fn done() -> JobState {
    JobState::Done {
        artifacts: vec![Artifact {
            kind: OutputKind::WebmSticker,
            path: "s.webm".into(),
            bytes: 10,
        }],
    }
}

/// Sends each event at its time (milliseconds from now).
fn script(events: Vec<(u64, JobEvent)>) -> mpsc::Receiver<JobEvent> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let start = Instant::now();
        for (at, event) in events {
            tokio::time::sleep_until(start + Duration::from_millis(at)).await;
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    rx
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn edits_keep_two_seconds_apart_and_show_the_latest_progress() {
    let surface = FakeSurface::new();
    let mut events = vec![(0, event(JobState::Queued, Some(3)))];
    // Ten progress ticks in the first second and a half, then a slow tail.
    for i in 1..=9 {
        events.push((i * 150, event(running(i as f32 / 10.0), None)));
    }
    events.push((5_000, event(running(0.95), None)));
    events.push((6_000, event(done(), None)));
    let outcome = follow(&surface, JOB, Some(3), script(events), Pacing::TELEGRAM)
        .await
        .expect("followed");
    assert_eq!(outcome, Outcome::Delivered);

    let posts = surface.calls("post");
    assert_eq!(posts, vec![(Duration::ZERO, texts::queued(Some(3)))]);
    let edits = surface.calls("edit");
    let times: Vec<f64> = edits.iter().map(|(t, _)| secs(*t)).collect();
    assert_eq!(times, vec![2.0, 5.0, 7.0], "{edits:?}");
    // The first edit skips the stale ticks and shows where the job is now.
    assert_eq!(edits[0].1, texts::progress(&running(0.9), None, None));
    assert_eq!(edits[1].1, texts::progress(&running(0.95), None, None));
    assert_eq!(edits[2].1, texts::delivered());
    assert_eq!(
        surface.calls("deliver"),
        vec![(secs_d(6.0), "7 1".to_string())]
    );
}

fn secs_d(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[tokio::test(start_paused = true)]
async fn the_working_indicator_is_renewed_every_four_seconds_only_while_rendering() {
    let surface = FakeSurface::new();
    let events = vec![
        (0, event(JobState::Queued, Some(2))),
        (3_000, event(JobState::Queued, Some(1))),
        (10_000, event(running(0.1), None)),
        (
            19_000,
            event(
                JobState::Encoding {
                    backend: "local".into(),
                },
                None,
            ),
        ),
        (20_000, event(done(), None)),
    ];
    follow(&surface, JOB, Some(2), script(events), Pacing::TELEGRAM)
        .await
        .expect("followed");
    let working: Vec<f64> = surface
        .calls("working")
        .iter()
        .map(|(t, _)| secs(*t))
        .collect();
    assert_eq!(working, vec![10.0, 14.0, 18.0]);
}

#[tokio::test(start_paused = true)]
async fn each_ending_is_reported_with_its_sentence() {
    // A failure the user may retry.
    let surface = FakeSurface::new();
    let failed = JobState::Failed {
        reason: "The renderer ran out of memory.".into(),
        retryable: true,
        chain: vec!["local failed".into(), "CUDA out of memory".into()],
    };
    let outcome = follow(
        &surface,
        JOB,
        None,
        script(vec![(500, event(failed, None))]),
        Pacing::TELEGRAM,
    )
    .await
    .expect("followed");
    assert_eq!(
        outcome,
        Outcome::Failed {
            reason: "The renderer ran out of memory.".into()
        }
    );
    let edits = surface.calls("edit");
    assert_eq!(
        edits,
        vec![(
            secs_d(2.0),
            texts::failed("The renderer ran out of memory.", true)
        )],
        "the last word also waits for the pacing"
    );
    assert!(surface.calls("deliver").is_empty());

    // Cancelled.
    let surface = FakeSurface::new();
    let cancelled = JobState::Cancelled {
        by: UserKey::new(Platform::Telegram, "1"),
    };
    let outcome = follow(
        &surface,
        JOB,
        None,
        script(vec![(0, event(cancelled, None))]),
        Pacing::TELEGRAM,
    )
    .await
    .expect("followed");
    assert_eq!(outcome, Outcome::Cancelled);
    assert_eq!(surface.calls("edit")[0].1, "Cancelled.");

    // Done, but the upload was refused.
    let mut surface = FakeSurface::new();
    surface.fail_delivery = true;
    let outcome = follow(
        &surface,
        JOB,
        None,
        script(vec![(0, event(done(), None))]),
        Pacing::TELEGRAM,
    )
    .await
    .expect("followed");
    assert_eq!(
        outcome,
        Outcome::Undelivered(SurfaceError("upload refused".into()))
    );
    assert_eq!(surface.calls("edit")[0].1, texts::undelivered());

    // The stream ends without a final state (the engine stopped): nothing more is said.
    let surface = FakeSurface::new();
    let outcome = follow(
        &surface,
        JOB,
        None,
        script(vec![(0, event(running(0.5), None))]),
        Pacing::TELEGRAM,
    )
    .await
    .expect("followed");
    assert_eq!(outcome, Outcome::Interrupted);
    assert!(surface.calls("deliver").is_empty());
}

#[tokio::test(start_paused = true)]
async fn other_jobs_events_are_ignored() {
    let surface = FakeSurface::new();
    let mut other = event(done(), None);
    other.job = JobId(8);
    let events = vec![(0, other), (100, event(running(0.5), None))];
    let outcome = follow(&surface, JOB, None, script(events), Pacing::TELEGRAM)
        .await
        .expect("followed");
    assert_eq!(outcome, Outcome::Interrupted);
    assert!(surface.calls("deliver").is_empty());
}
