//! The Pika backend against a fake fal queue: the happy path, every fault fal's docs
//! describe, resuming after a restart, cancellation and the deadline. Waits go through a
//! manual clock, so backoff and Retry-After are asserted exactly and cost no real time.

mod pika_common;

use std::sync::Arc;
use std::time::Duration;

use loopsmith_engine::protocol::BackendChoice;
use loopsmith_engine::store::SpendState;
use loopsmith_engine::{Backend, BackendError, Health, Router, SledStore, Store};
use loopsmith_fakes::fal::{Fault, Media, Outcome, Route, Step};
use pika_common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_job_walks_the_queue_and_comes_back_cut_to_the_requested_length() {
    let setup = Setup::new().await;
    let backend = setup.backend();
    let progress = Recorder::default();
    let alice = user("alice");
    let clip = backend
        .render(
            &job(1, &alice, 3.0, 12),
            progress.sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");

    // A 3 s sticker asked Pika for 5 s (the shortest it makes) and was cut to 3 s at 12 fps.
    assert_eq!((clip.width, clip.height, clip.fps), (64, 64, 12));
    assert_eq!(clip.frames.len(), 36);
    assert_eq!((clip.seed, clip.backend.as_str()), (1234, "pika"));
    clip.validate().expect("a well-formed clip");
    // Frame brightness counts up in the source: the cut kept the beginning.
    assert!(clip.frames[0][0] < clip.frames[35][0]);

    let submits: Vec<_> = setup
        .fal
        .recorded()
        .into_iter()
        .filter(|r| r.route == Route::Submit)
        .collect();
    assert_eq!(submits.len(), 1);
    let submit = &submits[0];
    assert_eq!(submit.path, "/fal-ai/pika/v2.2/text-to-video");
    assert_eq!(
        submit.json(),
        json!({"prompt": "a red ball bouncing", "negative_prompt": "blurry", "seed": 1234,
               "resolution": "720p", "aspect_ratio": "1:1", "duration": 5})
    );
    assert_eq!(
        submit.authorization.as_deref(),
        Some(&*format!("Key {KEY}"))
    );
    assert_eq!(submit.header("x-fal-request-timeout"), Some("300"));
    assert_eq!(submit.header("content-type"), Some("application/json"));

    // Five polls of the status URL fal gave (with logs), one result fetch, one download.
    let polls: Vec<_> = setup
        .fal
        .recorded()
        .into_iter()
        .filter(|r| r.route == Route::Status)
        .collect();
    assert_eq!(polls.len(), 5);
    assert!(
        polls
            .iter()
            .all(|p| p.path == "/fal-ai/pika/requests/req-1/status" && p.query == "logs=1")
    );
    assert_eq!(setup.fal.count(Route::Result), 1);
    assert_eq!(setup.fal.count(Route::Media), 1);
    let media = setup
        .fal
        .recorded()
        .into_iter()
        .find(|r| r.route == Route::Media)
        .expect("downloaded");
    assert_eq!(
        media.authorization, None,
        "the key never goes to the media host"
    );

    // Between polls: the poll interval of 2 s, jittered by at most a quarter.
    let sleeps = setup.clock.sleeps();
    assert_eq!(sleeps.len(), 4, "{sleeps:?}");
    assert!(
        sleeps
            .iter()
            .all(|s| *s >= Duration::from_millis(1500) && *s <= Duration::from_millis(2500)),
        "{sleeps:?}"
    );

    let notes = progress.notes();
    for expected in [
        "submitting to fal",
        "queued at fal, position 2",
        "queued at fal, position 1",
        "rendering at fal: Loading model",
        "rendering at fal: Generating frames",
        "fetching the result from fal",
        "downloading the video",
    ] {
        assert!(
            notes.iter().any(|n| n == expected),
            "no `{expected}` in {notes:?}"
        );
    }
    let fractions = progress.fractions();
    assert!(
        fractions.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {fractions:?}"
    );
    assert_eq!(fractions.last(), Some(&1.0));

    assert_eq!(setup.entries(), vec![(1, SpendState::Settled, 200_000)]);
    assert_eq!(
        setup
            .store
            .remote_request(job(1, &alice, 3.0, 12).id)
            .expect("read"),
        None
    );
}

#[tokio::test]
async fn a_high_profile_result_with_b_frames_decodes() {
    let setup = Setup::new().await;
    setup.fal.put_media(
        "result.mp4",
        Media::File {
            bytes: high_profile_mp4(),
            content_type: "video/mp4".into(),
        },
    );
    setup.fal.set_walk(vec![Step::Completed]);
    let clip = setup
        .backend()
        .render(
            &job(1, &user("a"), 1.0, 24),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");
    assert_eq!(
        (clip.width, clip.height, clip.fps, clip.frames.len()),
        (320, 180, 24, 24)
    );
}

#[tokio::test]
async fn rate_limits_and_outages_are_retried_honouring_retry_after() {
    let setup = Setup::new().await;
    setup.fal.set_walk(vec![Step::Completed]);
    setup.fal.push_fault(Route::Submit, Fault::rate_limited(7));
    setup.fal.push_fault(Route::Status, Fault::unavailable());
    setup.fal.push_fault(Route::Status, Fault::unavailable());
    setup.fal.push_fault(
        Route::Result,
        Fault::new(500, json!({"detail": "Internal error"})),
    );
    setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders after the retries");

    assert_eq!(
        setup.fal.count(Route::Submit),
        2,
        "the 429 carried no request id"
    );
    assert_eq!(setup.fal.count(Route::Status), 3);
    assert_eq!(setup.fal.count(Route::Result), 2);
    let sleeps = setup.clock.sleeps();
    assert_eq!(sleeps.len(), 4, "{sleeps:?}");
    assert_eq!(
        sleeps[0],
        Duration::from_secs(7),
        "Retry-After is waited out exactly"
    );
    // Full jitter under 0.5 s · 2^(n-1): the first and second status retries, the result's first.
    assert!(sleeps[1] <= Duration::from_millis(500), "{sleeps:?}");
    assert!(sleeps[2] <= Duration::from_millis(1000), "{sleeps:?}");
    assert!(sleeps[3] <= Duration::from_millis(500), "{sleeps:?}");
    assert_eq!(setup.entries(), vec![(1, SpendState::Settled, 200_000)]);
}

#[tokio::test]
async fn a_user_start_timeout_is_never_retried_and_costs_nothing() {
    let setup = Setup::new().await;
    setup.fal.push_fault(Route::Submit, Fault::user_timeout());
    let err = setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("fails");
    assert_eq!(setup.fal.count(Route::Submit), 1);
    assert!(setup.clock.sleeps().is_empty());
    assert_eq!(
        err.user_message(),
        "fal's queue was too busy to start the job within 300 seconds; nothing was charged."
    );
    assert!(err.retry_elsewhere(), "the local backend may still take it");
    assert_eq!(setup.entries(), vec![(1, SpendState::Refunded, 200_000)]);
    assert_eq!(setup.store.spent(today(), None).expect("spent"), 0);
}

#[tokio::test]
async fn a_status_poll_timing_out_for_the_user_is_final_too() {
    let setup = Setup::new().await;
    setup.fal.push_fault(Route::Status, Fault::user_timeout());
    let err = setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("fails");
    assert_eq!(setup.fal.count(Route::Status), 1);
    assert!(err.user_message().starts_with("fal's queue was too busy"));
    assert_eq!(setup.entries(), vec![(1, SpendState::Refunded, 200_000)]);
}

#[tokio::test]
async fn a_submit_answered_with_a_request_id_is_never_sent_again() {
    let setup = Setup::new().await;
    setup.fal.push_fault(
        Route::Submit,
        Fault::unavailable().header("x-fal-request-id", "ghost-1"),
    );
    let err = setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("fails");
    assert_eq!(
        setup.fal.count(Route::Submit),
        1,
        "resubmitting could pay twice"
    );
    assert_eq!(
        err.user_message(),
        "fal, where Pika runs, is having trouble (it answered 503); please try again later."
    );
    // fal does not bill 5xx answers.
    assert_eq!(setup.entries(), vec![(1, SpendState::Refunded, 200_000)]);
}

#[tokio::test]
async fn a_model_error_after_completed_fails_with_its_detail_in_both_shapes() {
    let cases = [
        (
            json!({"detail": [{"loc": ["body", "prompt"], "msg": "Prompt was flagged by the content checker", "type": "content_policy_violation"}]}),
            "Pika could not make this: prompt: Prompt was flagged by the content checker.",
        ),
        (
            json!({"detail": "Video generation failed: unsupported aspect ratio"}),
            "Pika could not make this: Video generation failed: unsupported aspect ratio.",
        ),
    ];
    for (body, message) in cases {
        let setup = Setup::new().await;
        setup.fal.set_outcome(Outcome::Error { status: 422, body });
        let err = setup
            .backend()
            .render(
                &job(1, &user("a"), 3.0, 8),
                Recorder::default().sink(),
                CancellationToken::new(),
            )
            .await
            .expect_err("fails");
        assert_eq!(err.user_message(), message);
        assert!(matches!(err, BackendError::Refused { .. }), "{err:?}");
        assert_eq!(setup.fal.count(Route::Result), 1, "a 422 is not retried");
        // A model error may have used GPU time, and fal may bill it.
        assert_eq!(setup.entries(), vec![(1, SpendState::Settled, 200_000)]);
    }
}

#[tokio::test]
async fn a_result_fetch_failing_with_5xx_is_retried_then_refunded() {
    let mut setup = Setup::new().await;
    setup.options.retry.max_attempts = 3;
    setup.fal.set_walk(vec![Step::Completed]);
    for _ in 0..3 {
        setup.fal.push_fault(
            Route::Result,
            Fault::new(504, json!({"detail": "Gateway timeout"})).header("retry-after", "1"),
        );
    }
    let err = setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("fails");
    assert_eq!(setup.fal.count(Route::Result), 3);
    assert_eq!(setup.clock.sleeps(), vec![Duration::from_secs(1); 2]);
    assert_eq!(
        err.user_message(),
        "fal, where Pika runs, is having trouble (it answered 504); please try again later."
    );
    assert_eq!(setup.entries(), vec![(1, SpendState::Refunded, 200_000)]);
}

#[tokio::test]
async fn a_restart_between_submit_and_result_polls_the_paid_request_instead_of_paying_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).expect("open"));
    let setup = Setup::with_store(store.clone()).await;
    let alice = user("alice");
    let the_job = job(9, &alice, 3.0, 8);

    // The first process submits, polls once, and dies: its future is never polled or
    // dropped again, as after a kill.
    let first = setup.backend();
    let mut render = Box::pin(first.render(
        &the_job,
        Recorder::default().sink(),
        CancellationToken::new(),
    ));
    tokio::select! {
        _ = &mut render => panic!("the first run should not finish"),
        _ = setup.fal.wait_until(|r| r.iter().any(|r| r.route == Route::Status)) => {}
    }
    std::mem::forget(render);
    let recorded = store
        .remote_request(the_job.id)
        .expect("read")
        .expect("recorded before polling");
    assert_eq!(recorded.request_id, "req-1");
    assert_eq!(setup.entries(), vec![(9, SpendState::Reserved, 200_000)]);

    // The next process renders the same job.
    let second = setup.backend();
    let clip = second
        .render(
            &the_job,
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");
    assert_eq!(clip.frames.len(), 24);
    assert_eq!(setup.fal.count(Route::Submit), 1, "never submitted twice");
    assert!(
        setup
            .fal
            .recorded()
            .iter()
            .filter(|r| r.route == Route::Status)
            .all(|r| r.path.contains("/req-1/"))
    );
    assert_eq!(setup.entries(), vec![(9, SpendState::Settled, 200_000)]);
    assert_eq!(store.spent(today(), Some(&alice)).expect("spent"), 200_000);
    assert_eq!(store.remote_request(the_job.id).expect("read"), None);
}

