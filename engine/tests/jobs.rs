//! The engine's job life cycle through its public API: submit, events, limits, dedupe,
//! fairness, cancellation, restart recovery and shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use loopsmith_engine::protocol::{
    Aspect, Job, JobState, OutputKind, Overrides, ParamDefaults, Platform, UserStyle,
};
use loopsmith_engine::{Error, GenerationRequest, MemoryStore, SledStore, Store, ValidationError};

fn request(user: &loopsmith_engine::protocol::UserKey, prompt: &str) -> GenerationRequest {
    GenerationRequest::new(user.clone(), prompt)
}

#[tokio::test]
async fn a_job_runs_to_done_with_every_state_published_and_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = FakeBackend::new("local");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = start(&settings(dir.path()), store.clone(), backend.clone());
    let alice = user(Platform::Telegram, "1");

    let mut req = request(&alice, "  a red ball bouncing  ");
    req.overrides.seed = Some(42);
    req.overrides.outputs = Some(vec![OutputKind::WebmSticker, OutputKind::Mp4]);
    let mut submitted = engine.submit(req).await.expect("accepted");
    assert_eq!(submitted.position, Some(1));
    assert_eq!(submitted.state, JobState::Queued);
    let events = until_finished(&mut submitted).await;

    let names: Vec<&str> = events.iter().map(|e| e.state.name()).collect();
    assert_eq!(names.first(), Some(&"queued"));
    assert!(
        names.contains(&"running") && names.contains(&"encoding"),
        "{names:?}"
    );
    assert!(events.iter().any(|e| matches!(&e.state, JobState::Running { backend, progress } if backend == "local" && *progress == 0.25)));
    assert!(
        events
            .iter()
            .all(|e| e.job == submitted.job && e.user == alice)
    );
    let JobState::Done { artifacts } = final_state(&events) else {
        panic!("expected done, got {events:?}");
    };
    let kinds: Vec<_> = artifacts.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [OutputKind::WebmSticker, OutputKind::Mp4]);
    assert!(
        artifacts
            .iter()
            .all(|a| a.path.starts_with(dir.path().join("artifacts")) && a.path.exists())
    );

    // The record is enough to reproduce the sticker.
    let job: Job = store.job(submitted.job).expect("read").expect("stored");
    assert_eq!(job.params.user_prompt, "a red ball bouncing");
    assert_eq!(job.params.seed, 42);
    assert_eq!(job.params.style, "none");
    assert_eq!(job.backend.as_deref(), Some("local"));
    assert_eq!(job.attempts, 1);
    let t = &job.timings;
    let (started, rendered, finished) = (
        t.started_ms.expect("started"),
        t.rendered_ms.expect("rendered"),
        t.finished_ms.expect("finished"),
    );
    assert!(t.created_ms <= started && started <= rendered && rendered <= finished);
    assert_eq!(engine.queue_len(), 0);
}

#[tokio::test]
async fn an_invalid_request_is_refused_with_its_sentence_and_makes_no_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = start(
        &settings(dir.path()),
        store.clone(),
        FakeBackend::new("local"),
    );
    let alice = user(Platform::Discord, "9");

    let mut req = request(&alice, "a cat");
    req.overrides.params.duration_secs = Some(12.0);
    let err = engine.submit(req).await.expect_err("too long");
    assert!(matches!(
        err,
        Error::Invalid(ValidationError::Duration { .. })
    ));
    assert_eq!(
        err.to_string(),
        "Duration must be between 3 and 10 seconds; you asked for 12."
    );
    assert!(err.is_refusal());

    let err = engine
        .submit(request(&alice, " \u{200B} "))
        .await
        .expect_err("empty");
    assert_eq!(
        err.to_string(),
        "Please describe the sticker you want; the prompt is empty."
    );

    let mut req = request(&alice, "a cat");
    req.overrides.style = Some("vaporwave".into());
    let err = engine.submit(req).await.expect_err("unknown style");
    assert_eq!(
        err.to_string(),
        "There is no style called \"vaporwave\"; try one of: none, anime, pixel-art, claymation, watercolor, cinematic, sticker-outline."
    );
    assert!(store.jobs().expect("jobs").is_empty());
}

