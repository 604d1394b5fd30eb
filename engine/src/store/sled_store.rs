use std::path::Path;

use loopsmith_protocol::{Job, JobId, UserKey, UserProfile};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::remote::{over_cap, spend_total_key};
use super::{
    Delivery, Insert, QuotaDebit, RemoteRequest, Reservation, SpendCaps, SpendEntry, SpendState,
    Store, StoreError, decode, delivery_key, delivery_prefix, encode, origin_key, quota_key,
    user_key,
};

/// Trees are named with a format version so a later layout can live beside this one.
const JOBS: &str = "v1/jobs";
const ORIGINS: &str = "v1/origins";
const USERS: &str = "v1/users";
const QUOTA: &str = "v1/quota";
const REMOTE: &str = "v1/remote_requests";
/// Ledger entries under a dense sequence number, so they list in the order they were made.
const SPEND: &str = "v1/spend";
/// Per-day totals (`{day}/all`, `{day}/user/{platform}/{id}`), each job's open reservation
/// (`open/{job}` → entry key) and the entry counter.
const SPEND_INDEX: &str = "v1/spend_index";
const NEXT_SPEND: &str = "next_entry";
const DELIVERIES: &str = "v1/deliveries";
/// Users' pictures to animate, by the hex SHA-256 of their bytes.
const IMAGES: &str = "v1/input_images";
const BOOT_EPOCH: &[u8] = b"v1/boot_epoch";
const NEXT_JOB_ID: &[u8] = b"v1/next_job_id";

/// The sled-backed store.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    jobs: sled::Tree,
    origins: sled::Tree,
    users: sled::Tree,
    quota: sled::Tree,
    remote: sled::Tree,
    spend: sled::Tree,
    spend_index: sled::Tree,
    deliveries: sled::Tree,
    images: sled::Tree,
}

impl SledStore {
    pub fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .open()
            .map_err(|source| StoreError::Open {
                path: dir.display().to_string(),
                source,
            })?;
        Ok(SledStore {
            jobs: db.open_tree(JOBS)?,
            origins: db.open_tree(ORIGINS)?,
            users: db.open_tree(USERS)?,
            quota: db.open_tree(QUOTA)?,
            remote: db.open_tree(REMOTE)?,
            spend: db.open_tree(SPEND)?,
            spend_index: db.open_tree(SPEND_INDEX)?,
            deliveries: db.open_tree(DELIVERIES)?,
            images: db.open_tree(IMAGES)?,
            db,
        })
    }
}

impl Store for SledStore {
    fn next_job_id(&self) -> Result<JobId, StoreError> {
        // A dense counter rather than sled's generate_id, which reserves blocks of a million
        // per process start: ids travel in chat buttons and should stay short. The counter is
        // written to the same log before the job, so a crash that loses it loses the job too,
        // and an id is never handed to two stored jobs.
        let next = self
            .db
            .update_and_fetch(NEXT_JOB_ID, |old| {
                Some((old.map(be_u64).unwrap_or(0) + 1).to_be_bytes().to_vec())
            })?
            .map(|v| be_u64(&v))
            .unwrap_or(1);
        Ok(JobId(next))
    }

