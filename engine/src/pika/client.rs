//! fal's queue API over HTTP: submit, status, result, cancel, and storage upload.
//!
//! Every call goes through [`FalClient::call`], which applies the retry rules of
//! [`super::retry`]. The URLs a submit returns are used as given (fal's docs: never rebuild
//! them), but only when they are on the same origin as `pika.base_url`, since the key travels
//! with every call to them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::clock::Clock;
use super::error::{PikaError, error_detail};
use super::retry::{Call, RetryPolicy, Verdict, judge, user_timeout};

mod stream;

/// Largest JSON answer read from fal; anything bigger is not an answer of the queue API.
const MAX_JSON_BYTES: usize = 1 << 20;

/// Where a job stands, for waits: cancellation and an absolute deadline on the client's clock.
#[derive(Debug, Clone)]
pub struct JobLimits {
    pub cancel: CancellationToken,
    /// `clock.now()` past which the job is abandoned.
    pub deadline: Duration,
    /// The job's whole allowance, for messages.
    pub allowance: Duration,
}

/// What a submit returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub request_id: String,
    pub status_url: String,
    pub response_url: String,
    /// Empty when fal gave none; the request then cannot be cancelled.
    pub cancel_url: String,
    pub queue_position: Option<u64>,
}

/// One status answer.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueStatus {
    InQueue {
        position: Option<u64>,
    },
    /// `logs` are every log message so far (fal returns them all with `logs=1`).
    InProgress {
        logs: Vec<String>,
    },
    /// Finished, successfully or not; the result call says which.
    Completed {
        error: Option<String>,
    },
}

/// A file in a result.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FalFile {
    pub url: String,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// How a cancel went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// `OK` or `CANCELLATION_REQUESTED`.
    Accepted,
    AlreadyCompleted,
    NotFound,
}

/// An answer read in full (bounded).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