#[tokio::test]
async fn after_a_restart_the_router_sends_a_paid_job_back_to_pika_even_with_local_healthy() {
    let setup = Setup::new().await;
    let mut the_job = job(4, &user("a"), 3.0, 8);
    the_job.params.backend = BackendChoice::Auto;
    let first = setup.backend();
    let mut render = Box::pin(first.render(
        &the_job,
        Recorder::default().sink(),
        CancellationToken::new(),
    ));
    tokio::select! {
        _ = &mut render => panic!("the first run should not finish"),
        _ = setup.fal.wait_until(|r| r.iter().any(|r| r.route == Route::Status)) => {}
    }
    std::mem::forget(render);

    let local = Arc::new(LocalStandIn::default());
    let pika: Arc<dyn Backend> = Arc::new(setup.backend());
    assert!(pika.resumes(&the_job));
    let router = Router::new(vec![local.clone(), pika], true);
    let clip = router
        .render(
            &the_job,
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");
    assert_eq!(clip.backend, "pika");
    assert_eq!(
        *local.calls.lock().expect("lock"),
        0,
        "local was healthy but the job was paid for"
    );
    assert_eq!(setup.fal.count(Route::Submit), 1);
    assert_eq!(setup.entries(), vec![(4, SpendState::Settled, 200_000)]);
}

/// A healthy local backend that counts its calls.
#[derive(Debug, Default)]
struct LocalStandIn {
    calls: std::sync::Mutex<u32>,
}

#[async_trait::async_trait]
impl Backend for LocalStandIn {
    fn name(&self) -> &str {
        "local"
    }

    fn health(&self) -> Health {
        Health::Ready
    }

    async fn render(
        &self,
        job: &loopsmith_engine::RenderJob,
        _progress: loopsmith_engine::ProgressSink,
        _cancel: CancellationToken,
    ) -> Result<loopsmith_engine::Clip, BackendError> {
        *self.calls.lock().expect("lock") += 1;
        Ok(loopsmith_engine::Clip {
            width: 2,
            height: 2,
            fps: job.params.fps,
            frames: vec![vec![0; 12]],
            seed: 0,
            backend: "local".into(),
        })
    }
}

#[tokio::test]
async fn cancelling_a_job_cancels_the_request_at_fal_and_refunds_it_while_queued() {
    let setup = Setup::new().await;
    setup.fal.set_walk(vec![Step::Queued(3)]);
    let cancel = CancellationToken::new();
    let backend = setup.backend();
    let the_job = job(1, &user("a"), 3.0, 8);
    let render = backend.render(&the_job, Recorder::default().sink(), cancel.clone());
    let trigger = async {
        setup
            .fal
            .wait_until(|r| r.iter().filter(|r| r.route == Route::Status).count() >= 2)
            .await;
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(render, trigger);
    assert!(matches!(result, Err(BackendError::Cancelled)), "{result:?}");
    let cancels: Vec<_> = setup
        .fal
        .recorded()
        .into_iter()
        .filter(|r| r.route == Route::Cancel)
        .collect();
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].path, "/fal-ai/pika/requests/req-1/cancel");
    assert!(setup.fal.cancelled("req-1"));
    assert_eq!(setup.entries(), vec![(1, SpendState::Refunded, 200_000)]);
    assert_eq!(setup.store.remote_request(the_job.id).expect("read"), None);
}

