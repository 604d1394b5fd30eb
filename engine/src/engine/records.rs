//! What the chat surfaces and the console read and write about users besides jobs: profiles
//! and styles, bans, paid spend, history, deliveries and quota use. Each call runs on the
//! store off the async threads.

use loopsmith_protocol::{Job, UserKey, UserProfile, UserStyle};

use super::{DAY_MS, Engine, now_ms};
use crate::Error;
use crate::store::Delivery;

impl Engine {
    /// A user's profile; a user never seen before gets a fresh one.
    pub async fn user(&self, key: &UserKey) -> Result<UserProfile, Error> {
        let k = key.clone();
        Ok(self
            .on_store(move |s| s.user(&k))
            .await?
            .unwrap_or_else(|| UserProfile::new(key.clone())))
    }

    /// Checks and saves a user's style.
    pub async fn set_style(&self, key: &UserKey, style: UserStyle) -> Result<(), Error> {
        self.inner.styles.check_user_style(&style)?;
        let mut profile = self.user(key).await?;
        profile.style = style;
        self.on_store(move |s| s.put_user(&profile)).await
    }

    /// Paid spend today (UTC) against the cap: `None` when no paid backend is enabled.
    /// Returns (spent by everyone, spent by `user`, cap), in US dollars.
    pub async fn paid_spend_today(&self, user: &UserKey) -> Result<Option<(f64, f64, f64)>, Error> {
        let Some(cap) = self.inner.paid_cap_usd else {
            return Ok(None);
        };
        let day = now_ms() / 86_400_000;
        let user = user.clone();
        let (all, mine) = self
            .on_store(move |s| Ok((s.spent(day, None)?, s.spent(day, Some(&user))?)))
            .await?;
        Ok(Some((all as f64 / 1e6, mine as f64 / 1e6, cap)))
    }

    /// Recent jobs, newest first: one user's, or everyone's when `user` is `None`.
    pub async fn recent_jobs(
        &self,
        user: Option<&UserKey>,
        limit: usize,
    ) -> Result<Vec<Job>, Error> {
        let user = user.cloned();
        self.on_store(move |s| s.recent_jobs(user.as_ref(), limit))
            .await
    }

    /// Remembers how a surface delivered a job's files (their platform file ids).
    pub async fn put_delivery(&self, delivery: Delivery) -> Result<(), Error> {
        self.on_store(move |s| s.put_delivery(&delivery)).await
    }

    /// A user's deliveries, newest first.
    pub async fn deliveries(&self, user: &UserKey, limit: usize) -> Result<Vec<Delivery>, Error> {
        let user = user.clone();
        self.on_store(move |s| s.deliveries(&user, limit)).await
    }

    pub async fn set_banned(&self, key: &UserKey, banned: bool) -> Result<(), Error> {
        let mut profile = self.user(key).await?;
        profile.banned = banned;
        self.on_store(move |s| s.put_user(&profile)).await
    }

    /// Every stored job, oldest first: the operator console's history.
    pub async fn jobs(&self) -> Result<Vec<Job>, Error> {
        self.on_store(|s| s.jobs()).await
    }

    /// Jobs the user has created today (UTC), counted against `limits.daily_quota`.
    pub async fn quota_used_today(&self, key: &UserKey) -> Result<u32, Error> {
        let k = key.clone();
        let day = now_ms() / DAY_MS;
        self.on_store(move |s| s.quota_used(&k, day)).await
    }
}
