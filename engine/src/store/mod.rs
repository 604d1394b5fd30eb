//! Durable state: jobs, users and their styles, dedupe keys, daily quotas, the boot epoch.
//!
//! [`SledStore`] is the real one; [`MemoryStore`] has the same behaviour without a disk, for
//! tests. Writes that acknowledge something to a user (a new job, a finished job) are flushed
//! before they return: sled otherwise holds writes in process memory for up to 500 ms, and a
//! `kill -9` would lose them.

mod memory;
mod remote;
mod sled_store;

use std::fmt::Debug;

use std::collections::BTreeMap;

use loopsmith_protocol::{Job, JobId, UserKey, UserProfile};
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
pub use remote::{RemoteRequest, Reservation, SpendCaps, SpendEntry, SpendState};
pub use sled_store::SledStore;

/// A failure of the storage layer itself; users see a generic apology, the log the chain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {path}")]
    Open {
        path: String,
        #[source]
        source: sled::Error,
    },
    #[error("database operation failed")]
    Sled(#[from] sled::Error),
    #[error("a stored record is unreadable ({what})")]
    Corrupt {
        what: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A debit against a user's daily quota, made in the same atomic write as the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDebit {
    /// Days since the Unix epoch, UTC.
    pub day: u64,
    /// Most jobs the user may create that day.
    pub limit: u32,
}

/// What happened to an insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Insert {
    Inserted,
    /// A job with the same origin exists already; nothing was written.
    Duplicate(JobId),
    /// The daily quota is used up; nothing was written.
    OverQuota {
        used: u32,
    },
}

/// A finished sticker as a chat surface delivered it: the platform's own ids for the files it
/// sent, so it can be sent again, put in a pack or offered inline without another upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub job: JobId,
    pub user: UserKey,
    /// The prompt as the user typed it, for searching and listing.
    pub prompt: String,
    /// Platform file id by file kind (`webm_sticker`, `mp4`, …).
    pub files: BTreeMap<String, String>,
    pub created_ms: u64,
}

pub trait Store: Send + Sync + Debug {
    /// A fresh job id, never handed out before (gaps are allowed).
    fn next_job_id(&self) -> Result<JobId, StoreError>;

    /// Atomically: refuses a duplicate origin, debits the quota, writes the job and its origin.
    /// Durable when it returns `Inserted`.
    fn insert_job(&self, job: &Job, debit: Option<&QuotaDebit>) -> Result<Insert, StoreError>;

    /// Overwrites a job's record; `durable` waits for the disk.
    fn update_job(&self, job: &Job, durable: bool) -> Result<(), StoreError>;

    fn job(&self, id: JobId) -> Result<Option<Job>, StoreError>;

    /// Every job, oldest first.
    fn jobs(&self) -> Result<Vec<Job>, StoreError>;

    /// The job made for a platform event, if any.
    fn job_for_origin(&self, user: &UserKey, origin: &str) -> Result<Option<JobId>, StoreError>;

    /// Jobs the user has created on that day (days since the Unix epoch, UTC).
    fn quota_used(&self, user: &UserKey, day: u64) -> Result<u32, StoreError>;

    fn user(&self, key: &UserKey) -> Result<Option<UserProfile>, StoreError>;

    /// Writes a user's profile durably.
    fn put_user(&self, profile: &UserProfile) -> Result<(), StoreError>;

    /// Counts a new process start and returns its number (1 for the first start).
    fn begin_boot(&self) -> Result<u64, StoreError>;

    fn flush(&self) -> Result<(), StoreError>;

    /// Forgets a finished job: its record, its platform-event key and any remote request.
    /// Retention calls it for old jobs; a job that is not there is not an error.
    fn delete_job(&self, id: JobId) -> Result<(), StoreError>;

    /// Keeps a user's picture (image-to-video) under the hex SHA-256 of its bytes, durably; the
    /// same picture twice is stored once.
    fn put_input_image(&self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError>;

    /// A picture kept by [`Store::put_input_image`].
    fn input_image(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Records a submitted remote request, durably, before anyone polls it.
    fn put_remote_request(&self, request: &RemoteRequest) -> Result<(), StoreError>;

    /// The remote request recorded for a job, if its outcome is not settled yet.
    fn remote_request(&self, job: JobId) -> Result<Option<RemoteRequest>, StoreError>;

    /// Forgets a job's remote request once its outcome is known; durable.
    fn remove_remote_request(&self, job: JobId) -> Result<(), StoreError>;

    /// Atomically checks the entry's amount against the caps of its day and counts it, unless
    /// the job already holds an open reservation. Durable when it returns `Reserved`.
    fn reserve_spend(
        &self,
        entry: &SpendEntry,
        caps: &SpendCaps,
    ) -> Result<Reservation, StoreError>;

    /// Closes the job's open reservation as `Settled` (still counted) or `Refunded` (no longer
    /// counted) and returns it; `None` when the job holds none. Durable.
    fn close_spend(
        &self,
        job: JobId,
        outcome: SpendState,
    ) -> Result<Option<SpendEntry>, StoreError>;

    /// Millionths of a US dollar counted on a day, for one user or (with `None`) everyone.
    fn spent(&self, day: u64, user: Option<&UserKey>) -> Result<u64, StoreError>;

    /// Every ledger entry, oldest first.
    fn spend_entries(&self) -> Result<Vec<SpendEntry>, StoreError>;
    /// A user's most recent jobs, newest first. The default reads every job; a store with an
    /// index by user may do better.
    fn recent_jobs(&self, user: Option<&UserKey>, limit: usize) -> Result<Vec<Job>, StoreError> {
        let mut jobs = self.jobs()?;
        jobs.retain(|j| user.is_none_or(|u| &j.user == u));
        jobs.reverse();
        jobs.truncate(limit);
        Ok(jobs)
    }

    /// Records (or replaces) a delivery; durable when it returns.
    fn put_delivery(&self, delivery: &Delivery) -> Result<(), StoreError>;

    /// A user's deliveries, newest first, at most `limit`.
    fn deliveries(&self, user: &UserKey, limit: usize) -> Result<Vec<Delivery>, StoreError>;
}

/// Where a platform event's dedupe key lives: events are unique per platform, not per user,
/// but the user is included so one user can never collide with another's event id.
fn origin_key(user: &UserKey, origin: &str) -> String {
    format!("{}/{}/{}", user.platform, user.id, origin)
}

fn user_key(user: &UserKey) -> String {
    format!("{}/{}", user.platform, user.id)
}

/// Deliveries sort by job id within a user, so a prefix scan in reverse is newest first.
fn delivery_key(user: &UserKey, job: JobId) -> String {
    format!("{}{:020}", delivery_prefix(user), job.0)
}

fn delivery_prefix(user: &UserKey) -> String {
    format!("{}/{}/", user.platform, user.id)
}

fn quota_key(user: &UserKey, day: u64) -> String {
    format!("{day:010}/{}/{}", user.platform, user.id)
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Our records are plain data with string keys; serde_json cannot fail on them.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        what: what(),
        source,
    })
}

#[cfg(test)]
mod tests;