pub struct FalClient {
    http: reqwest::Client,
    key: SecretString,
    base: Url,
    storage: Url,
    start_timeout_secs: u64,
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for FalClient {
    // The key stays out, even redacted: there is nothing to learn from it in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FalClient")
            .field("base", &self.base.as_str())
            .field("storage", &self.storage.as_str())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl FalClient {
    pub fn new(
        key: SecretString,
        base_url: &str,
        storage_url: &str,
        start_timeout_secs: u64,
        policy: RetryPolicy,
        clock: Arc<dyn Clock>,
    ) -> Result<FalClient, PikaError> {
        let parse = |what: &str, url: &str| {
            Url::parse(url.trim_end_matches('/'))
                .map_err(|e| PikaError::Setup(format!("{what} `{url}` is not a URL: {e}")))
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            // A single call; polls are short, results and uploads small JSON.
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("loopsmith/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PikaError::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(FalClient {
            http,
            key,
            base: parse("pika.base_url", base_url)?,
            storage: parse("pika.storage_url", storage_url)?,
            start_timeout_secs,
            policy: RetryPolicy {
                max_attempts: policy.max_attempts.max(1),
                ..policy
            },
            clock,
        })
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn authorization(&self) -> HeaderValue {
        let mut value = HeaderValue::from_str(&format!("Key {}", self.key.expose_secret()))
            // A key with characters a header cannot carry is sent as nothing; fal answers 401.
            .unwrap_or_else(|_| HeaderValue::from_static("Key"));
        value.set_sensitive(true);
        value
    }

    fn authorized(&self, builder: RequestBuilder) -> RequestBuilder {
        builder
            .header(AUTHORIZATION, self.authorization())
            .header(ACCEPT, "application/json")
    }

    /// Submits `input` to the model endpoint (e.g. `fal-ai/pika/v2.2/text-to-video`).
    pub async fn submit(
        &self,
        endpoint: &str,
        input: &serde_json::Value,
        job: &JobLimits,
    ) -> Result<Submission, PikaError> {
        let url = format!("{}/{}", self.base.as_str().trim_end_matches('/'), endpoint);
        let body = serde_json::to_vec(input).unwrap_or_default();
        let (answer, attempts) = self
            .call(Call::Submit, job, || {
                let mut request = self
                    .authorized(self.http.post(&url))
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
                if self.start_timeout_secs > 0 {
                    request = request
                        .header("X-Fal-Request-Timeout", self.start_timeout_secs.to_string());
                }
                request
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.http_error(Call::Submit, &answer, attempts));
        }
        #[derive(Deserialize)]
        struct Body {
            request_id: String,
            status_url: String,
            response_url: String,
            #[serde(default)]
            cancel_url: Option<String>,
            #[serde(default)]
            queue_position: Option<u64>,
        }
        let body: Body = parse_json(Call::Submit, &answer.body)?;
        if body.request_id.trim().is_empty() {
            return Err(PikaError::BadAnswer {
                call: Call::Submit,
                problem: "the request id is empty".into(),
            });
        }
        let cancel_url = body.cancel_url.unwrap_or_default();
        self.same_origin("status URL", &body.status_url)?;
        self.same_origin("response URL", &body.response_url)?;
        if !cancel_url.is_empty() {
            self.same_origin("cancel URL", &cancel_url)?;
        }
        Ok(Submission {
            request_id: body.request_id,
            status_url: body.status_url,
            response_url: body.response_url,
            cancel_url,
            queue_position: body.queue_position,
        })
    }

    /// One status poll, with logs.
    pub async fn status(
        &self,
        status_url: &str,
        job: &JobLimits,
    ) -> Result<QueueStatus, PikaError> {
        let url = with_query(status_url, "logs", "1");
        let (answer, attempts) = self
            .call(Call::Status, job, || self.authorized(self.http.get(&url)))
            .await?;
        if !answer.status.is_success() {
            return Err(self.http_error(Call::Status, &answer, attempts));
        }
        parse_status(&answer.body)
    }

    /// The finished request's video. A model error (fal returns the model's own 422) becomes
    /// [`PikaError::Rejected`] with its detail.
    pub async fn result(&self, response_url: &str, job: &JobLimits) -> Result<FalFile, PikaError> {
        let (answer, attempts) = self
            .call(Call::Result, job, || {
                self.authorized(self.http.get(response_url))
            })
            .await?;
        if answer.status == StatusCode::UNPROCESSABLE_ENTITY {
            let (detail, _) = error_detail(&answer.body);
            return Err(PikaError::Rejected { detail });
        }
        if !answer.status.is_success() {
            return Err(self.http_error(Call::Result, &answer, attempts));
        }
        #[derive(Deserialize)]
        struct Body {
            video: FalFile,
        }
        let body: Body = parse_json(Call::Result, &answer.body)?;
        Ok(body.video)
    }

    /// Asks fal to drop the request. Used on cancellation and deadlines, so it gets a fresh,
    /// short allowance of its own rather than the job's (which may be spent).
    pub async fn cancel(&self, cancel_url: &str) -> Result<CancelOutcome, PikaError> {
        if cancel_url.is_empty() {
            return Ok(CancelOutcome::NotFound);
        }
        let job = JobLimits {
            cancel: CancellationToken::new(),
            deadline: self.clock.now() + Duration::from_secs(30),
            allowance: Duration::from_secs(30),
        };
        let (answer, attempts) = self
            .call(Call::Cancel, &job, || {
                self.authorized(self.http.put(cancel_url))
            })
            .await?;
        let status = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string));
        match (answer.status.as_u16(), status.as_deref()) {
            (_, Some("ALREADY_COMPLETED")) => Ok(CancelOutcome::AlreadyCompleted),
            (_, Some("NOT_FOUND")) | (404, _) => Ok(CancelOutcome::NotFound),
            (200..=299, _) => Ok(CancelOutcome::Accepted),
            _ => Err(self.http_error(Call::Cancel, &answer, attempts)),
        }
    }

    /// Uploads an image to fal storage and returns the URL a model input can use.
    pub async fn upload(
        &self,
        bytes: Bytes,
        content_type: &str,
        file_name: &str,
        job: &JobLimits,
    ) -> Result<String, PikaError> {
        let mut initiate = self.storage.clone();
        initiate.set_path(&format!(
            "{}/storage/upload/initiate",
            self.storage.path().trim_end_matches('/')
        ));
        initiate.set_query(Some("storage_type=fal-cdn-v3"));
        let body = serde_json::json!({"content_type": content_type, "file_name": file_name});
        let (answer, attempts) = self
            .call(Call::Upload, job, || {
                self.authorized(self.http.post(initiate.clone()))
                    .json(&body)
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.http_error(Call::Upload, &answer, attempts));
        }
        #[derive(Deserialize)]
        struct Body {
            upload_url: String,
            file_url: String,
        }
        let target: Body = parse_json(Call::Upload, &answer.body)?;
        // The upload URL is pre-signed: it needs no key, so none is sent to its host.
        let (answer, attempts) = self
            .call(Call::Upload, job, || {
                self.http
                    .put(&target.upload_url)
                    .header(CONTENT_TYPE, content_type)
                    .body(bytes.clone())
            })
            .await?;
        if !answer.status.is_success() {
            return Err(self.http_error(Call::Upload, &answer, attempts));
        }
        Ok(target.file_url)
    }

    /// Makes one call, retrying as the rules say. Returns the last answer (successful or not)
    /// with the number of attempts, or a transport error once attempts run out.
    async fn call(
        &self,
        call: Call,
        job: &JobLimits,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<(Answer, u32), PikaError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = tokio::select! {
                biased;
                _ = job.cancel.cancelled() => return Err(PikaError::Cancelled),
                sent = send(build()) => sent,
            };
            let retry_after = match sent {
                Ok(answer) => match judge(call, answer.status, &answer.headers) {
                    // A proxy's error page where JSON belongs: asking again is harmless for
                    // the read-only calls, and the next answer is usually the real one.
                    Verdict::Keep
                        if garbled(call, &answer) && attempt < self.policy.max_attempts =>
                    {
                        warn!(
                            call = call.describe(),
                            attempt, "fal's answer was not JSON; asking again"
                        );
                        None
                    }
                    Verdict::Keep => return Ok((answer, attempt)),
                    Verdict::Retry { retry_after } if attempt < self.policy.max_attempts => {
                        warn!(
                            call = call.describe(),
                            status = answer.status.as_u16(),
                            attempt,
                            "fal answered with a transient error; retrying"
                        );
                        retry_after
                    }
                    Verdict::Retry { .. } => return Ok((answer, attempt)),
                },
                // A submit whose answer was lost may have been accepted, and paid for: only
                // one that never reached fal (no connection) is sent again.
                Err(source)
                    if attempt < self.policy.max_attempts
                        && (call != Call::Submit || source.is_connect()) =>
                {
                    warn!(call = call.describe(), attempt, error = %source, "cannot reach fal; retrying");
                    None
                }
                Err(source) => {
                    return Err(PikaError::Transport {
                        call,
                        attempts: attempt,
                        source,
                    });
                }
            };
            let wait = self.policy.wait(attempt, retry_after);
            debug!(
                call = call.describe(),
                ?wait,
                "waiting before the next attempt"
            );
            self.wait(wait, job).await?;
        }
    }

