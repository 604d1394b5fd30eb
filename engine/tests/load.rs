//! Load (issue #11, part 6): 1,000 simulated users send 3 requests each at once to an engine on
//! a real sled store with a fast backend. Every acknowledged job must finish, exactly once;
//! memory must stay bounded; and the fair queue must keep any user from waiting more than twice
//! the mean. Prints its figures; `RELIABILITY_SIZE=full` runs 5,000 users.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use loopsmith_engine::protocol::{JobState, Platform};
use loopsmith_engine::{GenerationRequest, SledStore, Store};

const REQUESTS_PER_USER: usize = 3;

fn users() -> usize {
    match std::env::var("RELIABILITY_SIZE").as_deref() {
        Ok("full") => 5_000,
        _ => 1_000,
    }
}

/// Resident memory of this process, from /proc (Linux).
fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_users_at_once_lose_nothing_and_wait_fairly() {
    let users = users();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(dir.path());
    settings.engine.workers = 4;
    let store = Arc::new(SledStore::open(&dir.path().join("db")).expect("store"));
    let engine = start(&settings, store.clone(), FakeBackend::new("local"));
    let rss_before = rss_mib();
    let started = Instant::now();

    let mut tasks = Vec::with_capacity(users);
    for u in 0..users {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let who = user(Platform::Telegram, &u.to_string());
            let begun = Instant::now();
            let mut followed = Vec::new();
            for r in 0..REQUESTS_PER_USER {
                let mut request = GenerationRequest::new(who.clone(), format!("cat {u} take {r}"));
                request.origin = Some(format!("m{u}:{r}"));
                let submitted = engine.submit(request).await.expect("accepted");
                followed.push(submitted);
            }
            let mut ids = Vec::new();
            for mut submitted in followed {
                let events = until_finished(&mut submitted).await;
                assert!(
                    matches!(final_state(&events), JobState::Done { .. }),
                    "{:?}",
                    final_state(&events)
                );
                ids.push(submitted.job);
            }
            (begun.elapsed(), ids)
        }));
    }
    let mut waits = Vec::with_capacity(users);
    let mut acknowledged = HashSet::new();
    for task in tasks {
        let (wait, ids) = tokio::time::timeout(Duration::from_secs(300), task)
            .await
            .expect("every user is served within 5 minutes")
            .expect("the user's task ran");
        waits.push(wait.as_secs_f64());
        acknowledged.extend(ids);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss_after = rss_mib();

    // Nothing lost, nothing twice: every acknowledged job is in the store once, done.
    let jobs = store.jobs().expect("jobs");
    let done: Vec<_> = jobs
        .iter()
        .filter(|j| matches!(j.state, JobState::Done { .. }))
        .collect();
    assert_eq!(acknowledged.len(), users * REQUESTS_PER_USER);
    assert_eq!(
        jobs.len(),
        users * REQUESTS_PER_USER,
        "no extra job records"
    );
    assert_eq!(done.len(), users * REQUESTS_PER_USER, "every job finished");
    assert!(jobs.iter().all(|j| acknowledged.contains(&j.id)));

    waits.sort_by(f64::total_cmp);
    let mean = waits.iter().sum::<f64>() / waits.len() as f64;
    let max = *waits.last().expect("waits");
    let p95 = waits[waits.len() * 95 / 100];
    println!(
        "load: {users} users × {REQUESTS_PER_USER} requests = {} jobs in {elapsed:.2} s ({:.0} jobs/s); \
         per-user wait mean {:.3} s, p95 {:.3} s, max {:.3} s (max/mean {:.2}); RSS {rss_before:.0} → {rss_after:.0} MiB",
        users * REQUESTS_PER_USER,
        (users * REQUESTS_PER_USER) as f64 / elapsed,
        mean,
        p95,
        max,
        max / mean
    );
    assert!(
        max <= 2.0 * mean,
        "a user waited {max:.3} s, more than twice the mean {mean:.3} s"
    );
    assert!(
        rss_after - rss_before < 256.0,
        "memory grew by {:.0} MiB",
        rss_after - rss_before
    );
    engine
        .shutdown(Duration::from_secs(5))
        .await
        .expect("shuts down");
}
