//! Fake of fal's queue API, storage upload and media host (see `shared/reference/fal-pika.md`),
//! as one real HTTP server on loopback.
//!
//! It speaks the documented wire format: submit answers `{status, request_id, status_url,
//! response_url, cancel_url, queue_position, gateway_request_id}` with an `x-fal-request-id`
//! header; status answers 202 while `IN_QUEUE`/`IN_PROGRESS` and 200 once `COMPLETED`, with
//! `queue_position` or `logs`; the result is `{"video": File}` or the model's error; cancel
//! answers `CANCELLATION_REQUESTED`, `ALREADY_COMPLETED` or `NOT_FOUND`. A test scripts it:
//! the walk every request takes through the queue, the outcome, faults to answer before the
//! normal answer on each route, and the files its media host serves. Every request is
//! recorded, and a test can wait for one instead of sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::{Running, serve};

mod chaos;
mod media;
mod wire;

use chaos::Dice;
pub use chaos::{Chaos, Injected};
pub use media::Media;
use media::serve_media;
use wire::{json_response, logs_wanted, merge, next_status, urls};

/// Which endpoint a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Submit,
    Status,
    /// The status stream (server-sent events).
    StatusStream,
    Result,
    Cancel,
    UploadInitiate,
    Upload,
    Media,
    Unknown,
}

/// One step of a request's walk through the queue; each status poll moves one step on, and
/// the last step repeats.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `IN_QUEUE` at this 0-based position.
    Queued(u64),
    /// `IN_PROGRESS`, adding these log lines.
    Running(Vec<String>),
    Completed,
}

/// What the result endpoint answers once the request is `COMPLETED`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `{"video": {"url": …}}` pointing at this media file on the fake's own media host (with
    /// `?request=<id>` so each download can be told apart).
    Video { media: String },
    /// `{"video": {"url": …}}` with this exact URL.
    VideoAt { url: String },
    /// The model's error: this status and body (e.g. 422 with `detail`), and `error` /
    /// `error_type` on the COMPLETED status.
    Error { status: u16, body: Value },
}

