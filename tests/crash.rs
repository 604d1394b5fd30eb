//! Crash suite (issue #11, part 1): `loopsmith serve` is SIGKILLed again and again in the
//! middle of a workload — while taking prompts in, rendering, encoding and delivering — against
//! the fake Bot API, and restarted on the same data dir each time. In the end every prompt the
//! bot acknowledged ("Got it") has exactly one job and reached its chat at least once;
//! duplicates are counted and printed. 50 kills in CI; `RELIABILITY_SIZE=full` makes 500.

#[path = "telegram/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use harness::*;
use loopsmith_engine::protocol::Platform;
use loopsmith_engine::{SledStore, Store};
use loopsmith_fakes::telegram::{Call, FakeTelegram};

fn trials() -> usize {
    suite_size("CRASH_TRIALS", 50, 500)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_prompt_survives_repeated_sigkills() {
    let trials = trials();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeTelegram::new(&token(), BOT);
    let server = fake.serve().await.expect("fake Bot API");
    // Users not limited by the allow-list or rates: the workload is what is measured.
    let open: Vec<(&str, String)> = vec![
        ("LOOPSMITH_TELEGRAM__ALLOWED_USERS", String::new()),
        ("LOOPSMITH_TELEGRAM__ALLOWED_CHATS", String::new()),
        ("LOOPSMITH_LIMITS__MAX_QUEUED_PER_USER", "100".into()),
        ("LOOPSMITH_LIMITS__DAILY_QUOTA", "0".into()),
        ("LOOPSMITH_LOG", "info".into()),
    ];
    let started = Instant::now();
    let mut serve = Serve::start(dir.path(), &server.base_url(), &open);
    // message id → chat, for every prompt sent
    let mut sent: BTreeMap<i64, i64> = BTreeMap::new();
    let mut kills_at = Vec::new();
    for trial in 0..trials {
        // Ready: polling again after the restart.
        wait_until_polling(
            &fake,
            &serve,
            fake.calls().len(),
            &format!("trial {trial}: "),
        )
        .await;
        for _ in 0..2 {
            let user = 1000 + rng.below(5) as i64;
            let seed = rng.below(1000);
            let message = fake.send_text(user, user, &format!("a ball -seed {seed} -duration 3"));
            sent.insert(message, user);
        }
        // Kill somewhere between intake and delivery.
        let delay = Duration::from_millis(rng.below(1500));
        tokio::time::sleep(delay).await;
        kills_at.push(delay.as_millis());
        serve.kill();
        serve = Serve::start(dir.path(), &server.base_url(), &open);
    }
    // Acknowledged: answered "Got it" (a reply to the prompt's message).
    let acknowledged = |calls: &[Call]| -> BTreeSet<i64> {
        calls
            .iter()
            .filter(|c| c.is("sendMessage") && text_of(c).starts_with("Got it"))
            .filter_map(replied_to)
            .collect()
    };
    let delivered = |calls: &[Call]| -> BTreeMap<i64, usize> {
        let mut count = BTreeMap::new();
        for c in calls.iter().filter(|c| c.is("sendSticker")) {
            if let Some(m) = replied_to(c) {
                *count.entry(m).or_insert(0) += 1;
            }
        }
        count
    };
    // As long as stickers keep arriving: a busy machine renders slower, a stall is a bug.
    let stickers = |calls: &[Call]| calls.iter().filter(|c| c.is("sendSticker")).count();
    let calls = fake
        .wait_while_progressing(Duration::from_secs(120), stickers, |calls| {
            let delivered = delivered(calls);
            acknowledged(calls)
                .iter()
                .all(|m| delivered.contains_key(m))
        })
        .await
        .unwrap_or_else(|e| {
            let calls = fake.calls();
            let missing: Vec<i64> = acknowledged(&calls)
                .into_iter()
                .filter(|m| !delivered(&calls).contains_key(m))
                .collect();
            panic!(
                "acknowledged but never delivered: {missing:?}: {e}\n{}",
                serve.log()
            )
        });
    let log = serve.stop().await;
    let acked = acknowledged(&calls);
    let counts = delivered(&calls);
    let duplicates: usize = counts.values().map(|n| n.saturating_sub(1)).sum();

    // The store opens, and every acknowledged prompt has exactly one job.
    let store = SledStore::open(&dir.path().join("loopsmith-data/db")).expect("the store opens");
    let mut jobs_per_message: BTreeMap<i64, usize> = BTreeMap::new();
    for job in store.jobs().expect("jobs") {
        assert_eq!(job.user.platform, Platform::Telegram);
        let origin = job.origin.clone().unwrap_or_default();
        let m = origin
            .rsplit(':')
            .next()
            .and_then(|m| m.parse().ok())
            .expect("a message origin");
        *jobs_per_message.entry(m).or_insert(0) += 1;
    }
    for m in &acked {
        assert_eq!(
            jobs_per_message.get(m),
            Some(&1),
            "message {m}: {jobs_per_message:?}"
        );
    }
    assert!(jobs_per_message.values().all(|&n| n == 1));
    println!(
        "crash suite: {trials} SIGKILLs (after {}–{} ms) in {:.0} s; {} prompts sent, {} acknowledged, all {} delivered, {duplicates} duplicate deliveries, {} jobs in the store",
        kills_at.iter().min().unwrap_or(&0),
        kills_at.iter().max().unwrap_or(&0),
        started.elapsed().as_secs_f64(),
        sent.len(),
        acked.len(),
        acked.len(),
        jobs_per_message.len()
    );
    assert!(!log.contains(&token()));
}
