//! Fake of the Telegram Bot API (see `shared/reference/telegram.md`, "Wire format a fake must
//! accept").
//!
//! A real HTTP server: `POST /bot<token>/<Method>` with JSON or multipart bodies (uploads as
//! `attach://<name>` parts), answers `{"ok":true,"result":…}` or a documented error. Tests
//! inject updates (served by `getUpdates` long polling with offsets), script failures (a 429
//! with `retry_after`, any `Bad Request`), and read back every call, waiting on a notification
//! rather than sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::Running;

mod methods;

pub use methods::valid_set_name;

/// Most stickers a regular set may hold (Bot API `addStickerToSet`).
pub const MAX_SET_STICKERS: usize = 120;
/// Video stickers larger than this are refused with `STICKER_VIDEO_BIG`.
pub const MAX_STICKER_BYTES: usize = 256 * 1024;
/// Longest a `getUpdates` call waits for an update, whatever timeout it asked for, so a test
/// that stops its bot never waits long on a poll.
const MAX_POLL: Duration = Duration::from_secs(10);

/// One request the fake received, after decoding.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method as the client spelled it, e.g. `SendSticker`.
    pub method: String,
    /// JSON fields, or multipart text parts (parsed as JSON where they are JSON, else strings).
    pub params: Map<String, Value>,
    /// Multipart file parts by part name.
    pub files: HashMap<String, Upload>,
    /// When the call arrived, for checking how calls are spaced.
    pub at: std::time::Instant,
}

impl Call {
    /// Whether this call is `method`, ignoring case as the Bot API does.
    pub fn is(&self, method: &str) -> bool {
        self.method.eq_ignore_ascii_case(method)
    }

    /// A text field, whether it came as a JSON string or number.
    pub fn text(&self, field: &str) -> Option<String> {
        match self.params.get(field)? {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The bytes a field refers to with `attach://<name>`.
    pub fn attached(&self, field: &str) -> Option<&Upload> {
        let name = self.text(field)?;
        self.files.get(name.strip_prefix("attach://")?)
    }
}

/// An uploaded file part.
#[derive(Debug, Clone)]
pub struct Upload {
    pub file_name: Option<String>,
    pub bytes: Bytes,
}

/// An answer scripted for the next call of a method.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// HTTP 429 with `parameters.retry_after`.
    RetryAfter(u32),
    /// HTTP 400 with `description: "Bad Request: <text>"`.
    BadRequest(String),
}

/// A sticker set as the fake keeps it.
#[derive(Debug, Clone)]
pub struct StickerSet {
    pub name: String,
    pub title: String,
    pub owner: i64,
    /// File ids, in order.
    pub stickers: Vec<String>,
}

/// The fake server's state; clone it freely, every clone is the same server.
#[derive(Clone)]
pub struct FakeTelegram {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeTelegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is left out on purpose: tests check that it appears nowhere.
        f.debug_struct("FakeTelegram")
            .field("bot_username", &self.shared.username)
            .finish_non_exhaustive()
    }
}

struct Shared {
    token: String,
    username: String,
    bot_id: i64,
    state: Mutex<Inner>,
    /// Woken on every call and every injected update.
    changed: Notify,
}

#[derive(Default)]
struct Inner {
    updates: VecDeque<Value>,
    next_update_id: i64,
    next_message_id: i64,
    next_file: u64,
    calls: Vec<Call>,
    files: HashMap<String, Bytes>,
    /// Text of each message the bot sent, to refuse edits that change nothing.
    texts: HashMap<(i64, i64), String>,
    sets: HashMap<String, StickerSet>,
    failures: HashMap<String, VecDeque<Failure>>,
}

impl FakeTelegram {
    /// A fake that accepts `token` and calls its bot `@username`.
    pub fn new(token: &str, username: &str) -> FakeTelegram {
        FakeTelegram {
            shared: Arc::new(Shared {
                token: token.to_string(),
                username: username.to_string(),
                bot_id: 100_000,
                state: Mutex::new(Inner {
                    next_update_id: 1,
                    next_message_id: 1,
                    ..Inner::default()
                }),
                changed: Notify::new(),
            }),
        }
    }

