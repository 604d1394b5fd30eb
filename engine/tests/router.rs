//! The fallback router's decisions, one test each.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use loopsmith_engine::protocol::{
    Aspect, BackendChoice, ImageRef, JobId, OutputKind, Params, Platform,
};
use loopsmith_engine::{
    Backend, BackendError, BreakerPolicy, Health, ProgressSink, RenderJob, Router, RouterPolicy,
};
use tokio::time::Instant;
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
            image: None,
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
async fn a_picture_goes_only_to_a_backend_that_takes_one() {
    let (local, pika, router) = pair();
    let mut picture = job(BackendChoice::Auto);
    picture.params.image = Some(ImageRef {
        sha256: "ab".repeat(32),
        mime: "image/png".into(),
        width: 320,
        height: 240,
        bytes: 1000,
    });
    // Neither takes pictures: refused with the reason, nothing started.
    assert!(!router.takes_image());
    let go = || router.render(&picture, ProgressSink::discard(), CancellationToken::new());
    match go().await {
        Err(BackendError::Unavailable { reason, .. }) => {
            assert_eq!(reason, "no auto backend on this server animates pictures")
        }
        other => panic!("{other:?}"),
    }
    // Pika does: the ready local backend, first in order, is passed over.
    pika.takes_image
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(router.takes_image());
    assert_eq!(go().await.expect("renders").backend, "pika");
    assert!(local.started_jobs().is_empty());
    // Text still goes to local first.
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("renders"),
        "local"
    );
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

fn policy(busy_wait_secs: u64) -> RouterPolicy {
    RouterPolicy {
        fallback: true,
        busy_wait: Duration::from_secs(busy_wait_secs),
        breaker: BreakerPolicy {
            consecutive: 3,
            rate: 0.0,
            window: 10,
            cooldown: Duration::from_secs(60),
        },
    }
}

#[tokio::test(start_paused = true)]
async fn a_busy_local_backend_is_waited_for_up_to_the_threshold_then_pika_takes_the_job() {
    let local = FakeBackend::new("local");
    let pika = FakeBackend::new("pika");
    let router = Router::with_policy(vec![local.clone(), pika.clone()], policy(20));
    local.set_health(Health::Busy {
        detail: "1 job rendering".into(),
    });
    let started = Instant::now();
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("renders"),
        "pika"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(21),
        "{waited:?}"
    );
    assert!(local.started_jobs().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_local_backend_that_frees_up_within_the_threshold_keeps_the_job() {
    let local = FakeBackend::new("local");
    let pika = FakeBackend::new("pika");
    let router = Router::with_policy(vec![local.clone(), pika.clone()], policy(20));
    local.set_health(Health::Busy {
        detail: "1 job rendering".into(),
    });
    let freed = local.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        freed.set_health(Health::Ready);
    });
    let started = Instant::now();
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("renders"),
        "local"
    );
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(pika.started_jobs().is_empty(), "nothing paid");
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_consecutive_failures_and_a_probe_closes_it() {
    let local = FakeBackend::new("local");
    let pika = FakeBackend::new("pika");
    let router = Router::with_policy(vec![local.clone(), pika.clone()], policy(0));
    local.set_behaviour(Behaviour::Fail {
        retry_elsewhere: true,
    });
    for _ in 0..3 {
        assert_eq!(
            render(&router, BackendChoice::Auto)
                .await
                .expect("falls back"),
            "pika"
        );
    }
    assert_eq!(local.started_jobs().len(), 3);
    // Open: local is skipped without being called.
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("pika"),
        "pika"
    );
    assert_eq!(local.started_jobs().len(), 3, "no call while open");
    assert_eq!(
        router.breaker_states(),
        [
            ("local".to_string(), "open".to_string()),
            ("pika".to_string(), "closed".to_string())
        ]
    );
    let health = router.backend_health();
    assert_eq!(
        health[0],
        (
            "local".to_string(),
            Health::Down {
                reason: "circuit open (3 failures in a row); next try in 60 s".into()
            }
        )
    );
    // After the cool-down one probe goes through; it succeeds and the breaker closes.
    tokio::time::advance(Duration::from_secs(60)).await;
    local.set_behaviour(Behaviour::Succeed);
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("probe"),
        "local"
    );
    assert_eq!(router.backend_health()[0].1, Health::Ready);
    assert_eq!(router.breaker_states()[0].1, "closed");
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("closed"),
        "local"
    );
    assert_eq!(local.started_jobs().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_on_pika_means_no_paid_calls_and_says_so() {
    let local = FakeBackend::new("local");
    let pika = FakeBackend::new("pika");
    let router = Router::with_policy(vec![local.clone(), pika.clone()], policy(0));
    pika.set_behaviour(Behaviour::Fail {
        retry_elsewhere: true,
    });
    for _ in 0..3 {
        render(&router, BackendChoice::Pika)
            .await
            .expect_err("pika fails");
    }
    let err = render(&router, BackendChoice::Pika)
        .await
        .expect_err("breaker open");
    assert_eq!(
        err.user_message(),
        "No renderer can take this right now (pika: circuit open (3 failures in a row); next \
         try in 60 s); please try again later."
    );
    assert_eq!(pika.started_jobs().len(), 3, "0 paid calls while open");
    // A failed probe opens it again for another cool-down.
    tokio::time::advance(Duration::from_secs(61)).await;
    render(&router, BackendChoice::Pika)
        .await
        .expect_err("probe fails");
    assert_eq!(pika.started_jobs().len(), 4);
    render(&router, BackendChoice::Pika)
        .await
        .expect_err("open again");
    assert_eq!(pika.started_jobs().len(), 4);
    // Refusals do not count as failures of the backend.
    let fresh = Router::with_policy(vec![local.clone()], policy(0));
    local.set_behaviour(Behaviour::Refuse("not allowed".into()));
    for _ in 0..5 {
        render(&fresh, BackendChoice::Auto)
            .await
            .expect_err("refused");
    }
    assert_eq!(fresh.health(), Health::Ready);
}

#[tokio::test(start_paused = true)]
async fn a_failure_rate_over_the_window_opens_the_breaker() {
    let local = FakeBackend::new("local");
    let pika = FakeBackend::new("pika");
    let mut p = policy(0);
    p.breaker = BreakerPolicy {
        consecutive: 100,
        rate: 0.5,
        window: 4,
        cooldown: Duration::from_secs(30),
    };
    let router = Router::with_policy(vec![local.clone(), pika.clone()], p);
    for fail in [true, false, true, false] {
        local.set_behaviour(if fail {
            Behaviour::Fail {
                retry_elsewhere: true,
            }
        } else {
            Behaviour::Succeed
        });
        render(&router, BackendChoice::Auto).await.expect("renders");
    }
    assert!(matches!(router.backend_health()[0].1, Health::Down { .. }));
    local.set_behaviour(Behaviour::Succeed);
    assert_eq!(
        render(&router, BackendChoice::Auto).await.expect("renders"),
        "pika"
    );
}