#[tokio::test]
async fn a_render_dropped_by_the_engine_still_cancels_at_fal() {
    let setup = Setup::new().await;
    setup
        .fal
        .set_walk(vec![Step::Running(vec!["working".into()])]);
    let backend = setup.backend();
    let the_job = job(1, &user("a"), 3.0, 8);
    {
        let render = backend.render(
            &the_job,
            Recorder::default().sink(),
            CancellationToken::new(),
        );
        tokio::select! {
            _ = render => panic!("never completes"),
            _ = setup.fal.wait_until(|r| r.iter().any(|r| r.route == Route::Status)) => {}
        }
        // The render future is dropped here, as the engine's worker drops it on cancel.
    }
    setup
        .fal
        .wait_until(|r| r.iter().any(|r| r.route == Route::Cancel))
        .await;
    assert!(setup.fal.cancelled("req-1"));
}

#[tokio::test]
async fn the_deadline_cancels_the_request_at_fal() {
    let mut setup = Setup::new().await;
    setup.options.deadline = Duration::from_secs(10);
    setup.fal.set_walk(vec![Step::Queued(0)]);
    let err = setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("times out");
    assert_eq!(
        err.user_message(),
        "Pika took longer than 10 seconds, so the job was cancelled."
    );
    let waited: Duration = setup.clock.sleeps().iter().sum();
    assert!(waited <= Duration::from_secs(10), "{waited:?}");
    assert!(waited >= Duration::from_secs(6), "{waited:?}");
    assert_eq!(setup.fal.count(Route::Cancel), 1);
    assert_eq!(setup.entries(), vec![(1, SpendState::Refunded, 200_000)]);
}

