//! The metrics endpoint scraped over real HTTP while a job runs: the expected series move.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use loopsmith_engine::metrics::{self, Gauges, MetricsError};
use loopsmith_engine::protocol::Platform;
use loopsmith_engine::{GenerationRequest, MemoryStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("content-type: text/plain; version=0.0.4"),
        "{response}"
    );
    response
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn series_move_while_a_job_runs_and_the_endpoint_stays_on_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = start(&settings(dir.path()), store, FakeBackend::new("local"));
    let shutdown = CancellationToken::new();
    let gauges: metrics::GaugeSource = Arc::new(|| Gauges {
        breakers: vec![("local".into(), "closed".into())],
        ..Gauges::default()
    });
    let (addr, task) = metrics::serve(
        "127.0.0.1:0".parse().expect("addr"),
        engine.clone(),
        gauges.clone(),
        shutdown.clone(),
    )
    .await
    .expect("serves");

    let before = scrape(addr).await;
    assert_eq!(
        value(&before, "loopsmith_jobs_entered_total{state=\"done\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(
            &before,
            "loopsmith_breaker_state{backend=\"local\",state=\"closed\"}"
        ),
        Some(1.0)
    );

    let mut submitted = engine
        .submit(GenerationRequest::new(
            user(Platform::Telegram, "1"),
            "a red ball",
        ))
        .await
        .expect("accepted");
    until_finished(&mut submitted).await;

    // The collector reads the same event stream the test just drained; give it a bounded
    // moment to catch up, checking the scrape each time rather than sleeping blindly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let text = scrape(addr).await;
        if value(&text, "loopsmith_jobs_entered_total{state=\"done\"}") == Some(1.0)
            || Instant::now() > deadline
        {
            break text;
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(
        value(&after, "loopsmith_jobs_entered_total{state=\"done\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        value(&after, "loopsmith_jobs_entered_total{state=\"queued\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&after, "loopsmith_render_seconds_count{backend=\"local\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        value(&after, "loopsmith_encode_seconds_count{backend=\"local\"}"),
        Some(1.0)
    );
    assert_eq!(value(&after, "loopsmith_queue_depth"), Some(0.0));

    shutdown.cancel();
    task.await.expect("the server stops on shutdown");

    let refused = metrics::serve(
        "0.0.0.0:0".parse().expect("addr"),
        engine,
        gauges,
        CancellationToken::new(),
    )
    .await
    .expect_err("not loopback");
    assert!(matches!(refused, MetricsError::NotLoopback(_)));
    assert_eq!(
        refused.to_string(),
        "metrics are served on loopback only; 0.0.0.0:0 is not a loopback address"
    );
}