    /// Serves the fake on a loopback port; point the bot's API URL at `base_url()`.
    pub async fn serve(&self) -> std::io::Result<Running> {
        crate::serve(self.router()).await
    }

    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/{token}/{method}", post(handle))
            .route("/file/{token}/{*path}", get(download))
            .with_state(self.clone())
    }

    fn state(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues an update; `body` is the update without `update_id` (e.g. `{"message":{…}}`).
    /// Returns the update id it got.
    pub fn push_update(&self, mut body: Value) -> i64 {
        let id = {
            let mut state = self.state();
            let id = state.next_update_id;
            state.next_update_id += 1;
            if let Value::Object(map) = &mut body {
                map.insert("update_id".into(), json!(id));
            }
            state.updates.push_back(body);
            id
        };
        self.shared.changed.notify_waiters();
        id
    }

    /// Stores a file the bot can fetch with getFile (as if a user had uploaded it); returns its
    /// file id.
    pub fn put_file(&self, bytes: impl Into<Bytes>) -> String {
        let mut state = self.state();
        state.next_file += 1;
        let id = format!("user-file-{}", state.next_file);
        state.files.insert(id.clone(), bytes.into());
        id
    }

    /// A photo with a caption from user `from` in chat `chat`; `bytes` become the largest of
    /// the photo's sizes (as Telegram sends several), `size` is what the message claims.
    pub fn send_photo(
        &self,
        from: i64,
        chat: i64,
        caption: &str,
        bytes: impl Into<Bytes>,
        (width, height): (u32, u32),
    ) -> i64 {
        let bytes = bytes.into();
        let size = bytes.len();
        let big = self.put_file(bytes);
        let thumb = self.put_file(Bytes::from_static(b"thumbnail"));
        let message_id = self.next_message_id();
        let mut message = json!({
            "message_id": message_id,
            "date": 1_700_000_000,
            "chat": chat_json(chat, from),
            "from": user_json(from),
            "photo": [
                {"file_id": thumb, "file_unique_id": format!("u{thumb}"), "file_size": 9,
                 "width": (width / 10).max(1), "height": (height / 10).max(1)},
                {"file_id": big, "file_unique_id": format!("u{big}"), "file_size": size,
                 "width": width, "height": height},
            ],
        });
        if !caption.is_empty() {
            message["caption"] = json!(caption);
        }
        self.push_update(json!({ "message": message }))
    }

    /// A text message from user `from` in chat `chat` (private when they are equal). Returns
    /// the message's id (what the bot's replies point at).
    pub fn send_text(&self, from: i64, chat: i64, text: &str) -> i64 {
        let message_id = self.next_message_id();
        self.push_update(json!({
            "message": {
                "message_id": message_id,
                "date": 1_700_000_000,
                "chat": chat_json(chat, from),
                "from": user_json(from),
                "text": text,
            }
        }));
        message_id
    }

    /// A press of an inline keyboard button with `data` on message `message_id`.
    pub fn press(&self, from: i64, chat: i64, message_id: i64, data: &str) -> i64 {
        let id = format!("cb{}", self.next_message_id());
        self.push_update(json!({
            "callback_query": {
                "id": id,
                "from": user_json(from),
                "chat_instance": "ci",
                "data": data,
                "message": {
                    "message_id": message_id,
                    "date": 1_700_000_000,
                    "chat": chat_json(chat, from),
                    "from": self.bot_json(),
                    "text": "…",
                },
            }
        }))
    }

    /// An inline query `@bot <query>` from user `from`.
    pub fn inline_query(&self, from: i64, query: &str) -> i64 {
        let id = format!("iq{}", self.next_message_id());
        self.push_update(json!({
            "inline_query": {
                "id": id,
                "from": user_json(from),
                "query": query,
                "offset": "",
                "chat_type": "sender",
            }
        }))
    }

    /// Makes the next call of `method` fail with `failure` (queued per method, in order).
    pub fn fail_next(&self, method: &str, failure: Failure) {
        self.state()
            .failures
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back(failure);
    }

    /// Puts a sticker set in place, as if made earlier (for "name taken" and "set full").
    pub fn put_set(&self, set: StickerSet) {
        self.state().sets.insert(set.name.to_ascii_lowercase(), set);
    }

    pub fn sticker_set(&self, name: &str) -> Option<StickerSet> {
        self.state().sets.get(&name.to_ascii_lowercase()).cloned()
    }

    /// The bytes behind a file id the fake handed out.
    pub fn file(&self, file_id: &str) -> Option<Bytes> {
        self.state().files.get(file_id).cloned()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Calls of one method so far.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.state()
            .calls
            .iter()
            .filter(|c| c.is(method))
            .cloned()
            .collect()
    }

    /// Waits until `done` holds for the calls so far, at most `limit`; on timeout the error
    /// lists the calls received, for the test's failure message.
    pub async fn wait_for(
        &self,
        limit: Duration,
        mut done: impl FnMut(&[Call]) -> bool,
    ) -> Result<Vec<Call>, String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Register before checking, so a call landing in between still wakes us.
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let calls = self.calls();
            if done(&calls) {
                return Ok(calls);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let summary: Vec<String> = calls
                    .iter()
                    .map(|c| format!("{} {:?}", c.method, c.params))
                    .collect();
                return Err(format!(
                    "gave up after {limit:?}; calls so far:\n{}",
                    summary.join("\n")
                ));
            }
        }
    }

    /// Waits for the `n`-th call (1-based) of `method` and returns it.
    /// Waits until `done` holds, for as long as `progress` (a count over the calls) keeps
    /// growing: it gives up only after `stall` passes with no progress. For long workloads on
    /// a shared machine, where how long the whole takes says little but a stall says a lot.
    pub async fn wait_while_progressing(
        &self,
        stall: Duration,
        progress: impl Fn(&[Call]) -> usize,
        done: impl Fn(&[Call]) -> bool,
    ) -> Result<Vec<Call>, String> {
        loop {
            let before = progress(&self.calls());
            let calls = self
                .wait_for(stall, |calls| done(calls) || progress(calls) > before)
                .await
                .map_err(|e| format!("no progress for {stall:?}: {e}"))?;
            if done(&calls) {
                return Ok(calls);
            }
        }
    }

    pub async fn wait_for_nth(
        &self,
        method: &str,
        n: usize,
        limit: Duration,
    ) -> Result<Call, String> {
        let calls = self
            .wait_for(limit, |calls| {
                calls.iter().filter(|c| c.is(method)).count() >= n
            })
            .await?;
        Ok(calls
            .into_iter()
            .filter(|c| c.is(method))
            .nth(n - 1)
            .expect("counted above"))
    }

    fn next_message_id(&self) -> i64 {
        let mut state = self.state();
        state.next_message_id += 1;
        state.next_message_id
    }

    fn bot_json(&self) -> Value {
        json!({
            "id": self.shared.bot_id,
            "is_bot": true,
            "first_name": "Loopsmith",
            "username": self.shared.username,
        })
    }
}