#[tokio::test]
async fn a_replayed_platform_event_returns_the_first_job_and_makes_no_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (backend, gate) = FakeBackend::gated("local");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = start(&settings(dir.path()), store.clone(), backend.clone());
    let alice = user(Platform::Telegram, "1");

    let mut req = request(&alice, "a red ball");
    req.origin = Some("update-77".into());
    let mut first = engine.submit(req.clone()).await.expect("accepted");
    let replay = engine.submit(req.clone()).await.expect("replay answered");
    assert!(replay.duplicate && !first.duplicate);
    assert_eq!(replay.job, first.job);
    gate.add_permits(1);
    until_finished(&mut first).await;
    let after = engine.submit(req).await.expect("replay after done");
    assert_eq!(after.job, first.job);
    assert!(matches!(after.state, JobState::Done { .. }));
    assert_eq!(store.jobs().expect("jobs").len(), 1);
    assert_eq!(backend.started_jobs().len(), 1, "rendered once");
}

#[tokio::test]
async fn three_users_with_ten_jobs_each_are_served_in_turn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (backend, gate) = FakeBackend::gated("local");
    let engine = start(
        &settings(dir.path()),
        Arc::new(MemoryStore::new()),
        backend.clone(),
    );
    // A blocker holds the single worker while everyone queues up.
    let blocker = user(Platform::Cli, "blocker");
    let mut blocking = engine
        .submit(request(&blocker, "hold"))
        .await
        .expect("accepted");
    backend.wait_started(1).await;

    let users: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| user(Platform::Telegram, n))
        .collect();
    let mut submitted = Vec::new();
    for u in &users {
        for i in 0..10 {
            submitted.push(
                engine
                    .submit(request(u, &format!("job {i}")))
                    .await
                    .expect("accepted"),
            );
        }
    }
    // Positions promise the interleaving before anything runs.
    assert_eq!(
        submitted[10].position,
        Some(2),
        "b's first job is second in line"
    );
    gate.add_permits(31);
    until_finished(&mut blocking).await;
    for s in &mut submitted {
        until_finished(s).await;
    }
    let order: String = backend
        .started_jobs()
        .iter()
        .skip(1)
        .map(|(_, u)| u.id.clone())
        .collect();
    assert_eq!(order, "abc".repeat(10));
}

#[tokio::test]
async fn limits_refuse_with_clear_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (backend, gate) = FakeBackend::gated("local");
    let mut s = settings(dir.path());
    s.limits.max_queued_per_user = 2;
    let engine = start(&s, Arc::new(MemoryStore::new()), backend.clone());
    let alice = user(Platform::Telegram, "1");
    let _a = engine
        .submit(request(&alice, "one"))
        .await
        .expect("accepted");
    let _b = engine
        .submit(request(&alice, "two"))
        .await
        .expect("accepted");
    let err = engine
        .submit(request(&alice, "three"))
        .await
        .expect_err("too many");
    assert!(matches!(err, Error::TooManyQueued { limit: 2 }));
    assert_eq!(
        err.to_string(),
        "You already have 2 stickers on the way; wait for one to finish or cancel one."
    );
    // Someone else is not affected.
    engine
        .submit(request(&user(Platform::Telegram, "2"), "mine"))
        .await
        .expect("accepted");
    gate.close();

    let mut s = settings(dir.path());
    s.limits.requests_per_minute = 1;
    s.limits.burst = 2;
    let engine = start(&s, Arc::new(MemoryStore::new()), FakeBackend::new("local"));
    engine
        .submit(request(&alice, "one"))
        .await
        .expect("accepted");
    engine
        .submit(request(&alice, "two"))
        .await
        .expect("accepted");
    let err = engine
        .submit(request(&alice, "three"))
        .await
        .expect_err("rate limited");
    let Error::RateLimited { retry_after } = err else {
        panic!("expected RateLimited, got {err}")
    };
    assert!(
        retry_after > Duration::from_secs(30) && retry_after <= Duration::from_secs(60),
        "{retry_after:?}"
    );
    assert!(
        err.to_string()
            .starts_with("You're sending requests too quickly; try again in "),
        "{err}"
    );
    // A bad request is refused before it costs a rate-limit token.
    engine
        .submit(request(&user(Platform::Telegram, "3"), ""))
        .await
        .expect_err("empty");

    let mut s = settings(dir.path());
    s.limits.daily_quota = 2;
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = start(&s, store.clone(), FakeBackend::new("local"));
    let bob = user(Platform::Discord, "5");
    for prompt in ["one", "two"] {
        let mut done = engine
            .submit(request(&bob, prompt))
            .await
            .expect("accepted");
        until_finished(&mut done).await;
    }
    let err = engine
        .submit(request(&bob, "three"))
        .await
        .expect_err("over quota");
    assert!(matches!(err, Error::QuotaExceeded { limit: 2 }));
    assert_eq!(
        err.to_string(),
        "You've used all 2 stickers for today; your quota resets at 00:00 UTC."
    );
    assert_eq!(
        store.jobs().expect("jobs").len(),
        2,
        "the refused request wrote nothing"
    );
}

