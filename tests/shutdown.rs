//! Shutdown suite (issue #11, part 2): `loopsmith serve` gets SIGTERM again and again in the
//! middle of a workload against the fake Bot API — as systemd and `docker stop` send it — with
//! a grace period drawn per trial (0, 1 or 3 s), and is restarted on the same data dir. Each
//! time: intake stops within 1 s, the process exits 0 within the grace plus the delivery
//! grace, and jobs it could not finish are queued again at the next start. In the end every
//! prompt sent was acknowledged, has exactly one job, and reached its chat. 20 trials in CI;
//! `RELIABILITY_SIZE=full` makes 200 (`SHUTDOWN_TRIALS=N` any number).

#[path = "telegram/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use harness::*;
use loopsmith_engine::protocol::JobState;
use loopsmith_engine::{SledStore, Store};
use loopsmith_fakes::telegram::{Call, FakeTelegram};

/// `serve`'s own bound on delivering finished stickers after the engine stopped
/// (`DELIVERY_GRACE` in src/serve.rs).
const DELIVERY_GRACE: Duration = Duration::from_secs(10);
/// Intake must stop within this after SIGTERM (reliability.md, G2.2).
const INTAKE_STOP: Duration = Duration::from_secs(1);
const GRACES: [u64; 3] = [0, 1, 3];

fn trials() -> usize {
    suite_size("SHUTDOWN_TRIALS", 20, 200)
}

fn acknowledged(calls: &[Call]) -> BTreeSet<i64> {
    calls
        .iter()
        .filter(|c| c.is("sendMessage") && text_of(c).starts_with("Got it"))
        .filter_map(replied_to)
        .collect()
}

fn deliveries(calls: &[Call]) -> BTreeMap<i64, usize> {
    let mut count = BTreeMap::new();
    for c in calls.iter().filter(|c| c.is("sendSticker")) {
        if let Some(m) = replied_to(c) {
            *count.entry(m).or_insert(0) += 1;
        }
    }
    count
}

