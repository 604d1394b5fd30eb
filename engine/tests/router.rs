//! The fallback router's decisions, one test each.

mod common;

use std::sync::Arc;

use common::*;
use loopsmith_engine::protocol::{Aspect, BackendChoice, JobId, OutputKind, Params, Platform};
use loopsmith_engine::{Backend, BackendError, Health, ProgressSink, RenderJob, Router};
use tokio_util::sync::CancellationToken;

fn job(choice: BackendChoice) -> RenderJob {
    RenderJob {
        id: JobId(1),
        user: user(Platform::Cli, "op"),
        params: Params {
            prompt: "a red ball".into(),
            user_prompt: "a red ball".into(),
            negative_prompt: String::new(),
            duration_secs: 3.0,
            fps: 12,
            aspect: Aspect::Square,
            motion: 2,
            seed: 1,
            guidance: None,
            style: "none".into(),
            outputs: vec![OutputKind::WebmSticker],
            backend: choice,
            fit: Default::default(),
            timing: Default::default(),
            seamless_loop: true,
        },
    }
}

async fn render(router: &Router, choice: BackendChoice) -> Result<String, BackendError> {
    router
        .render(
            &job(choice),
            ProgressSink::discard(),
            CancellationToken::new(),
        )
        .await
        .map(|clip| clip.backend)
}

fn pair() -> (Arc<FakeBackend>, Arc<FakeBackend>, Router) {
    let local = FakeBackend::new("local");
    let pika = FakeBackend::new("pika");
    let router = Router::new(vec![local.clone(), pika.clone()], true);
    (local, pika, router)
}

#[tokio::test]
async fn a_healthy_local_backend_is_used_first() {
    let (local, pika, router) = pair();
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("renders"),
        "local"
    );
    assert_eq!(local.started_jobs().len(), 1);
    assert!(pika.started_jobs().is_empty());
    assert_eq!(router.health(), Health::Ready);
}

#[tokio::test]
async fn a_down_local_backend_is_skipped() {
    let (local, pika, router) = pair();
    local.set_health(Health::Down {
        reason: "no model".into(),
    });
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("renders"),
        "pika"
    );
    assert!(local.started_jobs().is_empty());
    assert_eq!(pika.started_jobs().len(), 1);
}

#[tokio::test]
async fn a_busy_local_backend_yields_to_a_ready_one() {
    let (local, _pika, router) = pair();
    local.set_health(Health::Busy {
        detail: "1 job running".into(),
    });
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("renders"),
        "pika"
    );
}

#[tokio::test]
async fn a_retryable_failure_falls_back_and_a_refusal_does_not() {
    let (local, pika, router) = pair();
    local.set_behaviour(Behaviour::Fail {
        retry_elsewhere: true,
    });
    assert_eq!(
        render(&router, BackendChoice::Auto)
            .await
            .expect("falls back"),
        "pika"
    );

    local.set_behaviour(Behaviour::Fail {
        retry_elsewhere: false,
    });
    let err = render(&router, BackendChoice::Auto)
        .await
        .expect_err("no fallback");
    assert!(matches!(err, BackendError::Failed { .. }));

    local.set_behaviour(Behaviour::Refuse("not allowed".into()));
    let err = render(&router, BackendChoice::Auto)
        .await
        .expect_err("refused");
    assert_eq!(err.user_message(), "not allowed");
    assert_eq!(
        pika.started_jobs().len(),
        1,
        "pika was tried only for the retryable failure"
    );
}

#[tokio::test]
async fn fallback_can_be_turned_off() {
    let local = FakeBackend::new("local");
    let pika = FakeBackend::new("pika");
    let router = Router::new(vec![local.clone(), pika.clone()], false);
    local.set_behaviour(Behaviour::Fail {
        retry_elsewhere: true,
    });
    render(&router, BackendChoice::Auto)
        .await
        .expect_err("no fallback when off");
    assert!(pika.started_jobs().is_empty());
}

#[tokio::test]
async fn a_pinned_backend_is_the_only_one_tried() {
    let (local, _pika, router) = pair();
    assert_eq!(
        render(&router, BackendChoice::Pika).await.expect("renders"),
        "pika"
    );
    local.set_health(Health::Down {
        reason: "no model".into(),
    });
    let err = render(&router, BackendChoice::Local)
        .await
        .expect_err("pinned and down");
    assert_eq!(
        err.user_message(),
        "No renderer can take this right now (local: no model); please try again later."
    );
    let only_local = Router::new(vec![FakeBackend::new("local")], true);
    let err = render(&only_local, BackendChoice::Pika)
        .await
        .expect_err("not configured");
    assert_eq!(
        err.to_string(),
        "pika is unavailable: the pika backend is not set up on this server"
    );
}

#[tokio::test]
async fn everything_down_says_why_for_each_backend() {
    let (local, pika, router) = pair();
    local.set_health(Health::Down {
        reason: "no model".into(),
    });
    pika.set_health(Health::Down {
        reason: "FAL_KEY is not set".into(),
    });
    assert_eq!(
        router.health(),
        Health::Down {
            reason: "local: no model; pika: FAL_KEY is not set".into()
        }
    );
    let err = render(&router, BackendChoice::Auto)
        .await
        .expect_err("nothing up");
    assert!(err.retry_elsewhere() && err.retryable());
    let empty = Router::new(vec![], true);
    assert_eq!(
        empty.health(),
        Health::Down {
            reason: "no backend is configured".into()
        }
    );
}
