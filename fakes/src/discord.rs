//! Fake of Discord's REST API and gateway, as much of them as serenity 0.12 uses for an
//! interactions bot (see `shared/reference/discord.md`, "Testing serenity without Discord").
//!
//! Two real servers on loopback: the REST API under `/api/v10` (point `discord.proxy_url` at
//! [`Servers::rest_url`]; serenity honours a proxy only with its ratelimiter disabled) and a
//! WebSocket gateway, whose address the REST API hands out from `GET /gateway` and
//! `GET /gateway/bot`, as Discord does. The gateway speaks HELLO → IDENTIFY → READY, acks
//! heartbeats, and delivers the `INTERACTION_CREATE` events a test injects. Tests script
//! failures (any JSON error code) and read back every REST call, waiting on a notification
//! rather than sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, broadcast};

use crate::Running;

mod gateway;
mod rest;
mod wire;

pub use wire::{AttachmentMeta, CHANNEL_ID, CommandOption, Member};

/// The bot's application id and user id (Discord uses the same snowflake for both).
pub const APPLICATION_ID: u64 = 111_111_111_111_111_111;
/// Stickers a guild without Boosts may hold.
pub const STICKER_SLOTS: usize = 5;
/// Discord's limits for a guild sticker file.
pub const STICKER_MAX_BYTES: usize = 512 * 1024;
pub const STICKER_SIDE: u32 = 320;
/// The permission a member (and the bot) needs to create a guild sticker.
pub const CREATE_GUILD_EXPRESSIONS: u64 = 1 << 43;
/// Every permission, as an administrator has them in a channel.
pub const ALL_PERMISSIONS: u64 = (1 << 50) - 1;

/// One REST request the fake received, after decoding.
#[derive(Debug, Clone)]
pub struct Call {
    /// `GET`, `POST`, `PATCH`, `PUT`, `DELETE`.
    pub method: String,
    /// The path after `/api/v10`, e.g. `/interactions/1/abc/callback`.
    pub path: String,
    /// The JSON body, or a multipart body's `payload_json` part, or its text fields.
    pub body: Value,
    /// Multipart file parts, in order.
    pub files: Vec<Upload>,
    /// When the call arrived, for checking how calls are spaced.
    pub at: std::time::Instant,
}

impl Call {
    /// Whether this is `method` on a path that starts with `prefix` and ends with `suffix`.
    pub fn is(&self, method: &str, prefix: &str, suffix: &str) -> bool {
        self.method == method && self.path.starts_with(prefix) && self.path.ends_with(suffix)
    }

    /// The interaction token in an interaction or webhook path, if this call has one.
    pub fn interaction_token(&self) -> Option<&str> {
        let parts: Vec<&str> = self.path.split('/').collect();
        match parts.as_slice() {
            ["", "interactions", _, token, "callback"] => Some(token),
            ["", "webhooks", _, token, ..] => Some(token),
            _ => None,
        }
    }

    /// The `content` the call sets, if any.
    pub fn content(&self) -> Option<&str> {
        self.body.get("content").and_then(Value::as_str)
    }

    /// Every button's `custom_id` in the call's components (of a message, or of an
    /// interaction callback's `data`).
    pub fn custom_ids(&self) -> Vec<String> {
        let components = match self.body.get("components") {
            Some(components) => components,
            None => &self.body["data"]["components"],
        };
        components
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
            .filter_map(|b| b["custom_id"].as_str().map(str::to_string))
            .collect()
    }
}

/// An uploaded file part.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The part's name: `files[0]` for messages, `file` for stickers.
    pub part: String,
    pub file_name: Option<String>,
    pub bytes: Bytes,
}

/// A sticker the fake keeps for a guild.
#[derive(Debug, Clone)]
pub struct Sticker {
    pub id: u64,
    pub name: String,
    pub tags: String,
    pub description: String,
    pub file_name: String,
    pub bytes: Bytes,
}

/// An error scripted for the next call whose path contains a given text.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// HTTP status, e.g. 400, 403, 429.
    pub status: u16,
    /// Discord's JSON error code, e.g. 30039 (maximum number of stickers reached).
    pub code: u32,
    pub message: String,
}

/// Addresses of a running fake; dropping it stops both servers.
#[derive(Debug)]
pub struct Servers {
    pub rest: Running,
    pub gateway: Running,
}

impl Servers {
    /// What `discord.proxy_url` should be.
    pub fn rest_url(&self) -> String {
        self.rest.base_url()
    }
}

/// The fake's state; clone it freely, every clone is the same fake.
#[derive(Clone)]
pub struct FakeDiscord {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeDiscord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is left out on purpose: tests check that it appears nowhere.
        f.debug_struct("FakeDiscord").finish_non_exhaustive()
    }
}

