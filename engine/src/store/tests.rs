//! One contract, run against both stores.

use loopsmith_protocol::{
    Aspect, BackendChoice, Job, JobState, OutputKind, Params, Platform, Timings, UserKey,
    UserProfile,
};

use super::*;

fn job(store: &dyn Store, user: &UserKey, origin: Option<&str>) -> Job {
    Job {
        id: store.next_job_id().expect("id"),
        user: user.clone(),
        origin: origin.map(str::to_string),
        params: Params {
            prompt: "a red ball".into(),
            user_prompt: "a red ball".into(),
            negative_prompt: String::new(),
            duration_secs: 3.0,
            fps: 24,
            aspect: Aspect::Square,
            motion: 2,
            seed: 7,
            guidance: None,
            style: "none".into(),
            outputs: vec![OutputKind::WebmSticker],
            backend: BackendChoice::Auto,
            fit: Default::default(),
            timing: Default::default(),
            seamless_loop: true,
            image: None,
        },
        state: JobState::Queued,
        backend: None,
        attempts: 0,
        timings: Timings::default(),
    }
}

fn contract(store: &dyn Store) {
    let alice = UserKey::new(Platform::Telegram, "1");
    let bob = UserKey::new(Platform::Telegram, "2");

    // A deleted job is gone with its event key, so the event could make a job again.
    let gone = job(store, &alice, Some("update-gone"));
    store.insert_job(&gone, None).expect("insert");
    store.delete_job(gone.id).expect("delete");
    store.delete_job(gone.id).expect("deleting twice is fine");
    assert_eq!(store.job(gone.id).expect("read"), None);
    assert_eq!(
        store.job_for_origin(&alice, "update-gone").expect("origin"),
        None
    );

    // Pictures to animate, by hash; the same hash twice keeps the first bytes.
    assert_eq!(store.input_image("aa").expect("read"), None);
    store.put_input_image("aa", b"picture").expect("put");
    store.put_input_image("aa", b"ignored").expect("put again");
    assert_eq!(
        store.input_image("aa").expect("read").as_deref(),
        Some(&b"picture"[..])
    );

    let a1 = job(store, &alice, Some("update-10"));
    assert_eq!(
        store.insert_job(&a1, None).expect("insert"),
        Insert::Inserted
    );
    // The same platform event again is refused and points at the first job.
    let replay = job(store, &alice, Some("update-10"));
    assert_ne!(replay.id, a1.id, "ids are never reused");
    assert_eq!(
        store.insert_job(&replay, None).expect("insert"),
        Insert::Duplicate(a1.id)
    );
    assert_eq!(
        store.job(replay.id).expect("read"),
        None,
        "nothing written for a duplicate"
    );
    // Another user's event with the same id is a different event.
    let b1 = job(store, &bob, Some("update-10"));
    assert_eq!(
        store.insert_job(&b1, None).expect("insert"),
        Insert::Inserted
    );
    assert_eq!(
        store.job_for_origin(&alice, "update-10").expect("read"),
        Some(a1.id)
    );

    // Quota: two allowed on day 100, the third refused without writing.
    let debit = QuotaDebit { day: 100, limit: 2 };
    for _ in 0..2 {
        let j = job(store, &bob, None);
        assert_eq!(
            store.insert_job(&j, Some(&debit)).expect("insert"),
            Insert::Inserted
        );
    }
    let over = job(store, &bob, None);
    assert_eq!(
        store.insert_job(&over, Some(&debit)).expect("insert"),
        Insert::OverQuota { used: 2 }
    );
    assert_eq!(store.job(over.id).expect("read"), None);
    assert_eq!(store.quota_used(&bob, 100).expect("read"), 2);
    assert_eq!(
        store.quota_used(&bob, 101).expect("read"),
        0,
        "a new day starts from zero"
    );
    assert_eq!(store.quota_used(&alice, 100).expect("read"), 0);

    let mut done = a1.clone();
    done.state = JobState::Done { artifacts: vec![] };
    store.update_job(&done, true).expect("update");
    assert_eq!(store.job(a1.id).expect("read"), Some(done));
    let ids: Vec<_> = store
        .jobs()
        .expect("jobs")
        .into_iter()
        .map(|j| j.id)
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "oldest first");
    assert_eq!(ids.len(), 4);

    let mut profile = UserProfile::new(alice.clone());
    profile.style.suffix = Some("pastel".into());
    store.put_user(&profile).expect("put user");
    assert_eq!(store.user(&alice).expect("read"), Some(profile));
    assert_eq!(store.user(&bob).expect("read"), None);

    let first = store.begin_boot().expect("boot");
    assert_eq!(store.begin_boot().expect("boot"), first + 1);

    // Recent jobs: newest first, one user's or everyone's.
    let recent: Vec<_> = store
        .recent_jobs(Some(&bob), 2)
        .expect("recent")
        .into_iter()
        .map(|j| j.id)
        .collect();
    let mut bobs: Vec<_> = ids.iter().copied().filter(|id| *id != a1.id).collect();
    bobs.reverse();
    assert_eq!(recent, bobs[..2]);
    assert_eq!(store.recent_jobs(None, 10).expect("recent").len(), 4);

    // Deliveries: newest first per user; a second write for a job replaces the first; one
    // user's never show up for another whose id is a prefix of theirs.
    let delivery = |user: &UserKey, job: u64, file: &str| Delivery {
        job: JobId(job),
        user: user.clone(),
        prompt: format!("prompt {job}"),
        files: [("webm_sticker".to_string(), file.to_string())].into(),
        created_ms: job,
    };
    let alice_10 = UserKey::new(Platform::Telegram, "10");
    store.put_delivery(&delivery(&alice, 2, "a")).expect("put");
    store.put_delivery(&delivery(&alice, 11, "b")).expect("put");
    store.put_delivery(&delivery(&alice, 11, "c")).expect("put");
    store
        .put_delivery(&delivery(&alice_10, 3, "d"))
        .expect("put");
    let got = store.deliveries(&alice, 10).expect("read");
    assert_eq!(
        got.iter()
            .map(|d| (d.job.0, d.files["webm_sticker"].as_str()))
            .collect::<Vec<_>>(),
        vec![(11, "c"), (2, "a")]
    );
    assert_eq!(store.deliveries(&alice, 1).expect("read").len(), 1);
    assert_eq!(store.deliveries(&bob, 10).expect("read"), vec![]);
}

