use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use loopsmith_protocol::{Job, JobId, UserKey, UserProfile};

use super::remote::{over_cap, spend_total_key};
use super::{
    Delivery, Insert, QuotaDebit, RemoteRequest, Reservation, SpendCaps, SpendEntry, SpendState,
    Store, StoreError, delivery_key, delivery_prefix, origin_key, quota_key, user_key,
};

/// The store without a disk: same semantics as [`super::SledStore`], for tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    boots: u64,
    jobs: BTreeMap<JobId, Job>,
    origins: HashMap<String, JobId>,
    users: HashMap<String, UserProfile>,
    quota: HashMap<String, u32>,
    remote: HashMap<JobId, RemoteRequest>,
    spend: Vec<SpendEntry>,
    /// Index into `spend` of each job's open reservation.
    open_spend: HashMap<JobId, usize>,
    spend_totals: HashMap<String, u64>,
    deliveries: BTreeMap<String, Delivery>,
    images: HashMap<String, Vec<u8>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-written: every method
        // mutates it only after all checks pass.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    fn next_job_id(&self) -> Result<JobId, StoreError> {
        let mut state = self.state();
        state.next_id += 1;
        Ok(JobId(state.next_id))
    }

    fn insert_job(&self, job: &Job, debit: Option<&QuotaDebit>) -> Result<Insert, StoreError> {
        let mut state = self.state();
        let origin = job.origin.as_deref().map(|o| origin_key(&job.user, o));
        if let Some(existing) = origin.as_ref().and_then(|o| state.origins.get(o)) {
            return Ok(Insert::Duplicate(*existing));
        }
        if let Some(debit) = debit {
            let key = quota_key(&job.user, debit.day);
            let used = state.quota.get(&key).copied().unwrap_or(0);
            if used >= debit.limit {
                return Ok(Insert::OverQuota { used });
            }
            state.quota.insert(key, used + 1);
        }
        state.jobs.insert(job.id, job.clone());
        if let Some(origin) = origin {
            state.origins.insert(origin, job.id);
        }
        Ok(Insert::Inserted)
    }

    fn delete_job(&self, id: JobId) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(job) = state.jobs.remove(&id)
            && let Some(origin) = job.origin.as_deref().map(|o| origin_key(&job.user, o))
            && state.origins.get(&origin) == Some(&id)
        {
            state.origins.remove(&origin);
        }
        state.remote.remove(&id);
        Ok(())
    }

    fn update_job(&self, job: &Job, _durable: bool) -> Result<(), StoreError> {
        self.state().jobs.insert(job.id, job.clone());
        Ok(())
    }

    fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        Ok(self.state().jobs.get(&id).cloned())
    }

    fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(self.state().jobs.values().cloned().collect())
    }

    fn job_for_origin(&self, user: &UserKey, origin: &str) -> Result<Option<JobId>, StoreError> {
        Ok(self.state().origins.get(&origin_key(user, origin)).copied())
    }

    fn quota_used(&self, user: &UserKey, day: u64) -> Result<u32, StoreError> {
        Ok(self
            .state()
            .quota
            .get(&quota_key(user, day))
            .copied()
            .unwrap_or(0))
    }

    fn user(&self, key: &UserKey) -> Result<Option<UserProfile>, StoreError> {
        Ok(self.state().users.get(&user_key(key)).cloned())
    }

    fn put_user(&self, profile: &UserProfile) -> Result<(), StoreError> {
        self.state()
            .users
            .insert(user_key(&profile.key), profile.clone());
        Ok(())
    }

    fn begin_boot(&self) -> Result<u64, StoreError> {
        let mut state = self.state();
        state.boots += 1;
        Ok(state.boots)
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn put_input_image(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.state()
            .images
            .entry(sha256.to_string())
            .or_insert_with(|| bytes.to_vec());
        Ok(())
    }

    fn input_image(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.state().images.get(sha256).cloned())
    }

    fn put_remote_request(&self, request: &RemoteRequest) -> Result<(), StoreError> {
        self.state().remote.insert(request.job, request.clone());
        Ok(())
    }

    fn remote_request(&self, job: JobId) -> Result<Option<RemoteRequest>, StoreError> {
        Ok(self.state().remote.get(&job).cloned())
    }

    fn remove_remote_request(&self, job: JobId) -> Result<(), StoreError> {
        self.state().remote.remove(&job);
        Ok(())
    }

    fn reserve_spend(
        &self,
        entry: &SpendEntry,
        caps: &SpendCaps,
    ) -> Result<Reservation, StoreError> {
        let mut state = self.state();
        if let Some(&i) = state.open_spend.get(&entry.job) {
            return Ok(Reservation::AlreadyReserved(state.spend[i].clone()));
        }
        let user_key = spend_total_key(entry.day, Some(&entry.user));
        let all_key = spend_total_key(entry.day, None);
        let user_spent = state.spend_totals.get(&user_key).copied().unwrap_or(0);
        let all_spent = state.spend_totals.get(&all_key).copied().unwrap_or(0);
        if let Some(refusal) = over_cap(entry.micro_usd, user_spent, all_spent, caps) {
            return Ok(refusal);
        }
        state
            .spend_totals
            .insert(user_key, user_spent + entry.micro_usd);
        state
            .spend_totals
            .insert(all_key, all_spent + entry.micro_usd);
        let mut entry = entry.clone();
        entry.state = SpendState::Reserved;
        let index = state.spend.len();
        state.open_spend.insert(entry.job, index);
        state.spend.push(entry);
        Ok(Reservation::Reserved)
    }

    fn close_spend(
        &self,
        job: JobId,
        outcome: SpendState,
    ) -> Result<Option<SpendEntry>, StoreError> {
        let mut state = self.state();
        let Some(index) = state.open_spend.remove(&job) else {
            return Ok(None);
        };
        let entry = {
            let entry = &mut state.spend[index];
            entry.state = outcome;
            entry.clone()
        };
        if outcome == SpendState::Refunded {
            for key in [
                spend_total_key(entry.day, Some(&entry.user)),
                spend_total_key(entry.day, None),
            ] {
                let total = state.spend_totals.entry(key).or_insert(0);
                *total = total.saturating_sub(entry.micro_usd);
            }
        }
        Ok(Some(entry))
    }

    fn spent(&self, day: u64, user: Option<&UserKey>) -> Result<u64, StoreError> {
        Ok(self
            .state()
            .spend_totals
            .get(&spend_total_key(day, user))
            .copied()
            .unwrap_or(0))
    }

    fn spend_entries(&self) -> Result<Vec<SpendEntry>, StoreError> {
        Ok(self.state().spend.clone())
    }

    fn put_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.state()
            .deliveries
            .insert(delivery_key(&delivery.user, delivery.job), delivery.clone());
        Ok(())
    }

    fn deliveries(&self, user: &UserKey, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let prefix = delivery_prefix(user);
        Ok(self
            .state()
            .deliveries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, d)| d.clone())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .take(limit)
            .collect())
    }
}
