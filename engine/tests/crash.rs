//! Kill -9 mid-workload. A child process runs a real engine on sled, submitting jobs as fast as
//! it can (some of them replays of earlier platform events) and printing each acknowledged job
//! id. The parent kills it without warning, reopens the store and checks that every job whose
//! `submit` returned `Ok` is there exactly once, then restarts the engine on it and sees every
//! one of them finish.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use loopsmith_engine::protocol::{JobId, JobState, Platform};
use loopsmith_engine::{GenerationRequest, SledStore, Store};

const CHILD_ENV: &str = "LOOPSMITH_TEST_CRASH_CHILD_DIR";

/// The child's side; does nothing unless the parent below started this binary for it.
#[test]
fn crash_child_workload() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let dir = std::path::PathBuf::from(dir);
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("db")).expect("open"));
        let mut s = settings(&dir);
        s.engine.workers = 2;
        let engine = start(&s, store, FakeBackend::new("local"));
        let mut out = std::io::stdout().lock();
        for i in 0..100_000u64 {
            // Every seventh request replays an earlier event, as Telegram does after a timeout.
            let event = if i % 7 == 6 { i - 3 } else { i };
            let user = user(Platform::Telegram, &(i % 5).to_string());
            let mut req = GenerationRequest::new(user, format!("sticker {i}"));
            req.origin = Some(format!("update-{event}"));
            let submitted = engine.submit(req).await.expect("submit");
            writeln!(out, "ACK {} {} update-{event}", submitted.job, i % 5).expect("stdout");
            out.flush().expect("stdout");
        }
    });
}

#[test]
fn killed_mid_workload_every_acknowledged_job_is_there_once() {
    for (trial, acks_before_kill) in [25usize, 120, 400].into_iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "crash_child_workload",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let mut acked: BTreeMap<JobId, (String, String)> = BTreeMap::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            let Some(rest) = line.strip_prefix("ACK ") else {
                continue;
            };
            let mut parts = rest.split(' ');
            let (id, user, origin) = (parts.next(), parts.next(), parts.next());
            let id = JobId(id.and_then(|v| v.parse().ok()).expect("job id"));
            acked.insert(
                id,
                (
                    user.expect("user").to_string(),
                    origin.expect("origin").to_string(),
                ),
            );
            if acked.len() >= acks_before_kill {
                break;
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        assert!(
            acked.len() >= acks_before_kill,
            "trial {trial}: the child acknowledged too few jobs"
        );

        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(&dir.path().join("db")).expect("reopen after kill"));
        let jobs = store.jobs().expect("jobs");
        let ids: HashSet<JobId> = jobs.iter().map(|j| j.id).collect();
        assert_eq!(
            ids.len(),
            jobs.len(),
            "trial {trial}: a job id appears twice"
        );
        let mut origins = HashSet::new();
        for job in &jobs {
            let key = (job.user.id.clone(), job.origin.clone());
            assert!(
                origins.insert(key),
                "trial {trial}: two jobs for one platform event: {:?}",
                job.origin
            );
        }
        for (id, (user, origin)) in &acked {
            assert!(
                ids.contains(id),
                "trial {trial}: acknowledged job {id} was lost"
            );
            let owner = loopsmith_engine::protocol::UserKey::new(Platform::Telegram, user.clone());
            assert_eq!(
                store.job_for_origin(&owner, origin).expect("origin"),
                Some(*id),
                "trial {trial}"
            );
        }

        // A restart takes every unfinished job to the end. Events only wake the loop early;
        // the store is the judge, so an event sent before the subscription cannot be missed.
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let engine = start(
                &settings(dir.path()),
                store.clone(),
                FakeBackend::new("local"),
            );
            let mut events = engine.subscribe();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let unfinished = store
                    .jobs()
                    .expect("jobs")
                    .iter()
                    .filter(|j| !j.state.is_terminal())
                    .count();
                if unfinished == 0 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "trial {trial}: {unfinished} jobs never finished"
                );
                let _ = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
            }
            engine
                .shutdown(Duration::from_secs(5))
                .await
                .expect("stops");
        });
        let done = store
            .jobs()
            .expect("jobs")
            .iter()
            .filter(|j| matches!(j.state, JobState::Done { .. }))
            .count();
        assert_eq!(
            done,
            jobs.len(),
            "trial {trial}: every job rendered after the restart"
        );
    }
}