#[tokio::test]
async fn a_status_url_on_another_host_is_refused_before_the_key_goes_there() {
    let setup = Setup::new().await;
    // A result (and status) URL fal never gives: refuse to send the key anywhere but fal.
    setup.fal.push_fault(
        Route::Submit,
        Fault::new(
            200,
            json!({"status": "IN_QUEUE", "request_id": "r1",
                   "status_url": "http://localhost:1/fal-ai/pika/requests/r1/status",
                   "response_url": "http://localhost:1/fal-ai/pika/requests/r1",
                   "cancel_url": "http://localhost:1/fal-ai/pika/requests/r1/cancel"}),
        ),
    );
    let err = setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("refused");
    assert_eq!(
        err.user_message(),
        "fal sent an answer we could not use; please try again."
    );
    assert_eq!(setup.fal.count(Route::Status), 0);
    // fal answered 200, so a request exists and may be billed: it stays counted.
    assert_eq!(setup.entries(), vec![(1, SpendState::Settled, 200_000)]);
}

#[tokio::test]
async fn giving_up_on_status_polls_cancels_the_request_at_fal() {
    let mut setup = Setup::new().await;
    setup.options.retry.max_attempts = 2;
    setup.fal.set_walk(vec![Step::Queued(0)]);
    for _ in 0..2 {
        setup.fal.push_fault(Route::Status, Fault::unavailable());
    }
    let err = setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("status keeps failing");
    assert_eq!(
        err.user_message(),
        "fal, where Pika runs, is having trouble (it answered 503); please try again later."
    );
    // The request may still run; it is cancelled rather than left to bill. It never left the
    // queue and fal accepted the cancel, so nothing is owed.
    assert_eq!(setup.fal.count(Route::Cancel), 1);
    assert!(setup.fal.cancelled("req-1"));
    assert_eq!(setup.entries(), vec![(1, SpendState::Refunded, 200_000)]);
}

