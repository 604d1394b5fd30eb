//! Paying for Pika: the ledger's caps, the router's view of an exhausted budget, image inputs
//! uploaded through fal storage, and the key never leaking.

mod common;
mod pika_common;

use std::sync::Arc;

use bytes::Bytes;
use common::FakeBackend;
use loopsmith_engine::pika::{Common, ImageSource, PikaInput, Resolution, Transition};
use loopsmith_engine::protocol::BackendChoice;
use loopsmith_engine::store::{SpendCaps, SpendState};
use loopsmith_engine::{Backend, BackendError, Health, Router};
use loopsmith_fakes::fal::{Route, Step};
use pika_common::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn render(setup: &Setup, id: u64, who: &str) -> Result<(), BackendError> {
    setup
        .backend()
        .render(
            &job(id, &user(who), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .map(|_| ())
}

#[tokio::test]
async fn over_a_users_cap_nothing_is_submitted_and_the_message_says_why() {
    let mut setup = Setup::new().await;
    setup.fal.set_walk(vec![Step::Completed]);
    setup.options.caps = SpendCaps {
        user_micro_usd: 300_000,
        global_micro_usd: 5_000_000,
    };
    render(&setup, 1, "alice").await.expect("the first fits");
    let err = render(&setup, 2, "alice")
        .await
        .expect_err("over alice's cap");
    assert_eq!(
        err.user_message(),
        "No renderer can take this right now (you have used $0.20 of your $0.30 daily \
         allowance for paid Pika renders, and this one costs $0.20); please try again later."
    );
    assert!(
        err.retry_elsewhere(),
        "the free local backend may still take it"
    );
    assert_eq!(setup.fal.count(Route::Submit), 1, "never pays silently");
    render(&setup, 3, "bob")
        .await
        .expect("bob has his own allowance");
    assert_eq!(
        setup.entries(),
        vec![
            (1, SpendState::Settled, 200_000),
            (3, SpendState::Settled, 200_000)
        ]
    );
}

#[tokio::test]
async fn a_1080p_ten_second_clip_reserves_its_own_price() {
    let mut setup = Setup::new().await;
    setup.fal.set_walk(vec![Step::Completed]);
    setup.options.resolution = Resolution::P1080;
    setup
        .backend()
        .render(
            &job(1, &user("a"), 8.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");
    let submit = setup
        .fal
        .recorded()
        .into_iter()
        .find(|r| r.route == Route::Submit)
        .expect("submitted");
    assert_eq!(submit.json()["duration"], 10);
    assert_eq!(submit.json()["resolution"], "1080p");
    assert_eq!(setup.entries(), vec![(1, SpendState::Settled, 900_000)]);
}

#[tokio::test]
async fn a_spent_global_budget_takes_pika_out_and_the_router_says_why() {
    let mut setup = Setup::new().await;
    setup.fal.set_walk(vec![Step::Completed]);
    setup.options.caps = SpendCaps {
        user_micro_usd: 1_000_000,
        global_micro_usd: 300_000,
    };
    render(&setup, 1, "alice").await.expect("the first fits");
    let pika = Arc::new(setup.backend());
    assert_eq!(
        pika.health(),
        Health::Down {
            reason: "today's $0.30 budget for paid Pika renders is spent".into()
        }
    );
    let local = FakeBackend::new("local");
    local.set_health(Health::Down {
        reason: "no model".into(),
    });
    let router = Router::new(vec![local.clone(), pika.clone()], true);
    let mut the_job = job(2, &user("bob"), 3.0, 8);
    the_job.params.backend = BackendChoice::Auto;
    let err = router
        .render(
            &the_job,
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("nothing can take it");
    assert_eq!(
        err.user_message(),
        "No renderer can take this right now (local: no model; pika: today's $0.30 budget for \
         paid Pika renders is spent); please try again later."
    );
    assert_eq!(setup.fal.count(Route::Submit), 1);
    // With the local model back, the job renders for free.
    local.set_health(Health::Ready);
    router
        .render(
            &the_job,
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("local renders");
    assert_eq!(local.started_jobs().len(), 1);
}

#[tokio::test]
async fn image_inputs_are_uploaded_to_fal_storage_and_sent_as_urls() {
    let setup = Setup::new().await;
    setup.fal.set_walk(vec![Step::Completed]);
    let png = Bytes::from_static(b"\x89PNG\r\n\x1a\n pretend image");
    let the_job = job(1, &user("a"), 3.0, 8);
    let common = Common {
        prompt: "the cat waves".into(),
        negative_prompt: String::new(),
        seed: 5,
        resolution: Resolution::P720,
    };
    let input = PikaInput::ImageToVideo {
        common: common.clone(),
        image: ImageSource::Bytes {
            bytes: png.clone(),
            content_type: "image/png".into(),
            file_name: "cat.png".into(),
        },
        duration_secs: 5,
    };
    setup
        .backend()
        .render_input(
            &the_job,
            input,
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");
    let recorded = setup.fal.recorded();
    let submit = recorded
        .iter()
        .find(|r| r.route == Route::Submit)
        .expect("submitted");
    assert_eq!(submit.path, "/fal-ai/pika/v2.2/image-to-video");
    let image_url = submit.json()["image_url"]
        .as_str()
        .expect("a url")
        .to_string();
    assert_eq!(
        setup.fal.upload(&image_url),
        Some(("image/png".into(), png))
    );
    let initiate = recorded
        .iter()
        .find(|r| r.route == Route::UploadInitiate)
        .expect("initiated");
    assert_eq!(initiate.query, "storage_type=fal-cdn-v3");
    assert_eq!(
        initiate.json(),
        json!({"content_type": "image/png", "file_name": "cat.png"})
    );
    let put = recorded
        .iter()
        .find(|r| r.route == Route::Upload)
        .expect("put");
    assert_eq!(
        put.authorization, None,
        "the pre-signed upload URL gets no key"
    );

    // Pikaframes: URLs pass through untouched, with one prompt per transition.
    let frames = PikaInput::Frames {
        common: Common {
            prompt: String::new(),
            ..common
        },
        keyframes: vec![
            ImageSource::Url("https://example.com/a.png".into()),
            ImageSource::Url("https://example.com/b.png".into()),
        ],
        transitions: vec![Transition {
            duration_secs: 5,
            prompt: "morph".into(),
        }],
    };
    setup
        .backend()
        .render_input(
            &job(2, &user("a"), 3.0, 8),
            frames,
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect("renders");
    let submit = setup
        .fal
        .recorded()
        .into_iter()
        .filter(|r| r.route == Route::Submit)
        .nth(1)
        .expect("second submit");
    assert_eq!(submit.path, "/fal-ai/pika/v2.2/pikaframes");
    assert_eq!(
        submit.json(),
        json!({"seed": 5, "resolution": "720p",
               "image_urls": ["https://example.com/a.png", "https://example.com/b.png"],
               "transitions": [{"duration": 5, "prompt": "morph"}]})
    );
    assert_eq!(setup.fal.count(Route::UploadInitiate), 1);
}

#[tokio::test]
async fn invalid_inputs_are_refused_before_anything_is_paid() {
    let setup = Setup::new().await;
    let frames = PikaInput::Frames {
        common: Common {
            prompt: String::new(),
            negative_prompt: String::new(),
            seed: 1,
            resolution: Resolution::P720,
        },
        keyframes: vec![ImageSource::Url("https://example.com/a.png".into())],
        transitions: vec![],
    };
    let err = setup
        .backend()
        .render_input(
            &job(1, &user("a"), 3.0, 8),
            frames,
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("one keyframe");
    assert_eq!(
        err.user_message(),
        "Pikaframes takes 2 to 5 keyframes, not 1."
    );
    assert!(setup.fal.recorded().is_empty());
    assert!(setup.entries().is_empty());
}

#[tokio::test]
async fn without_a_key_pika_is_down_and_renders_nothing() {
    let setup = Setup::new().await;
    let backend = setup.backend_with_key(None);
    assert_eq!(
        backend.health(),
        Health::Down {
            reason: "FAL_KEY is not set".into()
        }
    );
    let err = backend
        .render(
            &job(1, &user("a"), 3.0, 8),
            Recorder::default().sink(),
            CancellationToken::new(),
        )
        .await
        .expect_err("no key");
    assert!(matches!(err, BackendError::Unavailable { .. }));
    assert!(setup.fal.recorded().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_jobs_never_spend_past_the_global_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn loopsmith_engine::Store> =
        Arc::new(loopsmith_engine::SledStore::open(dir.path()).expect("open"));
    let mut setup = Setup::with_store(store.clone()).await;
    setup.fal.set_walk(vec![Step::Completed]);
    setup.options.caps = SpendCaps {
        user_micro_usd: 1_000_000,
        global_micro_usd: 1_000_000,
    };
    let backend = Arc::new(setup.backend());
    let jobs: Vec<_> = (0..50)
        .map(|i| {
            let backend = backend.clone();
            tokio::spawn(async move {
                backend
                    .render(
                        &job(i + 1, &user(&format!("u{i}")), 3.0, 8),
                        Recorder::default().sink(),
                        CancellationToken::new(),
                    )
                    .await
                    .is_ok()
            })
        })
        .collect();
    let mut rendered = 0;
    for handle in jobs {
        if handle.await.expect("joined") {
            rendered += 1;
        }
    }
    // $1.00 buys exactly five $0.20 clips, however the 50 jobs interleave.
    assert_eq!(rendered, 5);
    assert_eq!(setup.fal.count(Route::Submit), 5);
    assert_eq!(
        store
            .spent(loopsmith_engine::now_ms() / 86_400_000, None)
            .expect("spent"),
        1_000_000
    );
    assert_eq!(setup.entries().len(), 5);
}