    fn insert_job(&self, job: &Job, debit: Option<&QuotaDebit>) -> Result<Insert, StoreError> {
        let record = encode(job);
        let origin = job.origin.as_deref().map(|o| origin_key(&job.user, o));
        let quota = debit.map(|d| (quota_key(&job.user, d.day), d.limit));
        let outcome = (&self.jobs, &self.origins, &self.quota)
            .transaction(|(jobs, origins, quotas)| {
                if let Some(origin) = &origin
                    && let Some(existing) = origins.get(origin.as_bytes())?
                {
                    return Ok(Insert::Duplicate(JobId(be_u64(&existing))));
                }
                if let Some((key, limit)) = &quota {
                    let used = quotas
                        .get(key.as_bytes())?
                        .map(|v| be_u64(&v) as u32)
                        .unwrap_or(0);
                    if used >= *limit {
                        return Ok(Insert::OverQuota { used });
                    }
                    quotas.insert(key.as_bytes(), &u64::from(used + 1).to_be_bytes())?;
                }
                jobs.insert(&job.id.0.to_be_bytes(), record.as_slice())?;
                if let Some(origin) = &origin {
                    origins.insert(origin.as_bytes(), &job.id.0.to_be_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(Insert::Inserted)
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Sled(e),
            })?;
        if outcome == Insert::Inserted {
            self.db.flush()?;
        }
        Ok(outcome)
    }

    fn delete_job(&self, id: JobId) -> Result<(), StoreError> {
        let Some(job) = self.job(id)? else {
            return Ok(());
        };
        let origin = job.origin.as_deref().map(|o| origin_key(&job.user, o));
        (&self.jobs, &self.origins)
            .transaction(|(jobs, origins)| {
                jobs.remove(&id.0.to_be_bytes())?;
                if let Some(origin) = &origin
                    && origins
                        .get(origin.as_bytes())?
                        .is_some_and(|v| be_u64(&v) == id.0)
                {
                    origins.remove(origin.as_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Sled(e),
            })?;
        self.remote.remove(id.0.to_be_bytes())?;
        Ok(())
    }

    fn update_job(&self, job: &Job, durable: bool) -> Result<(), StoreError> {
        self.jobs.insert(job.id.0.to_be_bytes(), encode(job))?;
        if durable {
            self.db.flush()?;
        }
        Ok(())
    }

    fn job(&self, id: JobId) -> Result<Option<Job>, StoreError> {
        self.jobs
            .get(id.0.to_be_bytes())?
            .map(|bytes| decode(&bytes, || format!("job {id}")))
            .transpose()
    }

    fn jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.jobs
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                decode(&value, || format!("job {}", be_u64(&key)))
            })
            .collect()
    }

    fn job_for_origin(&self, user: &UserKey, origin: &str) -> Result<Option<JobId>, StoreError> {
        Ok(self
            .origins
            .get(origin_key(user, origin).as_bytes())?
            .map(|v| JobId(be_u64(&v))))
    }

    fn quota_used(&self, user: &UserKey, day: u64) -> Result<u32, StoreError> {
        Ok(self
            .quota
            .get(quota_key(user, day).as_bytes())?
            .map(|v| be_u64(&v) as u32)
            .unwrap_or(0))
    }

    fn user(&self, key: &UserKey) -> Result<Option<UserProfile>, StoreError> {
        self.users
            .get(user_key(key).as_bytes())?
            .map(|bytes| decode(&bytes, || format!("user {key}")))
            .transpose()
    }

    fn put_user(&self, profile: &UserProfile) -> Result<(), StoreError> {
        self.users
            .insert(user_key(&profile.key).as_bytes(), encode(profile))?;
        self.db.flush()?;
        Ok(())
    }

    fn begin_boot(&self) -> Result<u64, StoreError> {
        let next = self
            .db
            .update_and_fetch(BOOT_EPOCH, |old| {
                let n = old.map(be_u64).unwrap_or(0) + 1;
                Some(n.to_be_bytes().to_vec())
            })?
            .map(|v| be_u64(&v))
            .unwrap_or(1);
        self.db.flush()?;
        Ok(next)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn put_input_image(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        if !self.images.contains_key(sha256)? {
            self.images.insert(sha256, bytes)?;
            self.db.flush()?;
        }
        Ok(())
    }

    fn input_image(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.images.get(sha256)?.map(|v| v.to_vec()))
    }

    fn put_remote_request(&self, request: &RemoteRequest) -> Result<(), StoreError> {
        self.remote
            .insert(request.job.0.to_be_bytes(), encode(request))?;
        // The only window in which a crash can make us pay twice is between fal's answer and
        // this flush; keep it as short as a disk write.
        self.db.flush()?;
        Ok(())
    }

    fn put_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        self.deliveries.insert(
            delivery_key(&delivery.user, delivery.job).as_bytes(),
            encode(delivery),
        )?;
        self.db.flush()?;
        Ok(())
    }

    fn remote_request(&self, job: JobId) -> Result<Option<RemoteRequest>, StoreError> {
        self.remote
            .get(job.0.to_be_bytes())?
            .map(|bytes| decode(&bytes, || format!("remote request of job {job}")))
            .transpose()
    }

