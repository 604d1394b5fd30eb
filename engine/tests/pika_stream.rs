//! fal's status stream (server-sent events): followed when enabled, and polling takes over
//! whenever it is refused or falls silent.

mod pika_common;

use std::time::Duration;

use loopsmith_engine::Backend;
use loopsmith_fakes::fal::{Fault, Route};
use pika_common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;

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
    setup.render_one().await.expect("renders by polling");
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
