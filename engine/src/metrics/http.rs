//! The scrape endpoint: `GET /metrics` on a loopback address, fed by the engine's job events.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{Gauges, Metrics};
use crate::Engine;

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Metrics carry user counts and spend: they are only ever served on loopback; put a
    /// reverse proxy with authentication in front for anything else.
    #[error("metrics are served on loopback only; {0} is not a loopback address")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the gauges the engine does not own (breakers, spend) at scrape time.
pub type GaugeSource = Arc<dyn Fn() -> Gauges + Send + Sync>;

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    engine: Engine,
    gauges: GaugeSource,
}

/// Binds `addr` (loopback only) and serves until `shutdown`; returns the bound address (so
/// port 0 works) once listening, and the serving task's handle.
pub async fn serve(
    addr: SocketAddr,
    engine: Engine,
    gauges: GaugeSource,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), MetricsError> {
    if !addr.ip().is_loopback() {
        return Err(MetricsError::NotLoopback(addr));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let metrics = Arc::new(Metrics::new());
    let mut events = engine.subscribe();
    let collector = {
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    received = events.recv() => match received {
                        Ok(event) => metrics.observe(&event, Instant::now()),
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "metrics fell behind the job events; counts are low by that much");
                        }
                        Err(RecvError::Closed) => break,
                    },
                }
            }
        }
    };
    let shared = Shared {
        metrics,
        engine,
        gauges,
    };
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(shared);
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        let (served, ()) = tokio::join!(server, collector);
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics endpoint stopped");
        }
    });
    tracing::info!(%bound, "metrics at http://{bound}/metrics");
    Ok((bound, task))
}

async fn scrape(State(shared): State<Shared>) -> impl IntoResponse {
    let mut gauges = (shared.gauges)();
    gauges.queue_depth = shared.engine.queue_len();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics.render(&gauges),
    )
}