struct Shared {
    token: String,
    state: Mutex<Inner>,
    /// Woken on every REST call and gateway event.
    changed: Notify,
    /// Dispatches for connected gateway sessions: (event name, data).
    events: broadcast::Sender<(String, Value)>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    calls: Vec<Call>,
    /// Gateway opcodes received, in order (2 = IDENTIFY, 1 = heartbeat).
    gateway_ops: Vec<u64>,
    /// Sessions identified (or resumed) and taking events now.
    live: u32,
    /// Sessions that got READY or RESUMED so far.
    sessions: u64,
    gateway_url: String,
    /// The text of the original response (and follow-ups) per interaction token.
    messages: HashMap<String, Value>,
    stickers: HashMap<u64, Vec<Sticker>>,
    /// Per-guild permissions of the bot, for the REST side's own check.
    bot_permissions: HashMap<u64, u64>,
    failures: VecDeque<(String, Failure)>,
    /// Files served at `/attachments/<id>/<name>`, for interactions that carry one.
    attachments: HashMap<String, Bytes>,
    /// The application's public key, as `GET /oauth2/applications/@me` reports it.
    verify_key: String,
    /// Interaction tokens whose webhook no longer works (Discord's 15 minutes are up).
    expired: std::collections::HashSet<String>,
}

impl FakeDiscord {
    /// A fake that accepts `token` (sent as `Authorization: Bot <token>`).
    pub fn new(token: &str) -> FakeDiscord {
        let (events, _) = broadcast::channel(64);
        FakeDiscord {
            shared: Arc::new(Shared {
                token: token.to_string(),
                state: Mutex::new(Inner {
                    next_id: 900_000_000_000_000_000,
                    ..Inner::default()
                }),
                changed: Notify::new(),
                events,
            }),
        }
    }

    /// Serves the REST API and the gateway on loopback ports.
    pub async fn serve(&self) -> std::io::Result<Servers> {
        let gateway = gateway::serve(self.clone()).await?;
        self.state().gateway_url = format!("ws://{}", gateway.addr);
        let rest = crate::serve(rest::router(self.clone())).await?;
        Ok(Servers { rest, gateway })
    }

    fn state(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_id(&self) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        state.next_id
    }

    fn changed(&self) {
        self.shared.changed.notify_waiters();
    }

    /// Sets what the bot may do in `guild`; without it the bot may do everything.
    pub fn set_bot_permissions(&self, guild: u64, permissions: u64) {
        self.state().bot_permissions.insert(guild, permissions);
    }

    /// Puts `count` stickers in `guild`, as if made earlier (for "slots full").
    pub fn fill_stickers(&self, guild: u64, count: usize) {
        let stickers: Vec<Sticker> = (0..count)
            .map(|i| Sticker {
                id: self.next_id(),
                name: format!("old {i}"),
                tags: "old".into(),
                description: String::new(),
                file_name: "old.png".into(),
                bytes: Bytes::new(),
            })
            .collect();
        self.state()
            .stickers
            .entry(guild)
            .or_default()
            .extend(stickers);
    }

    /// The stickers of `guild`.
    pub fn stickers(&self, guild: u64) -> Vec<Sticker> {
        self.state()
            .stickers
            .get(&guild)
            .cloned()
            .unwrap_or_default()
    }

    /// Makes the next call whose path contains `path_part` fail (queued in order).
    pub fn fail_next(&self, path_part: &str, failure: Failure) {
        self.state()
            .failures
            .push_back((path_part.to_string(), failure));
    }

    /// Serves `bytes` as a Discord CDN attachment; returns its URL.
    pub fn host_attachment(&self, rest_url: &str, name: &str, bytes: Bytes) -> String {
        let key = format!("{}/{name}", self.next_id());
        self.state().attachments.insert(key.clone(), bytes);
        format!("{rest_url}/attachments/{key}")
    }

    /// Makes the webhook of interaction `token` refuse every call with 401 "Invalid Webhook
    /// Token", as after Discord's 15 minutes; its first response callback still works.
    pub fn expire_token(&self, token: &str) {
        self.state().expired.insert(token.to_string());
    }

    /// Sets the public key the application reports (hex), for the interactions endpoint.
    pub fn set_verify_key(&self, hex: &str) {
        self.state().verify_key = hex.to_string();
    }

    /// Whether a gateway session has identified and got READY.
    pub fn ready(&self) -> bool {
        self.state().live > 0
    }

    /// Sessions that got READY or RESUMED so far.
    pub fn sessions(&self) -> u64 {
        self.state().sessions
    }

    /// Closes every gateway session with code 4000, after which a client resumes.
    pub fn disconnect(&self) {
        let _ = self
            .shared
            .events
            .send((gateway::CLOSE.to_string(), Value::Null));
    }