fn today() -> u64 {
    loopsmith_engine::now_ms() / 86_400_000
}

#[tokio::test]
async fn an_unreachable_fal_is_retried_then_reported_and_refunded() {
    let mut setup = Setup::new().await;
    // A port nothing listens on: every connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    setup.options.base_url = format!("http://127.0.0.1:{port}");
    setup.options.retry.max_attempts = 3;
    let err = setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("unreachable");
    assert_eq!(
        err.user_message(),
        "fal, where Pika runs, could not be reached; please try again later."
    );
    let sleeps = setup.clock.sleeps();
    assert_eq!(sleeps.len(), 2, "three attempts, two waits: {sleeps:?}");
    assert!(sleeps[0] <= Duration::from_millis(500) && sleeps[1] <= Duration::from_secs(1));
    // A refused connection never reached fal: nothing to pay.
    assert_eq!(setup.entries(), vec![(1, SpendState::Refunded, 200_000)]);
}

#[tokio::test]
async fn a_job_interrupted_by_shutdown_keeps_its_request_for_the_next_start() {
    let setup = Setup::new().await;
    setup
        .fal
        .set_walk(vec![Step::Queued(0), Step::Queued(0), Step::Completed]);
    let stopping = CancellationToken::new();
    let cancel = CancellationToken::new();
    let backend = setup.backend().with_stopping(stopping.clone());
    let the_job = job(3, &user("a"), 3.0, 8);
    let render = backend.render(&the_job, Recorder::default().sink(), cancel.clone());
    let interrupt = async {
        setup
            .fal
            .wait_until(|r| r.iter().any(|r| r.route == Route::Status))
            .await;
        // The engine's shutdown order: the process says it is stopping, then interrupts jobs.
        stopping.cancel();
        cancel.cancel();
    };
    let (result, ()) = tokio::join!(render, interrupt);
    assert!(matches!(result, Err(BackendError::Cancelled)), "{result:?}");
    assert_eq!(
        setup.fal.count(Route::Cancel),
        0,
        "the paid request is not cancelled"
    );
    assert!(
        setup
            .store
            .remote_request(the_job.id)
            .expect("read")
            .is_some()
    );
    assert_eq!(setup.entries(), vec![(3, SpendState::Reserved, 200_000)]);

    // The next start picks it up.
    setup
        .backend()
        .render(
            &the_job,
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("resumes");
    assert_eq!(setup.fal.count(Route::Submit), 1);
    assert_eq!(setup.entries(), vec![(3, SpendState::Settled, 200_000)]);
}

#[tokio::test]
async fn the_status_stream_carries_positions_logs_and_completion_without_polling() {
    let mut setup = Setup::new().await;
    setup.options.status_stream = true;
    let progress = Recorder::default();
    setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            progress.sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");
    assert_eq!(setup.fal.count(Route::StatusStream), 1);
    assert_eq!(
        setup.fal.count(Route::Status),
        0,
        "no polls while the stream works"
    );
    assert!(setup.clock.sleeps().is_empty());
    let stream = setup
        .fal
        .recorded()
        .into_iter()
        .find(|r| r.route == Route::StatusStream)
        .expect("streamed");
    assert_eq!(stream.path, "/fal-ai/pika/requests/req-1/status/stream");
    assert_eq!(stream.query, "logs=1");
    assert_eq!(stream.header("accept"), Some("text/event-stream"));
    let notes = progress.notes();
    for expected in [
        "queued at fal, position 2",
        "queued at fal, position 1",
        "rendering at fal: Loading model",
        "rendering at fal: Generating frames",
    ] {
        assert!(
            notes.iter().any(|n| n == expected),
            "no `{expected}` in {notes:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_status_stream_falls_back_to_polling() {
    let mut setup = Setup::new().await;
    setup.options.status_stream = true;
    setup.fal.push_fault(
        Route::StatusStream,
        Fault::new(500, json!({"detail": "no streams today"})),
    );
    setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders by polling");
    assert_eq!(
        setup.fal.count(Route::StatusStream),
        1,
        "a stream is not retried"
    );
    assert_eq!(setup.fal.count(Route::Status), 5);
}

#[tokio::test]
async fn a_silent_status_stream_falls_back_to_polling_where_it_stopped() {
    let mut setup = Setup::new().await;
    setup.options.status_stream = true;
    setup.options.stream_silence = Duration::from_millis(200);
    setup.fal.limit_stream(2);
    let progress = Recorder::default();
    setup
        .backend()
        .render(
            &job(1, &user("a"), 3.0, 8),
            progress.sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");
    // Two steps came by the stream, the other three by polls.
    assert_eq!(setup.fal.count(Route::Status), 3);
    let notes = progress.notes();
    assert!(
        notes.iter().any(|n| n == "queued at fal, position 2"),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n == "rendering at fal: Generating frames"),
        "{notes:?}"
    );
}
