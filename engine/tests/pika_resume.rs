//! A Pika job's life beyond the happy path: a restart between submit and result, the
//! router sending paid work back to Pika, cancellation (by the user, by a dropped render, by
//! the deadline, by giving up) and a shutdown that keeps the paid request for the next start.

mod pika_common;

use std::sync::Arc;
use std::time::Duration;

use loopsmith_engine::protocol::BackendChoice;
use loopsmith_engine::store::SpendState;
use loopsmith_engine::{Backend, BackendError, Health, Router, SledStore, Store};
use loopsmith_fakes::fal::{Fault, Route, Step};
use pika_common::*;
use tokio_util::sync::CancellationToken;

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
    let err = setup.render_one().await.expect_err("times out");
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
async fn giving_up_on_status_polls_cancels_the_request_at_fal() {
    let mut setup = Setup::new().await;
    setup.options.retry.max_attempts = 2;
    setup.fal.set_walk(vec![Step::Queued(0)]);
    for _ in 0..2 {
        setup.fal.push_fault(Route::Status, Fault::unavailable());
    }
    let err = setup.render_one().await.expect_err("status keeps failing");
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

fn today() -> u64 {
    loopsmith_engine::now_ms() / 86_400_000
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
