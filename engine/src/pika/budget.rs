//! Paying for Pika: the price table, and the spend ledger's reserve → settle | refund cycle.
//!
//! A job's estimated cost is reserved before its submit, so concurrent jobs cannot together
//! pass a cap; it is settled once fal may have charged (success, a model error, an unknown
//! outcome) and refunded when fal certainly did not (5xx answers and requests that never
//! started are not billed, per fal's billing rules).

use std::sync::Arc;

use loopsmith_protocol::{JobId, UserKey};

use super::error::PikaError;
use super::inputs::{PikaInput, Resolution};
use crate::store::{Reservation, SpendCaps, SpendEntry, SpendState, Store};

const MICROS: f64 = 1_000_000.0;

/// Prices in millionths of a US dollar per started 5 s of video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceTable {
    pub per_5s_720p: u64,
    pub per_5s_1080p: u64,
}

impl PriceTable {
    pub fn from_usd(per_5s_720p: f64, per_5s_1080p: f64) -> PriceTable {
        PriceTable {
            per_5s_720p: micros(per_5s_720p),
            per_5s_1080p: micros(per_5s_1080p),
        }
    }

    /// fal publishes 5 s prices only; longer clips are reckoned per started 5 s.
    pub fn estimate(&self, resolution: Resolution, seconds: u32) -> u64 {
        let per = match resolution {
            Resolution::P720 => self.per_5s_720p,
            Resolution::P1080 => self.per_5s_1080p,
        };
        per * u64::from(seconds.div_ceil(5).max(1))
    }
}

/// Dollars to millionths, rounding to the nearest; negative and non-finite amounts are 0.
pub fn micros(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * MICROS).round() as u64
    } else {
        0
    }
}

/// `$1.25`.
pub fn usd(micro_usd: u64) -> String {
    format!("${:.2}", micro_usd as f64 / MICROS)
}

/// The ledger as the Pika backend uses it.
#[derive(Debug, Clone)]
pub struct Budget {
    store: Arc<dyn Store>,
    pub prices: PriceTable,
    pub caps: SpendCaps,
}

impl Budget {
    pub fn new(store: Arc<dyn Store>, prices: PriceTable, caps: SpendCaps) -> Budget {
        Budget {
            store,
            prices,
            caps,
        }
    }

    /// Reserves the input's estimated cost for the job. A job that already holds a
    /// reservation (a restart resuming it) keeps that one. Over a cap, nothing is written and
    /// the error says which cap, in words.
    pub fn reserve(
        &self,
        job: JobId,
        user: &UserKey,
        input: &PikaInput,
        day: u64,
    ) -> Result<u64, PikaError> {
        let amount = self.prices.estimate(input.resolution(), input.seconds());
        let entry = SpendEntry {
            job,
            user: user.clone(),
            day,
            micro_usd: amount,
            state: SpendState::Reserved,
            what: format!(
                "pika {} {} {}s",
                input.endpoint().rsplit('/').next().unwrap_or("pika"),
                input.resolution().as_str(),
                input.seconds()
            ),
        };
        match self.store.reserve_spend(&entry, &self.caps)? {
            Reservation::Reserved => Ok(amount),
            Reservation::AlreadyReserved(existing) => Ok(existing.micro_usd),
            Reservation::OverUserCap { spent, cap } => Err(PikaError::OverBudget(format!(
                "you have used {} of your {} daily allowance for paid Pika renders, and this one costs {}",
                usd(spent),
                usd(cap),
                usd(amount)
            ))),
            Reservation::OverGlobalCap { spent, cap } => Err(PikaError::OverBudget(format!(
                "today's {} budget for paid Pika renders has {} left, and this one costs {}",
                usd(cap),
                usd(cap.saturating_sub(spent)),
                usd(amount)
            ))),
        }
    }

    pub fn settle(&self, job: JobId) -> Result<(), PikaError> {
        self.store.close_spend(job, SpendState::Settled)?;
        Ok(())
    }

    pub fn refund(&self, job: JobId) -> Result<(), PikaError> {
        self.store.close_spend(job, SpendState::Refunded)?;
        Ok(())
    }

    /// Why no paid render fits today at all, if so (the global cap cannot take the cheapest
    /// clip).
    pub fn exhausted(&self, day: u64) -> Option<String> {
        let cheapest = self.prices.per_5s_720p.min(self.prices.per_5s_1080p);
        let spent = self.store.spent(day, None).ok()?;
        (spent.saturating_add(cheapest) > self.caps.global_micro_usd).then(|| {
            format!(
                "today's {} budget for paid Pika renders is spent",
                usd(self.caps.global_micro_usd)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_follow_the_table_per_started_five_seconds() {
        let table = PriceTable::from_usd(0.20, 0.45);
        assert_eq!(table.estimate(Resolution::P720, 5), 200_000);
        assert_eq!(table.estimate(Resolution::P1080, 5), 450_000);
        assert_eq!(table.estimate(Resolution::P720, 10), 400_000);
        assert_eq!(table.estimate(Resolution::P720, 8), 400_000);
        assert_eq!(usd(1_250_000), "$1.25");
        assert_eq!(micros(-1.0), 0);
        assert_eq!(micros(f64::NAN), 0);
    }
}
