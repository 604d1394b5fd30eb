//! The Pika backend against a fake fal queue: the happy path and every fault fal's docs
//! describe. Waits go through a manual clock, so backoff and Retry-After are asserted
//! exactly and cost no real time.

mod pika_common;

use std::time::Duration;

use loopsmith_engine::store::SpendState;
use loopsmith_engine::{Backend, BackendError};
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
    setup.render_one().await.expect("renders after the retries");

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
    let err = setup.render_one().await.expect_err("fails");
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
    let err = setup.render_one().await.expect_err("fails");
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
    let err = setup.render_one().await.expect_err("fails");
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
        let err = setup.render_one().await.expect_err("fails");
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
    let err = setup.render_one().await.expect_err("fails");
    assert_eq!(setup.fal.count(Route::Result), 3);
    assert_eq!(setup.clock.sleeps(), vec![Duration::from_secs(1); 2]);
    assert_eq!(
        err.user_message(),
        "fal, where Pika runs, is having trouble (it answered 504); please try again later."
    );
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
    let err = setup.render_one().await.expect_err("refused");
    assert_eq!(
        err.user_message(),
        "fal sent an answer we could not use; please try again."
    );
    assert_eq!(setup.fal.count(Route::Status), 0);
    // fal answered 200, so a request exists and may be billed: it stays counted.
    assert_eq!(setup.entries(), vec![(1, SpendState::Settled, 200_000)]);
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
    let err = setup.render_one().await.expect_err("unreachable");
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

fn today() -> u64 {
    loopsmith_engine::now_ms() / 86_400_000
}