#[tokio::test]
async fn a_banned_user_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = start(
        &settings(dir.path()),
        Arc::new(MemoryStore::new()),
        FakeBackend::new("local"),
    );
    let mallory = user(Platform::Telegram, "666");
    engine.set_banned(&mallory, true).await.expect("banned");
    let err = engine
        .submit(request(&mallory, "a cat"))
        .await
        .expect_err("banned");
    assert_eq!(err.to_string(), "You can't make stickers here.");
    engine.set_banned(&mallory, false).await.expect("unbanned");
    engine
        .submit(request(&mallory, "a cat"))
        .await
        .expect("accepted again");
}

#[tokio::test]
async fn the_blocklist_refuses_before_anything_renders_however_the_word_is_spelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(dir.path());
    settings.limits.blocked_words = vec!["forbidden".into(), "two words".into()];
    let store = Arc::new(MemoryStore::new());
    let backend = FakeBackend::new("local");
    let engine = start(&settings, store.clone(), backend.clone());
    let alice = user(Platform::Telegram, "1");
    for prompt in [
        "a forbidden cat",
        "a FORBIDDEN cat",
        "a ｆｏｒｂｉｄｄｅｎ cat",
        "a forbi\u{200B}dden cat",
        "a fôrbidden cat",
        "TWO\tWORDS",
    ] {
        let err = engine
            .submit(request(&alice, prompt))
            .await
            .expect_err(prompt);
        assert_eq!(
            err.to_string(),
            "That prompt can't be used here; please describe something else.",
            "{prompt}"
        );
    }
    // A character anchor carrying the word is caught in the rendered prompt too.
    let style = loopsmith_engine::protocol::UserStyle {
        character: Some("a forbidden mascot".into()),
        ..Default::default()
    };
    engine.set_style(&alice, style).await.expect("saved");
    assert!(matches!(
        engine.submit(request(&alice, "waving")).await,
        Err(loopsmith_engine::Error::Blocked)
    ));
    assert!(store.jobs().expect("jobs").is_empty(), "no job was made");
    assert!(backend.started_jobs().is_empty());
    let bob = user(Platform::Telegram, "2");
    engine
        .submit(request(&bob, "a forbiddance of cats"))
        .await
        .expect("a longer word is fine");
}

