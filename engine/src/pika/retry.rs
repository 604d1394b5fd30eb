//! When to try an HTTP call to fal again, and how long to wait first.
//!
//! The rules follow fal's own clients (shared/reference/fal-pika.md §6): transport errors and
//! 408, 429, 500, 502, 503 and 504 are retried with capped full-jitter exponential backoff;
//! a `Retry-After` header, when present, is waited out instead; a 504 carrying
//! `X-Fal-Request-Timeout-Type: user` is final (our own start timeout expired); and a submit is
//! never repeated once fal has answered with an `x-fal-request-id`, since that request exists
//! and may be billed.

use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Attempts and waits for one HTTP call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub max_attempts: u32,
    /// Ceiling of the first backoff; doubles each retry.
    pub base: Duration,
    /// Longest backoff, and longest `Retry-After` honoured.
    pub cap: Duration,
}

impl RetryPolicy {
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(500),
        cap: Duration::from_secs(30),
    };

    /// The wait before retry number `retry` (1 for the first retry): the server's
    /// `Retry-After` when it gave one (at most `cap`), otherwise a uniformly random wait in
    /// `[0, min(cap, base * 2^(retry-1))]` ("full jitter"), which spreads clients that failed
    /// together.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.cap);
        }
        let ceiling = self.ceiling(retry);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=millis))
    }

    /// The largest backoff retry number `retry` may wait without a `Retry-After`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(20);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::DEFAULT
    }
}

/// Which call is being made; the rules differ a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Submit,
    Status,
    Result,
    Cancel,
    Upload,
}

impl Call {
    pub fn describe(self) -> &'static str {
        match self {
            Call::Submit => "submitting the request to fal",
            Call::Status => "checking the request's status at fal",
            Call::Result => "fetching the result from fal",
            Call::Cancel => "cancelling the request at fal",
            Call::Upload => "uploading an image to fal storage",
        }
    }
}

/// What to do with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep this answer (success, or a final error the caller interprets).
    Keep,
    /// Try again after the policy's wait; `retry_after` is the server's hint.
    Retry { retry_after: Option<Duration> },
}

/// Whether an HTTP status may succeed if the same call is made again.
pub fn transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether fal says the start timeout we set expired: final, never retried.
pub fn user_timeout(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::GATEWAY_TIMEOUT
        && headers
            .get("x-fal-request-timeout-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("user"))
}

/// Whether fal created a request for this call (so repeating a submit would pay twice).
pub fn has_request_id(headers: &HeaderMap) -> bool {
    headers.contains_key("x-fal-request-id")
}

/// Judges one HTTP answer to `call`.
pub fn judge(call: Call, status: StatusCode, headers: &HeaderMap) -> Verdict {
    if status.is_success() || !transient(status) || user_timeout(status, headers) {
        return Verdict::Keep;
    }
    if call == Call::Submit && has_request_id(headers) {
        return Verdict::Keep;
    }
    Verdict::Retry {
        retry_after: retry_after(headers),
    }
}

/// `Retry-After` as delta-seconds (fractions accepted). The HTTP-date form is not read: fal
/// sends seconds, and a date would need a clock we trust to agree with the server's; such an
/// answer falls back to ordinary backoff.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn transient_answers_are_retried_and_final_ones_kept() {
        let none = HeaderMap::new();
        for code in [408, 429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(code).expect("code");
            assert!(
                matches!(judge(Call::Status, status, &none), Verdict::Retry { .. }),
                "{code}"
            );
        }
        for code in [200, 202, 400, 401, 403, 404, 405, 422, 501] {
            let status = StatusCode::from_u16(code).expect("code");
            assert_eq!(judge(Call::Status, status, &none), Verdict::Keep, "{code}");
        }
    }

    #[test]
    fn a_user_start_timeout_is_never_retried() {
        let h = headers(&[("x-fal-request-timeout-type", "user")]);
        assert_eq!(
            judge(Call::Status, StatusCode::GATEWAY_TIMEOUT, &h),
            Verdict::Keep
        );
        let other = headers(&[("x-fal-request-timeout-type", "infrastructure")]);
        assert!(matches!(
            judge(Call::Status, StatusCode::GATEWAY_TIMEOUT, &other),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn a_submit_that_created_a_request_is_never_repeated() {
        let with_id = headers(&[("x-fal-request-id", "abc"), ("retry-after", "2")]);
        assert_eq!(
            judge(Call::Submit, StatusCode::SERVICE_UNAVAILABLE, &with_id),
            Verdict::Keep
        );
        // The same answer to a status poll is retried: polling twice costs nothing.
        assert_eq!(
            judge(Call::Status, StatusCode::SERVICE_UNAVAILABLE, &with_id),
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(2))
            }
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_ignores_dates_and_junk() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", " 0.5 ")])),
            Some(Duration::from_millis(500))
        );
        for junk in ["Wed, 21 Oct 2015 07:28:00 GMT", "-1", "soon", "NaN", "inf"] {
            let mut map = HeaderMap::new();
            map.insert("retry-after", HeaderValue::from_str(junk).expect("ascii"));
            assert_eq!(retry_after(&map), None, "{junk}");
        }
        let policy = RetryPolicy::DEFAULT;
        assert_eq!(
            policy.wait(1, Some(Duration::from_secs(3600))),
            policy.cap,
            "a huge Retry-After is capped"
        );
    }

    proptest! {
        #[test]
        fn every_backoff_is_within_full_jitter_bounds(retry in 1u32..40, base_ms in 1u64..5_000, cap_ms in 1u64..120_000) {
            let policy = RetryPolicy {
                max_attempts: 10,
                base: Duration::from_millis(base_ms),
                cap: Duration::from_millis(cap_ms),
            };
            let wait = policy.wait(retry, None);
            let bound = Duration::from_millis(base_ms.saturating_mul(1u64 << (retry - 1).min(20)).min(cap_ms));
            prop_assert!(wait <= bound, "{wait:?} > {bound:?}");
            prop_assert_eq!(policy.ceiling(retry), bound);
        }
    }
}