#[test]
fn memory_store_keeps_the_contract() {
    contract(&MemoryStore::new());
    remote_and_spend_contract(&MemoryStore::new());
}

#[test]
fn sled_store_keeps_the_remote_and_spend_contract_across_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = {
        let store = SledStore::open(dir.path()).expect("open");
        remote_and_spend_contract(&store);
        store.spend_entries().expect("entries")
    };
    let reopened = reopen(dir.path());
    assert_eq!(reopened.spend_entries().expect("entries"), entries);
    assert_eq!(reopened.spent(100, None).expect("spent"), 200_000);
}

/// Opens a sled store this process had open a moment ago. sled's background flusher holds
/// the file lock for a little while after the last handle is dropped (seen under load in CI),
/// so the lock is waited for, up to 10 s; a restarted process never meets this.
fn reopen(path: &std::path::Path) -> SledStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SledStore::open(path) {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline && format!("{e:?}").contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reopen: {e:?}"),
        }
    }
}

#[test]
fn sled_store_keeps_the_contract_and_survives_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (jobs, boots) = {
        let store = SledStore::open(dir.path()).expect("open");
        contract(&store);
        (
            store.jobs().expect("jobs"),
            store.begin_boot().expect("boot"),
        )
    };
    let reopened = reopen(dir.path());
    assert_eq!(reopened.jobs().expect("jobs"), jobs);
    assert!(
        reopened.input_image("aa").expect("read").is_some(),
        "pictures are durable"
    );
    assert_eq!(reopened.begin_boot().expect("boot"), boots + 1);
    let next = reopened.next_job_id().expect("id");
    assert!(
        jobs.iter().all(|j| j.id < next),
        "ids keep growing across restarts"
    );
}