#[tokio::test]
async fn owners_and_admins_cancel_others_cannot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (backend, _gate) = FakeBackend::gated("local");
    let mut s = settings(dir.path());
    s.admins.telegram = vec![1000];
    let engine = start(&s, Arc::new(MemoryStore::new()), backend.clone());
    let alice = user(Platform::Telegram, "1");
    let bob = user(Platform::Telegram, "2");
    let admin = user(Platform::Telegram, "1000");

    let mut running = engine
        .submit(request(&alice, "first"))
        .await
        .expect("accepted");
    backend.wait_started(1).await;
    let mut queued = engine
        .submit(request(&alice, "second"))
        .await
        .expect("accepted");
    let mut by_admin = engine
        .submit(request(&alice, "third"))
        .await
        .expect("accepted");

    let err = engine
        .cancel(queued.job, &bob)
        .await
        .expect_err("not bob's");
    assert_eq!(
        err.to_string(),
        format!(
            "Only the person who asked for job {}, or an admin, can cancel it.",
            queued.job
        )
    );
    engine
        .cancel(queued.job, &alice)
        .await
        .expect("owner cancels a queued job");
    assert_eq!(
        final_state(&until_finished(&mut queued).await),
        JobState::Cancelled { by: alice.clone() }
    );
    engine
        .cancel(by_admin.job, &admin)
        .await
        .expect("admin cancels");
    assert_eq!(
        final_state(&until_finished(&mut by_admin).await),
        JobState::Cancelled { by: admin.clone() }
    );

    engine
        .cancel(running.job, &alice)
        .await
        .expect("owner cancels a running job");
    assert_eq!(
        final_state(&until_finished(&mut running).await),
        JobState::Cancelled { by: alice.clone() }
    );
    let err = engine
        .cancel(running.job, &alice)
        .await
        .expect_err("already over");
    assert!(matches!(err, Error::AlreadyFinished(_)));
    let err = engine
        .cancel(loopsmith_engine::protocol::JobId(999_999), &admin)
        .await
        .expect_err("no such job");
    assert_eq!(err.to_string(), "There is no job 999999.");
    assert_eq!(
        backend.started_jobs().len(),
        1,
        "cancelled queued jobs never rendered"
    );
}

#[tokio::test]
async fn backend_failures_end_the_job_with_a_sentence_for_the_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = FakeBackend::new("local");
    let engine = start(
        &settings(dir.path()),
        Arc::new(MemoryStore::new()),
        backend.clone(),
    );
    let alice = user(Platform::Telegram, "1");

    backend.set_behaviour(Behaviour::Fail {
        retry_elsewhere: true,
    });
    let mut failed = engine
        .submit(request(&alice, "a cat"))
        .await
        .expect("accepted");
    assert_eq!(
        final_state(&until_finished(&mut failed).await),
        JobState::Failed {
            reason: "Rendering failed on our side; please try again.".into(),
            retryable: true,
            // Every level of the backend's error, for the operator.
            chain: vec![
                "local failed".to_string(),
                "the fake backend was told to fail".to_string()
            ],
        }
    );
    backend.set_behaviour(Behaviour::Refuse("That prompt isn't allowed here.".into()));
    let mut refused = engine
        .submit(request(&alice, "a cat"))
        .await
        .expect("accepted");
    assert_eq!(
        final_state(&until_finished(&mut refused).await),
        JobState::Failed {
            reason: "That prompt isn't allowed here.".into(),
            retryable: false,
            chain: vec!["local refused the request: That prompt isn't allowed here.".to_string()],
        }
    );
}

