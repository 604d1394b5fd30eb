//! What the Discord end-to-end tests share: the canary token, the `serve` child process, and
//! waiting for the bot's answers at the fake.

use std::path::Path;
use std::time::Duration;

use loopsmith_engine::media::inspect::{Container, inspect};
use loopsmith_fakes::discord::{Call, FakeDiscord};

#[path = "../common/serve.rs"]
mod serve;
pub use serve::Serve;

/// A canary in the shape of a bot token (three dot-separated parts). Built at run time so no
/// token-shaped literal sits in the source; the test checks that it appears nowhere.
pub fn token() -> String {
    ["MTEx", "canary", "never_in_logs_0123456789"].join(".")
}
pub const GUILD: u64 = 555_555_555_555_555_555;
pub const ALICE: u64 = 42;
pub const BOB: u64 = 43;
pub const ADMIN: u64 = 777;
/// Generous: renders run on a shared CPU.
pub const RENDER: Duration = Duration::from_secs(240);
pub const QUICK: Duration = Duration::from_secs(60);

impl Serve {
    /// `serve` with the Discord bot on the fake REST API at `rest_url` (through
    /// `discord.proxy_url`), commands in GUILD, ADMIN the admin.
    pub fn start(dir: &Path, rest_url: &str, extra: &[(&str, String)]) -> Serve {
        let discord = [
            ("DISCORD_TOKEN", token()),
            ("LOOPSMITH_DISCORD__ENABLED", "true".to_string()),
            ("LOOPSMITH_DISCORD__PROXY_URL", rest_url.to_string()),
            ("LOOPSMITH_DISCORD__GUILD_ID", GUILD.to_string()),
            ("LOOPSMITH_ADMINS__DISCORD", ADMIN.to_string()),
        ];
        Serve::spawn(dir, &discord, extra)
    }
}

pub fn callback_type(call: &Call) -> Option<u64> {
    call.path
        .ends_with("/callback")
        .then(|| call.body["type"].as_u64())
        .flatten()
}

/// The ephemeral message an interaction was answered with at once.
pub async fn private_answer(fake: &FakeDiscord, serve: &Serve, token: &str) -> String {
    let call = fake
        .wait_for_token(token, QUICK, |c| callback_type(c) == Some(4))
        .await
        .unwrap_or_else(|e| panic!("no answer: {e}\n{}", serve.log()));
    assert_eq!(call.body["data"]["flags"], 64, "ephemeral: {}", call.body);
    call.body["data"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits for an edit of the deferred response whose content contains `want`.
pub async fn edit_saying(fake: &FakeDiscord, serve: &Serve, token: &str, want: &str) -> Call {
    fake.wait_for_token(token, QUICK, |c| {
        c.method == "PATCH" && c.content().is_some_and(|t| t.contains(want))
    })
    .await
    .unwrap_or_else(|e| panic!("no edit saying {want:?}: {e}\n{}", serve.log()))
}

/// Waits for the edit that attaches a file; returns it and the calls made for `token`.
pub async fn delivery(fake: &FakeDiscord, serve: &Serve, token: &str) -> (Call, Vec<Call>) {
    let call = fake
        .wait_for_token(token, RENDER, |c| {
            c.method == "PATCH" && !c.files.is_empty()
        })
        .await
        .unwrap_or_else(|e| panic!("no delivery: {e}\n{}", serve.log()));
    // The final status edit comes after the attachment and keeps its caption.
    fake.wait_for_token(token, QUICK, |c| {
        c.method == "PATCH"
            && c.files.is_empty()
            && c.content().is_some_and(|t| t.contains("Here it is!"))
    })
    .await
    .unwrap_or_else(|e| panic!("no final status: {e}\n{}", serve.log()));
    (call, fake.calls_for(token))
}

pub fn check_clip(call: &Call) -> u64 {
    let file = &call.files[0];
    assert_eq!(file.part, "files[0]");
    assert_eq!(file.file_name.as_deref(), Some("clip.mp4"));
    let info = inspect(&file.bytes).expect("readable MP4");
    assert_eq!(info.container, Container::Mp4);
    assert_eq!(info.codec, "h264", "plays inline in Discord");
    assert_eq!(info.chroma_420, Some(true));
    assert_eq!(info.fast_start, Some(true));
    assert!(info.duration_secs > 3.0, "{} s", info.duration_secs);
    let ids = call.custom_ids();
    let job: u64 = ids
        .first()
        .and_then(|id| id.strip_prefix("rr:"))
        .and_then(|j| j.parse().ok())
        .unwrap_or_else(|| panic!("re-roll first: {ids:?}"));
    assert_eq!(
        ids,
        [
            format!("rr:{job}"),
            format!("va:{job}"),
            format!("pk:{job}"),
            format!("fc:{job}")
        ]
    );
    job
}

pub fn token_secret() -> String {
    token().rsplit('.').next().unwrap_or_default().to_string()
}

/// Waits for a `serve` that should stop by itself; returns its exit code and log.
pub async fn exited(serve: Serve) -> (Option<i32>, String) {
    serve.exited(QUICK).await
}

/// Posts `body` to the endpoint as Discord does, signed with `key` (or not at all).
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    key: Option<&ed25519_dalek::SigningKey>,
    body: &serde_json::Value,
) -> reqwest::Response {
    use ed25519_dalek::Signer;
    let body = body.to_string();
    let timestamp = "1763700000";
    let mut request = client.post(url).body(body.clone());
    if let Some(key) = key {
        let signature = key.sign(format!("{timestamp}{body}").as_bytes());
        let hex: String = signature
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        request = request
            .header("X-Signature-Ed25519", hex)
            .header("X-Signature-Timestamp", timestamp);
    }
    request.send().await.expect("the endpoint answers")
}