    /// Sleeps on the client's clock unless the job is cancelled or the wait would pass its
    /// deadline.
    pub async fn wait(&self, wait: Duration, job: &JobLimits) -> Result<(), PikaError> {
        if self.clock.now() + wait > job.deadline {
            return Err(PikaError::Deadline(job.allowance));
        }
        tokio::select! {
            biased;
            _ = job.cancel.cancelled() => Err(PikaError::Cancelled),
            _ = self.clock.sleep(wait) => Ok(()),
        }
    }

    fn http_error(&self, call: Call, answer: &Answer, attempts: u32) -> PikaError {
        if user_timeout(answer.status, &answer.headers) {
            return PikaError::StartTimeout {
                secs: self.start_timeout_secs,
            };
        }
        let (detail, body_type) = error_detail(&answer.body);
        let header_type = answer
            .headers
            .get("x-fal-error-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        PikaError::Http {
            call,
            status: answer.status.as_u16(),
            attempts,
            error_type: header_type.or(body_type),
            detail,
        }
    }

    fn same_origin(&self, what: &'static str, url: &str) -> Result<(), PikaError> {
        let foreign = || PikaError::ForeignUrl {
            what,
            url: url.chars().take(200).collect(),
            base: self.base.origin().ascii_serialization(),
        };
        let parsed = Url::parse(url).map_err(|_| foreign())?;
        if parsed.origin() == self.base.origin() {
            Ok(())
        } else {
            Err(foreign())
        }
    }
}

/// A successful answer to a read-only call whose body is not JSON at all.
fn garbled(call: Call, answer: &Answer) -> bool {
    matches!(call, Call::Status | Call::Result)
        && answer.status.is_success()
        && serde_json::from_slice::<serde::de::IgnoredAny>(&answer.body).is_err()
}

async fn send(request: RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        // A queue API answer is small; the rest of an oversized body is not read.
        let room = MAX_JSON_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    Ok(Answer {
        status,
        headers,
        body: Bytes::from(body),
    })
}

/// A status body, from a poll or a stream event.
fn parse_status(body: &[u8]) -> Result<QueueStatus, PikaError> {
    #[derive(Deserialize)]
    struct Log {
        message: String,
    }
    #[derive(Deserialize)]
    struct Body {
        status: String,
        #[serde(default)]
        queue_position: Option<u64>,
        #[serde(default)]
        logs: Option<Vec<Log>>,
        #[serde(default)]
        error: Option<String>,
    }
    let body: Body = parse_json(Call::Status, body)?;
    match body.status.as_str() {
        "IN_QUEUE" => Ok(QueueStatus::InQueue {
            position: body.queue_position,
        }),
        "IN_PROGRESS" => Ok(QueueStatus::InProgress {
            logs: body.logs.into_iter().flatten().map(|l| l.message).collect(),
        }),
        "COMPLETED" => Ok(QueueStatus::Completed { error: body.error }),
        other => Err(PikaError::BadAnswer {
            call: Call::Status,
            problem: format!(
                "unknown status `{}`",
                other.chars().take(40).collect::<String>()
            ),
        }),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(call: Call, body: &[u8]) -> Result<T, PikaError> {
    serde_json::from_slice(body).map_err(|e| PikaError::BadAnswer {
        call,
        problem: e.to_string(),
    })
}

/// `url` with `name=value` set in its query, keeping whatever else fal put there.
fn with_query(url: &str, name: &str, value: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            let others: Vec<(String, String)> = parsed
                .query_pairs()
                .filter(|(k, _)| k != name)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            parsed
                .query_pairs_mut()
                .clear()
                .extend_pairs(others)
                .append_pair(name, value);
            parsed.to_string()
        }
        Err(_) => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logs_query_is_added_once() {
        assert_eq!(
            with_query(
                "https://queue.fal.run/fal-ai/pika/requests/r1/status",
                "logs",
                "1"
            ),
            "https://queue.fal.run/fal-ai/pika/requests/r1/status?logs=1"
        );
        assert_eq!(
            with_query("https://q/x/status?logs=0&a=b", "logs", "1"),
            "https://q/x/status?a=b&logs=1"
        );
    }
}