#[tokio::test]
async fn user_styles_are_checked_saved_and_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = start(
        &settings(dir.path()),
        store.clone(),
        FakeBackend::new("local"),
    );
    let alice = user(Platform::Telegram, "1");
    let style = UserStyle {
        preset: Some("anime".into()),
        defaults: ParamDefaults {
            aspect: Some(Aspect::Tall),
            ..Default::default()
        },
        suffix: Some("pastel colours".into()),
        character: Some("a small orange fox".into()),
        seed_lock: Some(7),
    };
    engine
        .set_style(&alice, style.clone())
        .await
        .expect("saved");
    assert_eq!(engine.user(&alice).await.expect("read").style, style);

    let mut s = engine
        .submit(request(&alice, "waving"))
        .await
        .expect("accepted");
    until_finished(&mut s).await;
    let job = store.job(s.job).expect("read").expect("stored");
    assert_eq!(
        job.params.prompt,
        "a small orange fox, anime style, waving cel shading, vibrant colours, clean line art, pastel colours"
    );
    assert_eq!(
        (
            job.params.aspect,
            job.params.seed,
            job.params.style.as_str()
        ),
        (Aspect::Tall, 7, "anime")
    );

    let bad = UserStyle {
        defaults: ParamDefaults {
            fps: Some(90),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = engine
        .set_style(&alice, bad)
        .await
        .expect_err("bad default");
    assert_eq!(
        err.to_string(),
        "Frame rate must be between 8 and 30 fps; you asked for 90."
    );
    let err = engine
        .set_style(
            &alice,
            UserStyle {
                suffix: Some("x".repeat(301)),
                ..Default::default()
            },
        )
        .await
        .expect_err("long suffix");
    assert_eq!(
        err.to_string(),
        "The suffix can be at most 300 characters; yours has 301."
    );
    assert_eq!(
        engine.user(&alice).await.expect("read").style,
        style,
        "refused edits change nothing"
    );
}

#[tokio::test]
async fn jobs_left_running_by_an_earlier_process_are_requeued_and_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let alice = user(Platform::Telegram, "1");
    let (ids, first_epoch) = {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&db).expect("open"));
        let (backend, _gate) = FakeBackend::gated("local");
        let engine = start(&settings(dir.path()), store.clone(), backend.clone());
        let a = engine
            .submit(request(&alice, "one"))
            .await
            .expect("accepted");
        let b = engine
            .submit(request(&alice, "two"))
            .await
            .expect("accepted");
        backend.wait_started(1).await;
        // sled writes the Running record to disk within 500 ms on its own; flushing here
        // fixes the crash point so the copy below is what a crash at this moment leaves.
        store.flush().expect("flush");
        let job = store.job(a.job).expect("read").expect("stored");
        assert!(matches!(job.state, JobState::Running { .. }));
        (vec![a.job, b.job], engine.boot_epoch())
    };
    // The first engine's runtime is still alive in this test, so reopen the data under a
    // second name by copying it, as a fresh process would find it on disk.
    let copy = dir.path().join("db-after-crash");
    copy_dir(&db, &copy);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&copy).expect("reopen"));
    let backend = FakeBackend::new("local");
    let engine = start(&settings(dir.path()), store.clone(), backend.clone());
    assert_eq!(engine.boot_epoch(), first_epoch + 1);
    let mut events = engine.subscribe();
    let mut done = 0;
    while done < ids.len() {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("event")
            .expect("open");
        if matches!(event.state, JobState::Done { .. }) {
            done += 1;
        }
    }
    let recovered = store.job(ids[0]).expect("read").expect("stored");
    assert_eq!(
        recovered.attempts, 2,
        "started once before the crash and once after"
    );
    let order: Vec<_> = backend
        .started_jobs()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(order, ids, "recovered in their original order");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[tokio::test]
async fn shutdown_lets_running_jobs_finish_within_grace_and_leaves_the_rest_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let (backend, gate) = FakeBackend::gated("local");
    let engine = start(&settings(dir.path()), store.clone(), backend.clone());
    let alice = user(Platform::Telegram, "1");
    let running = engine
        .submit(request(&alice, "one"))
        .await
        .expect("accepted");
    let waiting = engine
        .submit(request(&alice, "two"))
        .await
        .expect("accepted");
    let (running_id, waiting_id) = (running.job, waiting.job);
    backend.wait_started(1).await;

    // Grace of zero: the render is interrupted, and goes back to the queue, not to Cancelled.
    engine.shutdown(Duration::ZERO).await.expect("stops");
    let err = engine
        .submit(request(&alice, "three"))
        .await
        .expect_err("intake closed");
    assert_eq!(
        err.to_string(),
        "loopsmith is restarting; please try again in a minute."
    );
    assert_eq!(
        store.job(running_id).expect("read").expect("stored").state,
        JobState::Queued
    );
    assert_eq!(
        store.job(waiting_id).expect("read").expect("stored").state,
        JobState::Queued
    );
    assert_eq!(backend.started_jobs().len(), 1);
    // Their streams end, without a final state, instead of waiting for a process that has
    // stopped: a chat surface stops following them and lets the next start pick them up.
    for mut events in [running.events, waiting.events] {
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            let mut last = None;
            while let Some(event) = events.next().await {
                last = Some(event.state);
            }
            last
        })
        .await
        .expect("the stream ends once the engine has stopped");
        assert!(ended.as_ref().is_none_or(|s| !s.is_terminal()), "{ended:?}");
    }

    // A generous grace lets the running job finish.
    let (backend, gate2) = FakeBackend::gated("local");
    let engine = start(&settings(dir.path()), store.clone(), backend.clone());
    backend.wait_started(1).await;
    gate2.add_permits(1);
    engine
        .shutdown(Duration::from_secs(30))
        .await
        .expect("stops");
    let first = store.job(running_id).expect("read").expect("stored");
    assert!(
        matches!(first.state, JobState::Done { .. }),
        "{:?}",
        first.state
    );
    assert_eq!(
        store.job(waiting_id).expect("read").expect("stored").state,
        JobState::Queued
    );
    drop(gate);
}