    fn remove_remote_request(&self, job: JobId) -> Result<(), StoreError> {
        self.remote.remove(job.0.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    fn reserve_spend(
        &self,
        entry: &SpendEntry,
        caps: &SpendCaps,
    ) -> Result<Reservation, StoreError> {
        let open_key = open_spend_key(entry.job);
        let user_key = spend_total_key(entry.day, Some(&entry.user));
        let all_key = spend_total_key(entry.day, None);
        let mut record = entry.clone();
        record.state = SpendState::Reserved;
        let outcome = (&self.spend, &self.spend_index)
            .transaction(|(spend, index)| {
                if let Some(key) = index.get(open_key.as_bytes())? {
                    let existing = spend.get(&key)?.map(|bytes| {
                        decode::<SpendEntry>(&bytes, || format!("spend entry of job {}", entry.job))
                    });
                    match existing {
                        Some(Ok(existing)) => return Ok(Reservation::AlreadyReserved(existing)),
                        Some(Err(e)) => {
                            return Err(ConflictableTransactionError::Abort(e));
                        }
                        // A dangling pointer: treat the job as holding nothing.
                        None => {}
                    }
                }
                let read = |key: &str| -> Result<u64, ConflictableTransactionError<StoreError>> {
                    Ok(index.get(key.as_bytes())?.map(|v| be_u64(&v)).unwrap_or(0))
                };
                let (user_spent, all_spent) = (read(&user_key)?, read(&all_key)?);
                if let Some(refusal) = over_cap(record.micro_usd, user_spent, all_spent, caps) {
                    return Ok(refusal);
                }
                let seq = read(NEXT_SPEND)? + 1;
                index.insert(NEXT_SPEND.as_bytes(), &seq.to_be_bytes())?;
                index.insert(
                    user_key.as_bytes(),
                    &(user_spent + record.micro_usd).to_be_bytes(),
                )?;
                index.insert(
                    all_key.as_bytes(),
                    &(all_spent + record.micro_usd).to_be_bytes(),
                )?;
                spend.insert(&seq.to_be_bytes(), encode(&record))?;
                index.insert(open_key.as_bytes(), &seq.to_be_bytes())?;
                Ok(Reservation::Reserved)
            })
            .map_err(transaction_error)?;
        if outcome == Reservation::Reserved {
            self.db.flush()?;
        }
        Ok(outcome)
    }

    fn close_spend(
        &self,
        job: JobId,
        outcome: SpendState,
    ) -> Result<Option<SpendEntry>, StoreError> {
        let open_key = open_spend_key(job);
        let closed = (&self.spend, &self.spend_index)
            .transaction(|(spend, index)| {
                let Some(key) = index.remove(open_key.as_bytes())? else {
                    return Ok(None);
                };
                let Some(bytes) = spend.get(&key)? else {
                    return Ok(None);
                };
                let mut entry: SpendEntry = decode(&bytes, || format!("spend entry of job {job}"))
                    .map_err(ConflictableTransactionError::Abort)?;
                entry.state = outcome;
                spend.insert(&key, encode(&entry))?;
                if outcome == SpendState::Refunded {
                    for total in [
                        spend_total_key(entry.day, Some(&entry.user)),
                        spend_total_key(entry.day, None),
                    ] {
                        let old = index
                            .get(total.as_bytes())?
                            .map(|v| be_u64(&v))
                            .unwrap_or(0);
                        index.insert(
                            total.as_bytes(),
                            &old.saturating_sub(entry.micro_usd).to_be_bytes(),
                        )?;
                    }
                }
                Ok(Some(entry))
            })
            .map_err(transaction_error)?;
        self.db.flush()?;
        Ok(closed)
    }

    fn spent(&self, day: u64, user: Option<&UserKey>) -> Result<u64, StoreError> {
        Ok(self
            .spend_index
            .get(spend_total_key(day, user).as_bytes())?
            .map(|v| be_u64(&v))
            .unwrap_or(0))
    }

    fn spend_entries(&self) -> Result<Vec<SpendEntry>, StoreError> {
        self.spend
            .iter()
            .map(|entry| {
                let (key, value) = entry?;
                decode(&value, || format!("spend entry {}", be_u64(&key)))
            })
            .collect()
    }

    fn deliveries(&self, user: &UserKey, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries
            .scan_prefix(delivery_prefix(user).as_bytes())
            .rev()
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                decode(&value, || {
                    format!("delivery {}", String::from_utf8_lossy(&key))
                })
            })
            .collect()
    }
}

fn open_spend_key(job: JobId) -> String {
    format!("open/{:020}", job.0)
}

fn transaction_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

/// Reads a big-endian u64; keys and counters are written that way so they sort by number.
fn be_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[8 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    u64::from_be_bytes(buf)
}
