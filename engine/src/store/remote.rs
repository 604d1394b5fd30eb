//! Records of paid remote work: requests submitted to a remote queue (so a restart polls the
//! request it already paid for instead of submitting again) and the spend ledger (so no job
//! pays without first fitting the daily caps).

use loopsmith_protocol::{JobId, UserKey};
use serde::{Deserialize, Serialize};

/// A request a remote backend submitted for a job, stored (and flushed) before polling starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRequest {
    pub job: JobId,
    /// Backend name, e.g. `pika`.
    pub backend: String,
    /// The model endpoint it was submitted to, e.g. `fal-ai/pika/v2.2/text-to-video`.
    pub endpoint: String,
    pub request_id: String,
    /// The URLs the submit answer gave; they are used as given, never rebuilt.
    pub status_url: String,
    pub response_url: String,
    pub cancel_url: String,
    pub submitted_ms: u64,
}

/// Where a ledger entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpendState {
    /// Counted against the caps; the outcome of the paid call is not known yet.
    Reserved,
    /// The call was (or may have been) charged; stays counted.
    Settled,
    /// The call was not charged (it never started, or fal answered 5xx); no longer counted.
    Refunded,
}

/// One paid call's line in the ledger. Amounts are millionths of a US dollar, so sums are exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendEntry {
    pub job: JobId,
    pub user: UserKey,
    /// Days since the Unix epoch, UTC, of the reservation; settling or refunding keeps it.
    pub day: u64,
    pub micro_usd: u64,
    pub state: SpendState,
    /// What was bought, e.g. `pika text-to-video 720p 5s`.
    pub what: String,
}

/// The daily caps a reservation must fit, in millionths of a US dollar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendCaps {
    pub user_micro_usd: u64,
    pub global_micro_usd: u64,
}

/// What a reservation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// A new entry is counted.
    Reserved,
    /// The job already holds an open reservation (a restart resuming its request); nothing new
    /// was counted.
    AlreadyReserved(SpendEntry),
    /// Nothing was written: the user's cap would be passed.
    OverUserCap { spent: u64, cap: u64 },
    /// Nothing was written: the global cap would be passed.
    OverGlobalCap { spent: u64, cap: u64 },
}

pub(super) fn spend_total_key(day: u64, user: Option<&UserKey>) -> String {
    match user {
        Some(user) => format!("{day:010}/user/{}/{}", user.platform, user.id),
        None => format!("{day:010}/all"),
    }
}

/// Checks the caps; `None` when the amount fits.
pub(super) fn over_cap(
    amount: u64,
    user_spent: u64,
    global_spent: u64,
    caps: &SpendCaps,
) -> Option<Reservation> {
    if user_spent.saturating_add(amount) > caps.user_micro_usd {
        return Some(Reservation::OverUserCap {
            spent: user_spent,
            cap: caps.user_micro_usd,
        });
    }
    if global_spent.saturating_add(amount) > caps.global_micro_usd {
        return Some(Reservation::OverGlobalCap {
            spent: global_spent,
            cap: caps.global_micro_usd,
        });
    }
    None
}