#[tokio::test]
async fn a_request_override_beats_everything_below_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = start(
        &settings(dir.path()),
        store.clone(),
        FakeBackend::new("local"),
    );
    let alice = user(Platform::Telegram, "1");
    engine
        .set_style(
            &alice,
            UserStyle {
                seed_lock: Some(7),
                preset: Some("cinematic".into()),
                ..Default::default()
            },
        )
        .await
        .expect("saved");
    let mut req = request(&alice, "a ship");
    req.overrides = Overrides {
        seed: Some(99),
        style: Some("none".into()),
        params: ParamDefaults {
            aspect: Some(Aspect::Square),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut s = engine.submit(req).await.expect("accepted");
    until_finished(&mut s).await;
    let job = store.job(s.job).expect("read").expect("stored");
    assert_eq!(
        (
            job.params.seed,
            job.params.style.as_str(),
            job.params.aspect
        ),
        (99, "none", Aspect::Square)
    );
    assert_eq!(job.params.prompt, "a ship");
}

#[tokio::test]
async fn a_resubmitted_job_keeps_its_resolved_params_and_passes_the_same_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = FakeBackend::new("local");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let engine = start(&settings(dir.path()), store.clone(), backend.clone());
    let alice = user(Platform::Telegram, "1");
    let mut req = request(&alice, "a red ball");
    req.overrides.style = Some("anime".into());
    let mut first = engine.submit(req).await.expect("accepted");
    until_finished(&mut first).await;
    let original = store.job(first.job).expect("read").expect("stored").params;

    // The user's style changes afterwards; a re-roll still renders what the first job did.
    engine
        .set_style(
            &alice,
            UserStyle {
                suffix: Some("pastel".into()),
                ..UserStyle::default()
            },
        )
        .await
        .expect("saved");
    let mut params = original.clone();
    params.seed = original.seed.wrapping_add(1);
    let mut again = engine
        .resubmit(alice.clone(), Some("cb-1".into()), params.clone())
        .await
        .expect("accepted");
    until_finished(&mut again).await;
    let job = store.job(again.job).expect("read").expect("stored");
    assert_eq!(job.params, params, "nothing re-resolved");
    assert_eq!(job.params.prompt, original.prompt);

    // The same button press again is the same job.
    let replay = engine
        .resubmit(alice.clone(), Some("cb-1".into()), params.clone())
        .await
        .expect("replay");
    assert!(replay.duplicate);
    assert_eq!(replay.job, again.job);

    // Stored parameters out of today's bounds are refused with the usual sentence.
    let mut bad = original.clone();
    bad.fps = 60;
    let err = engine.resubmit(alice.clone(), None, bad).await.unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ValidationError::Fps { asked: 60 })),
        "{err}"
    );
    engine.set_banned(&alice, true).await.expect("ban");
    let err = engine
        .resubmit(alice.clone(), None, original)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Banned));

    let recent = engine.recent_jobs(Some(&alice), 10).await.expect("recent");
    assert_eq!(
        recent.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![again.job, first.job],
        "newest first"
    );
}
