//! The fal key never reaches logs, errors, a failed job's recorded error chain or debug
//! output. Alone in its own test binary: it captures logs with a thread-local subscriber, and
//! tracing caches whether a log line is wanted per call site across the whole process, so a
//! concurrent test in the same binary (with no subscriber) could make this one miss lines it
//! must see.

mod common;
mod pika_common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use loopsmith_engine::Backend;
use loopsmith_fakes::fal::{Fault, Route};
use pika_common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A log writer that keeps everything written to it.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_key_never_reaches_logs_errors_or_debug_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let setup = Setup::new().await;
    let mut texts = Vec::new();
    // A success with every log line, then failures of every kind the key could ride along.
    let backend = setup.backend();
    texts.push(format!("{backend:?}"));
    backend
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");
    setup.fal.push_fault(
        Route::Submit,
        Fault::new(401, json!({"detail": "Invalid API key"})),
    );
    setup.fal.push_fault(Route::Status, Fault::unavailable());
    for id in 2..4 {
        if let Err(err) = backend
            .render(
                &job(id, &user("a"), 3.0, 8),
                Recorder::default().sink(),
                CancellationToken::new(),
            )
            .await
        {
            texts.push(err.to_string());
            texts.push(format!("{err:?}"));
            texts.push(err.user_message());
            // What a failed job records for the operator (`JobState::Failed::chain`).
            texts.extend(loopsmith_engine::error_levels(&err));
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                texts.push(cause.to_string());
                texts.push(format!("{cause:?}"));
                source = cause.source();
            }
        }
    }
    // A key fal refuses: the 401 is reported in words, without the key.
    let wrong = setup.backend_with_key(Some("canary-wrong-key-1b2c"));
    let err = wrong
        .render(
            &job(4, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("refused key");
    assert_eq!(
        err.user_message(),
        "fal refused this server's key; the operator needs to check FAL_KEY."
    );
    texts.push(format!("{err:?} {err} {wrong:?}"));
    let recorded = loopsmith_engine::error_levels(&err);
    assert!(
        recorded.len() > 1,
        "the refusal's causes are recorded: {recorded:?}"
    );
    texts.extend(recorded);

    let logs = String::from_utf8_lossy(&captured.0.lock().expect("lock")).to_string();
    assert!(
        logs.contains("submitted to fal"),
        "logs were captured: {logs}"
    );
    assert!(
        setup
            .fal
            .recorded()
            .iter()
            .any(|r| r.authorization.as_deref() == Some(&*format!("Key {KEY}"))),
        "the key was really used"
    );
    for text in texts.iter().chain([&logs]) {
        assert!(!text.contains("canary"), "the key leaked into: {text}");
    }
}