fn user_json(id: i64) -> Value {
    json!({"id": id, "is_bot": false, "first_name": format!("User{id}"), "language_code": "en"})
}

fn chat_json(chat: i64, from: i64) -> Value {
    if chat == from {
        json!({"id": chat, "type": "private", "first_name": format!("User{from}")})
    } else {
        json!({"id": chat, "type": "supergroup", "title": "A group"})
    }
}

fn ok(result: Value) -> Response {
    (
        StatusCode::OK,
        axum::Json(json!({"ok": true, "result": result})),
    )
        .into_response()
}

fn error(code: u16, description: &str, retry_after: Option<u32>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(secs) = retry_after {
        body["parameters"] = json!({"retry_after": secs});
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}

/// A refusal as `Bad Request: <text>`, kept small until it becomes a response.
struct BadRequest(String);

impl BadRequest {
    fn new(what: &str) -> BadRequest {
        BadRequest(what.to_string())
    }

    fn into_response(self) -> Response {
        bad_request(&self.0)
    }
}

fn bad_request(what: &str) -> Response {
    error(400, &format!("Bad Request: {what}"), None)
}

/// `GET /file/bot<token>/<file_path>`: a file's bytes, as getFile's path names them.
async fn download(
    State(fake): State<FakeTelegram>,
    Path((token, path)): Path<(String, String)>,
) -> Response {
    if token.strip_prefix("bot") != Some(fake.shared.token.as_str()) {
        return error(401, "Unauthorized", None);
    }
    let id = path
        .strip_prefix("photos/")
        .and_then(|p| p.strip_suffix(".bin"))
        .unwrap_or_default();
    match fake.file(id) {
        Some(bytes) => bytes.into_response(),
        None => error(404, "Not Found", None),
    }
}

async fn handle(
    State(fake): State<FakeTelegram>,
    Path((token, method)): Path<(String, String)>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    if token.strip_prefix("bot") != Some(fake.shared.token.as_str()) {
        return error(401, "Unauthorized", None);
    }
    let call = match decode(method, &headers, request).await {
        Ok(call) => call,
        Err(why) => return bad_request(&why),
    };
    let key = call.method.to_ascii_lowercase();
    let failure = {
        let mut state = fake.state();
        state.calls.push(call.clone());
        state.failures.get_mut(&key).and_then(VecDeque::pop_front)
    };
    fake.shared.changed.notify_waiters();
    match failure {
        Some(Failure::RetryAfter(secs)) => {
            return error(
                429,
                &format!("Too Many Requests: retry after {secs}"),
                Some(secs),
            );
        }
        Some(Failure::BadRequest(what)) => return bad_request(&what),
        None => {}
    }
    if key == "getupdates" {
        return get_updates(&fake, &call).await;
    }
    fake.answer(&key, &call)
}

/// Reads a JSON or multipart body into a [`Call`].
async fn decode(method: String, headers: &HeaderMap, request: Request) -> Result<Call, String> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut call = Call {
        method,
        params: Map::new(),
        files: HashMap::new(),
        at: std::time::Instant::now(),
    };
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| format!("bad multipart body: {e}"))?;
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|e| format!("bad multipart body: {e}"))?
        {
            let name = field.name().unwrap_or_default().to_string();
            let file_name = field.file_name().map(str::to_string);
            let bytes = field
                .bytes()
                .await
                .map_err(|e| format!("bad multipart part {name}: {e}"))?;
            // teloxide sends uploads with a filename (possibly empty) and text fields without.
            if file_name.is_some() {
                call.files.insert(name, Upload { file_name, bytes });
            } else {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let value = match serde_json::from_str::<Value>(&text) {
                    Ok(
                        v
                        @ (Value::Array(_) | Value::Object(_) | Value::Number(_) | Value::Bool(_)),
                    ) => v,
                    _ => Value::String(text),
                };
                call.params.insert(name, value);
            }
        }
    } else {
        let body = axum::body::to_bytes(request.into_body(), 64 * 1024 * 1024)
            .await
            .map_err(|e| format!("unreadable body: {e}"))?;
        if !body.is_empty() {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) => call.params = map,
                Ok(_) => return Err("the body must be a JSON object".into()),
                Err(e) => return Err(format!("can't parse JSON: {e}")),
            }
        }
    }
    Ok(call)
}

async fn get_updates(fake: &FakeTelegram, call: &Call) -> Response {
    let offset = call
        .params
        .get("offset")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let limit = call
        .params
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 100) as usize;
    let timeout = call
        .params
        .get("timeout")
        .and_then(Value::as_u64)
        .map(Duration::from_secs)
        .unwrap_or_default()
        .min(MAX_POLL);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = fake.shared.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut state = fake.state();
            // An offset confirms every update before it; they are never served again.
            while state
                .updates
                .front()
                .and_then(|u| u["update_id"].as_i64())
                .is_some_and(|id| id < offset)
            {
                state.updates.pop_front();
            }
            if !state.updates.is_empty() {
                let batch: Vec<Value> = state.updates.iter().take(limit).cloned().collect();
                return ok(Value::Array(batch));
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}
