#![allow(dead_code)] // each test binary uses its own part of the harness

//! The harness of the Telegram end-to-end tests: the `loopsmith serve` child process, the
//! canary token, and waiting for the bot's calls at the fake Bot API.

use std::path::Path;
use std::time::Duration;

use loopsmith_fakes::telegram::{Call, FakeTelegram};
use serde_json::Value;

#[path = "../common/serve.rs"]
mod serve;
pub use serve::Serve;

/// A canary in the shape of a bot token (id, colon, 35+ characters), so teloxide's own
/// redaction applies too. Built at run time so no token-shaped literal sits in the source.
pub fn token() -> String {
    format!(
        "{}:AA{}",
        4_242_424_242u64,
        ["canary", "never", "in", "logs", "0123456789"].join("_")
    )
}
pub const BOT: &str = "loopsmith_test_bot";
pub const ALICE: i64 = 42;
pub const ADMIN: i64 = 777;
pub const OUTSIDER: i64 = 99;
pub const GROUP: i64 = -100_123;
/// Generous: renders run on a shared CPU, and the bot keeps to Telegram's 20 messages a
/// minute per chat, so a busy chat's replies queue.
pub const RENDER: Duration = Duration::from_secs(240);
pub const QUICK: Duration = Duration::from_secs(90);

impl Serve {
    /// `serve` with the Telegram bot on the fake Bot API at `api_url`: ALICE and GROUP on the
    /// allow-list, ADMIN the admin.
    pub fn start(dir: &Path, api_url: &str, extra: &[(&str, String)]) -> Serve {
        let telegram = [
            ("TELEGRAM_BOT_TOKEN", token()),
            ("LOOPSMITH_TELEGRAM__ENABLED", "true".to_string()),
            ("LOOPSMITH_TELEGRAM__API_URL", api_url.to_string()),
            ("LOOPSMITH_TELEGRAM__ALLOWED_USERS", ALICE.to_string()),
            ("LOOPSMITH_TELEGRAM__ALLOWED_CHATS", GROUP.to_string()),
            ("LOOPSMITH_ADMINS__TELEGRAM", ADMIN.to_string()),
        ];
        Serve::spawn(dir, &telegram, extra)
    }
}

pub fn chat_of(call: &Call) -> Option<i64> {
    call.text("chat_id").and_then(|c| c.parse().ok())
}

pub fn text_of(call: &Call) -> String {
    call.text("text").unwrap_or_default()
}

/// The callback data of every button in a call's inline keyboard.
pub fn buttons(call: &Call) -> Vec<String> {
    let markup = match call.params.get("reply_markup") {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
        Some(v) => v.clone(),
        None => Value::Null,
    };
    markup["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["callback_data"].as_str().map(str::to_string))
        .collect()
}

/// Waits until `serve` polls the fake Bot API for updates after the first `since` calls: the
/// bot is up (again). `context` prefixes the failure ("trial 3: ").
pub async fn wait_until_polling(fake: &FakeTelegram, serve: &Serve, since: usize, context: &str) {
    fake.wait_for(QUICK, |calls| {
        calls[since..].iter().any(|c| c.is("getUpdates"))
    })
    .await
    .unwrap_or_else(|e| panic!("{context}never polled: {e}\n{}", serve.log()));
}

/// Waits for a message to `chat` whose text satisfies `want`, after `skip` calls.
pub async fn reply(fake: &FakeTelegram, serve: &Serve, skip: usize, chat: i64, want: &str) -> Call {
    let found = |calls: &[Call]| {
        calls[skip.min(calls.len())..]
            .iter()
            .find(|c| c.is("sendMessage") && chat_of(c) == Some(chat) && text_of(c).contains(want))
            .cloned()
    };
    let calls = fake
        .wait_for(QUICK, |calls| found(calls).is_some())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no reply containing {want:?} to {chat}: {e}\n{}",
                serve.log()
            )
        });
    found(&calls).expect("found above")
}

pub async fn answer(fake: &FakeTelegram, serve: &Serve, skip: usize, want: &str) -> Call {
    let found = |calls: &[Call]| {
        calls[skip.min(calls.len())..]
            .iter()
            .find(|c| {
                c.is("answerCallbackQuery") && c.text("text").is_some_and(|t| t.contains(want))
            })
            .cloned()
    };
    let calls = fake
        .wait_for(QUICK, |calls| found(calls).is_some())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no callback answer containing {want:?}: {e}\n{}",
                serve.log()
            )
        });
    found(&calls).expect("found above")
}

/// A suite's size: `var` when set, else the full size under `RELIABILITY_SIZE=full`, else
/// the CI size.
pub fn suite_size(var: &str, ci: usize, full: usize) -> usize {
    if let Some(n) = std::env::var(var).ok().and_then(|n| n.parse().ok()) {
        return n;
    }
    match std::env::var("RELIABILITY_SIZE").as_deref() {
        Ok("full") => full,
        _ => ci,
    }
}

/// A small deterministic generator (xorshift), so a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The message a call answers (`reply_parameters.message_id`), as JSON or multipart text.
pub fn replied_to(call: &Call) -> Option<i64> {
    let value = match call.params.get("reply_parameters")? {
        Value::String(s) => serde_json::from_str(s).ok()?,
        v => v.clone(),
    };
    value["message_id"].as_i64()
}