#[test]
fn a_database_that_cannot_be_opened_names_its_path() {
    let file = tempfile::NamedTempFile::new().expect("file");
    let err = SledStore::open(file.path()).expect_err("a file is not a database folder");
    assert!(
        err.to_string().contains(&file.path().display().to_string()),
        "{err}"
    );
}

fn remote_and_spend_contract(store: &dyn Store) {
    let alice = UserKey::new(Platform::Telegram, "1");
    let bob = UserKey::new(Platform::Discord, "2");
    let request = RemoteRequest {
        job: loopsmith_protocol::JobId(7),
        backend: "pika".into(),
        endpoint: "fal-ai/pika/v2.2/text-to-video".into(),
        request_id: "r-1".into(),
        status_url: "https://queue.fal.run/fal-ai/pika/requests/r-1/status".into(),
        response_url: "https://queue.fal.run/fal-ai/pika/requests/r-1".into(),
        cancel_url: "https://queue.fal.run/fal-ai/pika/requests/r-1/cancel".into(),
        submitted_ms: 5,
    };
    let job7 = request.job;
    assert_eq!(store.remote_request(job7).expect("read"), None);
    store.put_remote_request(&request).expect("put");
    assert_eq!(store.remote_request(job7).expect("read"), Some(request));
    store.remove_remote_request(job7).expect("remove");
    assert_eq!(store.remote_request(job7).expect("read"), None);

    let caps = SpendCaps {
        user_micro_usd: 500_000,
        global_micro_usd: 500_000,
    };
    let entry = |job: u64, user: &UserKey| SpendEntry {
        job: loopsmith_protocol::JobId(job),
        user: user.clone(),
        day: 100,
        micro_usd: 200_000,
        state: SpendState::Reserved,
        what: "pika text-to-video 720p 5s".into(),
    };
    assert_eq!(
        store
            .reserve_spend(&entry(1, &alice), &caps)
            .expect("reserve"),
        Reservation::Reserved
    );
    // A restart resuming job 1 finds its reservation instead of counting it twice.
    assert_eq!(
        store
            .reserve_spend(&entry(1, &alice), &caps)
            .expect("reserve"),
        Reservation::AlreadyReserved(entry(1, &alice))
    );
    assert_eq!(
        store
            .reserve_spend(&entry(2, &alice), &caps)
            .expect("reserve"),
        Reservation::Reserved
    );
    assert_eq!(
        store
            .reserve_spend(&entry(3, &alice), &caps)
            .expect("reserve"),
        Reservation::OverUserCap {
            spent: 400_000,
            cap: 500_000
        },
        "a third $0.20 would pass alice's $0.50"
    );
    assert_eq!(
        store
            .reserve_spend(&entry(4, &bob), &caps)
            .expect("reserve"),
        Reservation::OverGlobalCap {
            spent: 400_000,
            cap: 500_000
        },
        "bob has spent nothing, but everyone together would pass $0.50"
    );
    assert_eq!(store.spent(100, Some(&alice)).expect("spent"), 400_000);
    assert_eq!(store.spent(100, None).expect("spent"), 400_000);
    assert_eq!(store.spent(101, None).expect("spent"), 0, "a new day");

    let settled = store
        .close_spend(loopsmith_protocol::JobId(1), SpendState::Settled)
        .expect("settle")
        .expect("job 1 had a reservation");
    assert_eq!(settled.state, SpendState::Settled);
    assert_eq!(
        store.spent(100, None).expect("spent"),
        400_000,
        "settled stays counted"
    );
    store
        .close_spend(loopsmith_protocol::JobId(2), SpendState::Refunded)
        .expect("refund")
        .expect("job 2 had a reservation");
    assert_eq!(store.spent(100, Some(&alice)).expect("spent"), 200_000);
    assert_eq!(store.spent(100, None).expect("spent"), 200_000);
    assert_eq!(
        store
            .close_spend(loopsmith_protocol::JobId(2), SpendState::Settled)
            .expect("close"),
        None,
        "a closed reservation cannot be closed again"
    );
    let states: Vec<_> = store
        .spend_entries()
        .expect("entries")
        .into_iter()
        .map(|e| (e.job.0, e.state))
        .collect();
    assert_eq!(
        states,
        vec![(1, SpendState::Settled), (2, SpendState::Refunded)]
    );
}