/// `waiting=N` from the engine's start line: the jobs it found queued.
fn waiting_at_start(log: &str) -> u64 {
    log.lines()
        .filter(|l| l.contains("engine started"))
        .filter_map(|l| {
            let value = l.split("waiting=").nth(1)?.split_whitespace().next()?;
            value.parse::<u64>().ok()
        })
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_nothing_is_lost() {
    let trials = trials();
    let mut rng = Rng(0x7E57_5160_7E2A_0002);
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeTelegram::new(&token(), BOT);
    let server = fake.serve().await.expect("fake Bot API");
    let settings = |grace: u64| -> Vec<(&str, String)> {
        vec![
            ("LOOPSMITH_TELEGRAM__ALLOWED_USERS", String::new()),
            ("LOOPSMITH_TELEGRAM__ALLOWED_CHATS", String::new()),
            ("LOOPSMITH_LIMITS__MAX_QUEUED_PER_USER", "100".into()),
            ("LOOPSMITH_LIMITS__DAILY_QUOTA", "0".into()),
            ("LOOPSMITH_ENGINE__SHUTDOWN_GRACE_SECS", grace.to_string()),
            ("LOOPSMITH_LOG", "info".into()),
        ]
    };
    let started = Instant::now();
    let mut grace = GRACES[0];
    let mut serve = Serve::start(dir.path(), &server.base_url(), &settings(grace));
    let mut sent = BTreeSet::new();
    let (mut intake_lags, mut drains) = (Vec::new(), Vec::new());
    let (mut interrupted, mut resumed) = (0, 0);
    for trial in 0..trials {
        wait_until_polling(
            &fake,
            &serve,
            fake.calls().len(),
            &format!("trial {trial}: "),
        )
        .await;
        resumed += waiting_at_start(&serve.log());
        for _ in 0..2 {
            let user = 1000 + rng.below(5) as i64;
            let prompt = format!(
                "a ball -seed {} -duration {}",
                rng.below(1000),
                3 + rng.below(4)
            );
            sent.insert(fake.send_text(user, user, &prompt));
        }
        // SIGTERM somewhere between intake and delivery.
        tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
        let term = serve.terminate();
        let limit = Duration::from_secs(grace) + DELIVERY_GRACE + Duration::from_secs(5);
        let (status, drained) = serve.wait_exit(limit).await;
        let log = serve.log();
        assert!(status.success(), "trial {trial}: {status:?}\n{log}");
        assert!(log.contains("SIGTERM: stopping"), "trial {trial}\n{log}");
        assert!(log.lines().any(|l| l == "stopped"), "trial {trial}\n{log}");
        if log.contains("interrupting running jobs") {
            interrupted += 1;
        }
        // Intake: the last poll for updates began no later than INTAKE_STOP after SIGTERM.
        let lag = fake
            .calls()
            .iter()
            .filter(|c| c.is("getUpdates"))
            .map(|c| c.at.saturating_duration_since(term))
            .max()
            .unwrap_or_default();
        assert!(
            lag <= INTAKE_STOP,
            "trial {trial}: still polling {lag:?} after SIGTERM\n{log}"
        );
        intake_lags.push(lag);
        drains.push(drained);
        grace = GRACES[rng.below(GRACES.len() as u64) as usize];
        serve = Serve::start(dir.path(), &server.base_url(), &settings(grace));
    }

    // As long as stickers keep arriving: a busy machine renders slower, a stall is a bug.
    let stickers = |calls: &[Call]| calls.iter().filter(|c| c.is("sendSticker")).count();
    let calls = fake
        .wait_while_progressing(Duration::from_secs(120), stickers, |calls| {
            let delivered = deliveries(calls);
            acknowledged(calls) == sent && sent.iter().all(|m| delivered.contains_key(m))
        })
        .await
        .unwrap_or_else(|e| {
            let calls = fake.calls();
            let acked = acknowledged(&calls);
            let delivered = deliveries(&calls);
            let unacked: Vec<_> = sent.difference(&acked).collect();
            let undelivered: Vec<_> = sent.iter().filter(|m| !delivered.contains_key(m)).collect();
            panic!(
                "never acknowledged: {unacked:?}; never delivered: {undelivered:?}: {e}\n{}",
                serve.log()
            )
        });
    resumed += waiting_at_start(&serve.log());
    let log = serve.stop().await;
    let duplicates: usize = deliveries(&calls).values().map(|n| n - 1).sum();

    // Exactly one job per prompt, and none left half-way.
    let store = SledStore::open(&dir.path().join("loopsmith-data/db")).expect("the store opens");
    let mut jobs_per_message: BTreeMap<i64, usize> = BTreeMap::new();
    for job in store.jobs().expect("jobs") {
        assert!(
            matches!(job.state, JobState::Done { .. }),
            "job {} ended {:?}",
            job.id,
            job.state
        );
        let message = job
            .origin
            .as_deref()
            .and_then(|o| o.rsplit(':').next()?.parse::<i64>().ok())
            .expect("a message origin");
        *jobs_per_message.entry(message).or_insert(0) += 1;
    }
    assert_eq!(
        jobs_per_message.keys().copied().collect::<BTreeSet<_>>(),
        sent
    );
    assert!(
        jobs_per_message.values().all(|&n| n == 1),
        "{jobs_per_message:?}"
    );
    intake_lags.sort();
    drains.sort();
    println!(
        "shutdown suite: {trials} SIGTERMs (graces {GRACES:?} s) in {:.0} s; {} prompts sent, all acknowledged and delivered, {duplicates} duplicate deliveries; \
         intake stopped within {:?} (max), exit after p50 {:?} / max {:?}; {interrupted} stops interrupted running jobs, {resumed} waiting jobs found by the starts after them (counted once per start)",
        started.elapsed().as_secs_f64(),
        sent.len(),
        percentile(&intake_lags, 1.0),
        percentile(&drains, 0.5),
        percentile(&drains, 1.0),
    );
    assert!(!log.contains(&token()));
    assert!(
        interrupted == 0 || resumed > 0,
        "stops interrupted jobs, yet no start found any waiting"
    );
}