/// An answer given instead of the normal one.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Fault {
    pub fn new(status: u16, body: Value) -> Fault {
        Fault {
            status,
            headers: Vec::new(),
            body,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// 429 with `Retry-After: secs`.
    pub fn rate_limited(secs: u64) -> Fault {
        Fault::new(429, json!({"detail": "Too many requests"}))
            .header("retry-after", &secs.to_string())
    }

    /// 503 `runner_scheduling_failure`, with the error type header as fal sends it.
    pub fn unavailable() -> Fault {
        Fault::new(
            503,
            json!({"detail": "Runner scheduling failure", "error_type": "runner_scheduling_failure"}),
        )
        .header("x-fal-error-type", "runner_scheduling_failure")
    }

    /// 504 after the start timeout the client set: never to be retried.
    pub fn user_timeout() -> Fault {
        Fault::new(
            504,
            json!({"detail": "Request timed out", "error_type": "request_timeout"}),
        )
        .header("x-fal-request-timeout-type", "user")
        .header("x-fal-error-type", "request_timeout")
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub route: Route,
    pub method: String,
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// When it arrived (its answer follows at once, faults included).
    pub at: std::time::Instant,
    /// The fault [`FakeFal::set_chaos`] injected into its answer, if any.
    pub injected: Option<Injected>,
    /// For a submit the fake accepted (and fal would bill): the request id it created, even
    /// when the answer carrying it was then lost.
    pub accepted: Option<String>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Request {
    app: String,
    step: usize,
    logs: Vec<String>,
    walk: Vec<Step>,
    outcome: Outcome,
    cancelled: bool,
    /// A status poll has answered COMPLETED.
    completed: bool,
}

#[derive(Debug)]
struct Inner {
    key: String,
    walk: Vec<Step>,
    outcome: Outcome,
    faults: HashMap<Route, VecDeque<Fault>>,
    media: HashMap<String, Media>,
    requests: HashMap<String, Request>,
    next_id: u64,
    recorded: Vec<Recorded>,
    uploads: HashMap<String, (String, Bytes)>,
    /// Most status events one stream sends before going quiet; `None` for no limit.
    stream_limit: Option<usize>,
    dice: Option<Dice>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    changed: Notify,
}

/// The running fake; dropping it stops the server.
#[derive(Debug)]
pub struct FakeFal {
    pub server: Running,
    shared: Arc<Shared>,
}

impl FakeFal {
    /// Starts a fake that accepts `Authorization: Key {key}`. Requests walk queued (position
    /// 1, then 0), running with two log lines, completed; the outcome is the media file
    /// `result.mp4`, which a test must `put_media`.
    pub async fn start(key: &str) -> std::io::Result<FakeFal> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                key: key.to_string(),
                walk: vec![
                    Step::Queued(1),
                    Step::Queued(0),
                    Step::Running(vec!["Loading model".into()]),
                    Step::Running(vec!["Generating frames".into()]),
                    Step::Completed,
                ],
                outcome: Outcome::Video {
                    media: "result.mp4".into(),
                },
                faults: HashMap::new(),
                media: HashMap::new(),
                requests: HashMap::new(),
                next_id: 0,
                recorded: Vec::new(),
                uploads: HashMap::new(),
                stream_limit: None,
                dice: None,
            }),
            changed: Notify::new(),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = serve(router).await?;
        Ok(FakeFal { server, shared })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// Where the media host serves `name`.
    pub fn media_url(&self, name: &str) -> String {
        format!("{}/media/{name}", self.base_url())
    }

    /// The walk of requests submitted from now on.
    pub fn set_walk(&self, walk: Vec<Step>) {
        self.inner().walk = walk;
    }

    /// The outcome of requests submitted from now on.
    pub fn set_outcome(&self, outcome: Outcome) {
        self.inner().outcome = outcome;
    }

    /// Answers the next request on `route` with `fault` (faults queue in order).
    pub fn push_fault(&self, route: Route, fault: Fault) {
        self.inner()
            .faults
            .entry(route)
            .or_default()
            .push_back(fault);
    }

    /// Answers a share of requests with random faults from now on (`None` stops it). Faults
    /// queued with [`FakeFal::push_fault`] come first.
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        self.inner().dice = chaos.map(Dice::new);
    }

    /// Status streams send at most `events` status events, then go quiet without closing.
    pub fn limit_stream(&self, events: usize) {
        self.inner().stream_limit = Some(events);
    }

    pub fn put_media(&self, name: &str, media: Media) {
        self.inner().media.insert(name.to_string(), media);
    }

    /// Every request so far, in arrival order.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.inner().recorded.clone()
    }

    pub fn count(&self, route: Route) -> usize {
        self.inner()
            .recorded
            .iter()
            .filter(|r| r.route == route)
            .count()
    }

    /// Bytes uploaded through the storage API, by the file URL handed back.
    pub fn upload(&self, file_url: &str) -> Option<(String, Bytes)> {
        self.inner().uploads.get(file_url).cloned()
    }

    /// Whether request `id` was cancelled.
    pub fn cancelled(&self, id: &str) -> bool {
        self.inner().requests.get(id).is_some_and(|r| r.cancelled)
    }

    /// Waits (at most 10 s of real time) until `done` holds for the recorded requests.
    pub async fn wait_until(&self, done: impl Fn(&[Recorded]) -> bool) {
        let wait = async {
            loop {
                let changed = self.shared.changed.notified();
                if done(&self.inner().recorded) {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("the fake fal server saw the awaited requests within 10 s");
    }
}

fn route_of(method: &Method, segments: &[&str]) -> Route {
    match (method.as_str(), segments) {
        ("POST", ["storage", "upload", "initiate"]) => Route::UploadInitiate,
        ("PUT", ["upload", _]) => Route::Upload,
        ("GET", ["media", _]) => Route::Media,
        ("GET", [_, _, "requests", _, "status"]) => Route::Status,
        ("GET", [_, _, "requests", _, "status", "stream"]) => Route::StatusStream,
        ("GET", [_, _, "requests", _]) => Route::Result,
        ("PUT", [_, _, "requests", _, "cancel"]) => Route::Cancel,
        ("POST", [_, _, ..]) => Route::Submit,
        _ => Route::Unknown,
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let route = route_of(&method, &segments);
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let base = format!("http://{host}");
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let at = std::time::Instant::now();
    let response = {
        let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
        let needs_key = !matches!(route, Route::Media | Route::Upload);
        let expected = format!("Key {}", inner.key);
        let ids_before = inner.next_id;
        let mut injected = None;
        let response = if needs_key && authorization.as_deref() != Some(expected.as_str()) {
            json_response(401, json!({"detail": "Invalid API key"}), &[])
        } else if let Some(fault) = inner.faults.get_mut(&route).and_then(VecDeque::pop_front) {
            let mut extra: Vec<(String, String)> = fault.headers.clone();
            if matches!(
                route,
                Route::Status | Route::StatusStream | Route::Result | Route::Cancel
            ) && let Some(id) = segments.get(3)
            {
                extra.push(("x-fal-request-id".into(), id.to_string()));
            }
            json_response(fault.status, fault.body, &extra)
        } else if let Some(fault) = inner.dice.as_mut().and_then(|d| d.roll(route)) {
            injected = Some(fault);
            if fault.handled_first() {
                drop(answer(
                    &mut inner,
                    route,
                    &segments,
                    &base,
                    &uri,
                    body.clone(),
                ));
            }
            fault.response(route)
        } else {
            answer(&mut inner, route, &segments, &base, &uri, body.clone())
        };
        let accepted = (route == Route::Submit && inner.next_id != ids_before)
            .then(|| format!("req-{}", inner.next_id));
        inner.recorded.push(Recorded {
            route,
            method: method.to_string(),
            path: path.clone(),
            query: uri.query().unwrap_or("").to_string(),
            authorization: authorization.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body,
            at,
            injected,
            accepted,
        });
        response
    };
    shared.changed.notify_waiters();
    response
}

fn answer(
    inner: &mut Inner,
    route: Route,
    segments: &[&str],
    base: &str,
    uri: &Uri,
    body: Bytes,
) -> Response {
    match route {
        Route::Submit => {
            if serde_json::from_slice::<Value>(&body).is_err() {
                return json_response(
                    422,
                    json!({"detail": [{"loc": ["body"], "msg": "invalid JSON", "type": "value_error"}]}),
                    &[],
                );
            }
            inner.next_id += 1;
            let id = format!("req-{}", inner.next_id);
            let app = format!("{}/{}", segments[0], segments[1]);
            let walk = inner.walk.clone();
            let position = match walk.first() {
                Some(Step::Queued(p)) => *p,
                _ => 0,
            };
            inner.requests.insert(
                id.clone(),
                Request {
                    app: app.clone(),
                    step: 0,
                    logs: Vec::new(),
                    walk,
                    outcome: inner.outcome.clone(),
                    cancelled: false,
                    completed: false,
                },
            );
            let urls = urls(base, &app, &id);
            let mut answer = json!({
                "status": "IN_QUEUE",
                "request_id": id,
                "gateway_request_id": id,
                "queue_position": position,
            });
            merge(&mut answer, &urls);
            json_response(200, answer, &[("x-fal-request-id".into(), id)])
        }
        Route::Status => {
            let id = segments[3];
            let with_logs = logs_wanted(uri);
            let Some(request) = inner.requests.get_mut(id) else {
                return json_response(404, json!({"detail": "Request not found"}), &[]);
            };
            let (code, body) = next_status(request, base, id, with_logs, true);
            json_response(code, body, &[("x-fal-request-id".into(), id.to_string())])
        }
        Route::StatusStream => {
            let id = segments[3];
            let with_logs = logs_wanted(uri);
            let limit = inner.stream_limit;
            let Some(request) = inner.requests.get_mut(id) else {
                return json_response(404, json!({"detail": "Request not found"}), &[]);
            };
            // Events walk the queue like polls do; the stream closes after COMPLETED, or goes
            // quiet once the walk (or the scripted limit) runs out without it.
            let mut events = vec![": keep-alive\n\n".to_string()];
            let mut completed = false;
            while limit.is_none_or(|n| events.len() <= n) {
                let at_end = request.step + 1 >= request.walk.len();
                let (code, body) = next_status(request, base, id, with_logs, false);
                events.push(format!("data: {body}\n\n"));
                if code == 200 {
                    completed = true;
                    break;
                }
                if at_end {
                    break;
                }
            }
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                events.into_iter().map(|e| Ok(Bytes::from(e))).collect();
            let body = if completed {
                Body::from_stream(futures_util::stream::iter(chunks))
            } else {
                use futures_util::StreamExt;
                Body::from_stream(
                    futures_util::stream::iter(chunks).chain(futures_util::stream::pending()),
                )
            };
            let mut response = Response::new(body);
            response.headers_mut().insert(
                "content-type",
                HeaderValue::from_static("text/event-stream"),
            );
            response
        }
        Route::Result => {
            let id = segments[3];
            let rid = [("x-fal-request-id".to_string(), id.to_string())];
            let Some(request) = inner.requests.get(id) else {
                return json_response(404, json!({"detail": "Request not found"}), &rid);
            };
            if !request.completed {
                return json_response(400, json!({"detail": "Request is still in progress"}), &rid);
            }
            match &request.outcome {
                Outcome::Video { media } => json_response(
                    200,
                    json!({"video": {"url": format!("{base}/media/{media}?request={id}"), "content_type": "video/mp4",
                                     "file_name": "output.mp4", "file_size": null}}),
                    &rid,
                ),
                Outcome::VideoAt { url } => json_response(
                    200,
                    json!({"video": {"url": url, "content_type": "video/mp4", "file_name": "output.mp4"}}),
                    &rid,
                ),
                Outcome::Error { status, body } => json_response(*status, body.clone(), &rid),
            }
        }
        Route::Cancel => {
            let id = segments[3];
            match inner.requests.get_mut(id) {
                None => json_response(404, json!({"status": "NOT_FOUND"}), &[]),
                Some(request) if request.completed => {
                    json_response(400, json!({"status": "ALREADY_COMPLETED"}), &[])
                }
                Some(request) => {
                    request.cancelled = true;
                    json_response(202, json!({"status": "CANCELLATION_REQUESTED"}), &[])
                }
            }
        }
        Route::UploadInitiate => {
            let n = inner.uploads.len() + 1;
            let content_type = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["content_type"].as_str().map(str::to_string))
                .unwrap_or_default();
            let file_url = format!("{base}/media/upload-{n}");
            inner
                .uploads
                .insert(file_url.clone(), (content_type, Bytes::new()));
            json_response(
                200,
                json!({"upload_url": format!("{base}/upload/{n}"), "file_url": file_url}),
                &[],
            )
        }
        Route::Upload => {
            let file_url = format!("{base}/media/upload-{}", segments[1]);
            match inner.uploads.get_mut(&file_url) {
                Some(slot) => {
                    slot.1 = body;
                    StatusCode::OK.into_response()
                }
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
        Route::Media => serve_media(inner.media.get(segments[1]).cloned()),
        Route::Unknown => json_response(405, json!({"detail": "Method Not Allowed"}), &[]),
    }
}