    /// Waits until more than `seen` sessions have got READY or RESUMED.
    pub async fn wait_sessions(&self, seen: u64, limit: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.sessions() > seen {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(format!(
                    "no new gateway session within {limit:?}; ops seen: {:?}",
                    self.gateway_ops()
                ));
            }
        }
    }

    /// Gateway opcodes the bot sent so far (2 = IDENTIFY, 1 = heartbeat).
    pub fn gateway_ops(&self) -> Vec<u64> {
        self.state().gateway_ops.clone()
    }

    /// Sends a slash command `/name` with `options`, from `member` in `guild` (or, with
    /// `guild == 0`, in a DM). Returns the interaction's token, which every answer to it uses.
    pub fn command(
        &self,
        guild: u64,
        member: &Member,
        name: &str,
        options: &[CommandOption],
    ) -> String {
        self.interaction(guild, member, 2, wire::command_data(name, options), None)
    }

    /// Sends autocomplete for `/name`, with `focused` the option being typed.
    pub fn autocomplete(
        &self,
        guild: u64,
        member: &Member,
        name: &str,
        options: &[CommandOption],
    ) -> String {
        self.interaction(guild, member, 4, wire::command_data(name, options), None)
    }

    /// A press of the button `custom_id` under the message the interaction `on_token` got
    /// as its original response. Returns the press's own interaction token.
    pub fn press(&self, guild: u64, member: &Member, on_token: &str, custom_id: &str) -> String {
        // Read in its own statement: the lock must be released before `next_id` takes it.
        let stored = self.state().messages.get(on_token).cloned();
        let message = match stored {
            Some(message) => message,
            None => wire::message(self.next_id(), "", &[], &json!([])),
        };
        let data = json!({"custom_id": custom_id, "component_type": 2});
        self.interaction(guild, member, 3, data, Some(message))
    }

    /// A slash command as Discord would POST it to an interactions endpoint, and its token;
    /// nothing is sent (the test signs and posts it).
    pub fn command_payload(
        &self,
        guild: u64,
        member: &Member,
        name: &str,
        options: &[CommandOption],
    ) -> (Value, String) {
        self.payload(guild, member, 2, wire::command_data(name, options), None)
    }

    /// A PING as Discord sends it when the endpoint URL is saved.
    pub fn ping_payload(&self) -> Value {
        let id = self.next_id();
        json!({
            "id": id.to_string(),
            "application_id": APPLICATION_ID.to_string(),
            "type": 1,
            "token": format!("itoken-{id}"),
            "version": 1,
        })
    }

    fn payload(
        &self,
        guild: u64,
        member: &Member,
        kind: u8,
        data: Value,
        message: Option<Value>,
    ) -> (Value, String) {
        let id = self.next_id();
        let token = format!("itoken-{id}");
        let payload = wire::interaction(id, &token, guild, member, kind, data, message);
        (payload, token)
    }

    fn interaction(
        &self,
        guild: u64,
        member: &Member,
        kind: u8,
        data: Value,
        message: Option<Value>,
    ) -> String {
        let (payload, token) = self.payload(guild, member, kind, data, message);
        self.dispatch(payload);
        token
    }

    /// Sends an interaction (e.g. from [`FakeDiscord::command_payload`]) as
    /// `INTERACTION_CREATE` to the sessions that are READY (tests wait for that first).
    pub fn dispatch(&self, interaction: Value) {
        let _ = self
            .shared
            .events
            .send(("INTERACTION_CREATE".to_string(), interaction));
    }

    /// Every REST call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// REST calls made with the interaction token `token` (callback, edits, follow-ups).
    pub fn calls_for(&self, token: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.interaction_token() == Some(token))
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
                    .map(|c| format!("{} {} {}", c.method, c.path, c.body))
                    .collect();
                return Err(format!(
                    "gave up after {limit:?}; calls so far:\n{}",
                    summary.join("\n")
                ));
            }
        }
    }

    /// Waits until the interaction `token` has a call satisfying `want`; returns it.
    pub async fn wait_for_token(
        &self,
        token: &str,
        limit: Duration,
        want: impl Fn(&Call) -> bool,
    ) -> Result<Call, String> {
        let find = |calls: &[Call]| {
            calls
                .iter()
                .find(|c| c.interaction_token() == Some(token) && want(c))
                .cloned()
        };
        let calls = self.wait_for(limit, |calls| find(calls).is_some()).await?;
        Ok(find(&calls).expect("found above"))
    }

    /// Waits until a gateway session is ready for events.
    pub async fn wait_ready(&self, limit: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.ready() {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(format!(
                    "no gateway session got READY within {limit:?}; ops seen: {:?}",
                    self.gateway_ops()
                ));
            }
        }
    }
}

/// A JSON object's fields, for building bodies.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
