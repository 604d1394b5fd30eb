//! The Discord bot end to end: the real `loopsmith serve` binary, a real model bundle (the
//! tiny random-weight AnimateDiff fixture, on CPU), and the fake Discord REST API and gateway
//! from `loopsmith-fakes`. The test plays the users by injecting interactions on the gateway
//! and reads back every REST call the bot made.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use loopsmith_engine::media::discord::{MAX_BYTES, MAX_SECS, SIDE};
use loopsmith_engine::media::inspect::{Container, inspect};
use loopsmith_fakes::discord::{
    APPLICATION_ID, AttachmentMeta, CREATE_GUILD_EXPRESSIONS, Call, CommandOption, FakeDiscord,
    Member, STICKER_SLOTS,
};

/// A canary in the shape of a bot token (three dot-separated parts). Built at run time so no
/// token-shaped literal sits in the source; the test checks that it appears nowhere.
fn token() -> String {
    ["MTEx", "canary", "never_in_logs_0123456789"].join(".")
}
const GUILD: u64 = 555_555_555_555_555_555;
const ALICE: u64 = 42;
const BOB: u64 = 43;
const ADMIN: u64 = 777;
/// Generous: renders run on a shared CPU.
const RENDER: Duration = Duration::from_secs(240);
const QUICK: Duration = Duration::from_secs(60);

fn fixture_bundle() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/fixtures/tiny-animatediff")
        .display()
        .to_string()
}

struct Serve {
    child: Child,
    stderr: std::path::PathBuf,
}

impl Serve {
    fn start(dir: &Path, rest_url: &str, extra: &[(&str, String)]) -> Serve {
        assert!(
            std::env::var_os("ORT_DYLIB_PATH").is_some(),
            "ORT_DYLIB_PATH must name libonnxruntime.so.1.31.x (`cargo xtask test` sets it)"
        );
        let stderr = dir.join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
            .arg("serve")
            .current_dir(dir)
            .env_remove("LOOPSMITH_CONFIG")
            .env("DISCORD_TOKEN", token())
            .env("LOOPSMITH_DISCORD__ENABLED", "true")
            .env("LOOPSMITH_DISCORD__PROXY_URL", rest_url)
            .env("LOOPSMITH_DISCORD__GUILD_ID", GUILD.to_string())
            .env("LOOPSMITH_ADMINS__DISCORD", ADMIN.to_string())
            .env("LOOPSMITH_LOCAL__MODEL", fixture_bundle())
            .env("LOOPSMITH_LOCAL__DEVICE", "cpu")
            .env("LOOPSMITH_ENGINE__SHUTDOWN_GRACE_SECS", "5")
            .env("LOOPSMITH_LIMITS__REQUESTS_PER_MINUTE", "60")
            .env("LOOPSMITH_LIMITS__BURST", "20")
            // Debug logging everywhere: no token may leak even there.
            .env("LOOPSMITH_LOG", "debug")
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("loopsmith starts");
        Serve { child, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then a bounded wait for a clean exit; returns the log.
    async fn stop(&mut self) -> String {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let mut child =
            std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"));
        let waited = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await
        .expect("stops within a minute")
        .expect("join")
        .expect("wait");
        let log = self.log();
        assert!(waited.success(), "{waited:?}\n{log}");
        assert!(log.contains("SIGTERM: stopping"), "{log}");
        assert!(log.contains("stopped"), "{log}");
        log
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Only reached when the test failed before stopping it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn callback_type(call: &Call) -> Option<u64> {
    call.path
        .ends_with("/callback")
        .then(|| call.body["type"].as_u64())
        .flatten()
}

/// The ephemeral message an interaction was answered with at once.
async fn private_answer(fake: &FakeDiscord, serve: &Serve, token: &str) -> String {
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
async fn edit_saying(fake: &FakeDiscord, serve: &Serve, token: &str, want: &str) -> Call {
    fake.wait_for_token(token, QUICK, |c| {
        c.method == "PATCH" && c.content().is_some_and(|t| t.contains(want))
    })
    .await
    .unwrap_or_else(|e| panic!("no edit saying {want:?}: {e}\n{}", serve.log()))
}

/// Waits for the edit that attaches a file; returns it and the calls made for `token`.
async fn delivery(fake: &FakeDiscord, serve: &Serve, token: &str) -> (Call, Vec<Call>) {
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

fn check_clip(call: &Call) -> u64 {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discord_bot_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeDiscord::new(&token());
    let servers = fake.serve().await.expect("fake Discord");
    let rest = servers.rest_url();
    let mut serve = Serve::start(dir.path(), &rest, &[]);

    // Ready: token checked, gateway identified, commands registered in the guild.
    fake.wait_ready(QUICK)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", serve.log()));
    let commands_path = format!("/applications/{APPLICATION_ID}/guilds/{GUILD}/commands");
    let calls = fake
        .wait_for(QUICK, |calls| {
            calls.iter().any(|c| c.is("PUT", &commands_path, ""))
        })
        .await
        .unwrap_or_else(|e| panic!("commands never registered: {e}\n{}", serve.log()));
    assert!(calls[0].is("GET", "/users/@me", ""), "{:?}", calls[0].path);
    assert!(calls.iter().any(|c| c.is("GET", "/gateway", "")));
    assert!(fake.gateway_ops().contains(&2), "IDENTIFY was sent");
    let registered = calls
        .iter()
        .find(|c| c.is("PUT", &commands_path, ""))
        .expect("found");
    let names: Vec<&str> = registered
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in [
        "sticker",
        "animate",
        "style",
        "styles",
        "suffix",
        "character",
        "seed",
        "history",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }

    let alice = Member::new(ALICE, "alice");
    let bob = Member::new(BOB, "bob");

    // A bad attachment for /animate: refused with what is wrong, nothing deferred.
    let pdf = AttachmentMeta {
        id: 9001,
        filename: "notes.pdf".into(),
        content_type: Some("application/pdf".into()),
        size: 2048,
        width: None,
        height: None,
        url: fake.host_attachment(&rest, "notes.pdf", "%PDF-1.4".into()),
    };
    let token = fake.command(
        GUILD,
        &alice,
        "animate",
        &[
            CommandOption::attachment("image", pdf),
            CommandOption::string("prompt", "make it dance"),
        ],
    );
    let text = private_answer(&fake, &serve, &token).await;
    assert_eq!(
        text,
        "That file is application/pdf, not a picture; attach a PNG, JPEG, WebP or GIF."
    );

    // Options typed apart from the prompt are checked like inline ones.
    let token = fake.command(
        GUILD,
        &alice,
        "sticker",
        &[
            CommandOption::string("prompt", "a cat -seed 1"),
            CommandOption::integer("seed", 2),
        ],
    );
    assert_eq!(
        private_answer(&fake, &serve, &token).await,
        "You gave -seed twice; give it once."
    );

    // Style autocomplete offers the presets that match.
    let token = fake.autocomplete(
        GUILD,
        &alice,
        "sticker",
        &[
            CommandOption::string("prompt", "a cat"),
            CommandOption::focused("style", "an"),
        ],
    );
    let call = fake
        .wait_for_token(&token, QUICK, |c| callback_type(c) == Some(8))
        .await
        .unwrap_or_else(|e| panic!("no autocomplete: {e}\n{}", serve.log()));
    assert_eq!(
        call.body["data"]["choices"][0]["value"], "anime",
        "{}",
        call.body
    );

    // /style through the shared layer, in the Telegram bot's words.
    let token = fake.command(GUILD, &alice, "style", &[]);
    assert_eq!(
        private_answer(&fake, &serve, &token).await,
        "You have no default style. Pick one with /style NAME; /styles lists them."
    );

    // /sticker: deferred at once, progress edits, then the MP4 with its buttons.
    let token = fake.command(
        GUILD,
        &alice,
        "sticker",
        &[
            CommandOption::string("prompt", "a red ball bouncing"),
            CommandOption::integer("seed", 42),
            CommandOption::integer("duration", 4),
        ],
    );
    let deferred = fake
        .wait_for_token(&token, QUICK, |c| callback_type(c).is_some())
        .await
        .unwrap_or_else(|e| panic!("not deferred: {e}\n{}", serve.log()));
    assert_eq!(callback_type(&deferred), Some(5));
    edit_saying(&fake, &serve, &token, "Got it").await;
    let (clip, flow) = delivery(&fake, &serve, &token).await;
    let job = check_clip(&clip);
    assert!(
        clip.content()
            .is_some_and(|t| t.contains("a red ball bouncing · seed 42")),
        "{:?}",
        clip.content()
    );
    let texts: Vec<&Call> = flow
        .iter()
        .filter(|c| c.method == "PATCH" && c.files.is_empty())
        .collect();
    assert!(texts.len() >= 2, "the queued text, then the final status");
    // Status edits keep to the pacing: 1.5 s apart per job.
    for pair in texts.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(1400), "edits {gap:?} apart");
    }
    let last = texts.last().and_then(|c| c.content()).unwrap_or_default();
    assert!(
        last.contains("a red ball bouncing · seed 42"),
        "the caption stays: {last}"
    );

    // Buttons: only the requester or an admin may press them.
    let press = fake.press(GUILD, &bob, &token, &format!("rr:{job}"));
    assert_eq!(
        private_answer(&fake, &serve, &press).await,
        "That button belongs to someone else's sticker."
    );
    let press = fake.press(GUILD, &alice, &token, "rr:not-a-job");
    assert_eq!(
        private_answer(&fake, &serve, &press).await,
        "That button no longer works; make a new sticker."
    );

    // Add as server sticker: refused for a member without Create Expressions, and when the
    // bot lacks it; then made, as an APNG within Discord's limits.
    let no_rights = Member::new(ALICE, "alice").with_permissions(0);
    let press = fake.press(GUILD, &no_rights, &token, &format!("pk:{job}"));
    assert_eq!(
        private_answer(&fake, &serve, &press).await,
        "You need the Create Expressions permission in this server to add stickers."
    );
    let bot_without = Member::new(ALICE, "alice")
        .with_app_permissions(!CREATE_GUILD_EXPRESSIONS & ((1 << 50) - 1));
    let press = fake.press(GUILD, &bot_without, &token, &format!("pk:{job}"));
    assert!(
        private_answer(&fake, &serve, &press)
            .await
            .starts_with("I don't have the Create Expressions permission")
    );
    let press = fake.press(GUILD, &alice, &token, &format!("pk:{job}"));
    edit_saying(&fake, &serve, &press, "to this server's stickers").await;
    let stickers = fake.stickers(GUILD);
    assert_eq!(stickers.len(), 1);
    assert_eq!(stickers[0].name, "a red ball bouncing");
    assert_eq!(stickers[0].tags, "red");
    let info = inspect(&stickers[0].bytes).expect("readable sticker");
    assert_eq!(info.container, Container::Png);
    assert_eq!((info.width, info.height), (SIDE, SIDE));
    assert!(
        info.bytes <= MAX_BYTES && info.duration_secs <= MAX_SECS,
        "{info:?}"
    );
    assert!(info.frames > 1, "animated");
    // Slots full: Discord's refusal is told apart.
    fake.fill_stickers(GUILD, STICKER_SLOTS - 1);
    let press = fake.press(GUILD, &alice, &token, &format!("pk:{job}"));
    edit_saying(&fake, &serve, &press, "sticker slots are full").await;

    // Full clip, pressed by an admin: the clip again, as a new message.
    let admin = Member::new(ADMIN, "admin");
    let press = fake.press(GUILD, &admin, &token, &format!("fc:{job}"));
    let again = fake
        .wait_for_token(&press, QUICK, |c| {
            c.method == "PATCH" && !c.files.is_empty()
        })
        .await
        .unwrap_or_else(|e| panic!("no full clip: {e}\n{}", serve.log()));
    assert_eq!(check_clip(&again), job);

    // Re-roll: a new job with a new seed, followed on the press's own response.
    let press = fake.press(GUILD, &alice, &token, &format!("rr:{job}"));
    let (clip, _) = delivery(&fake, &serve, &press).await;
    let rerolled = check_clip(&clip);
    assert_ne!(rerolled, job);
    assert!(
        !clip.content().unwrap_or_default().contains("· seed 42\n"),
        "{:?}",
        clip.content()
    );

    // /history lists both, with buttons to get them again.
    let token = fake.command(GUILD, &alice, "history", &[]);
    let call = fake
        .wait_for_token(&token, QUICK, |c| callback_type(c) == Some(4))
        .await
        .unwrap_or_else(|e| panic!("no history: {e}\n{}", serve.log()));
    let text = call.body["data"]["content"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("Your recent stickers:\n1. a red ball bouncing\n2. a red ball bouncing"),
        "{text}"
    );

    let log = serve.stop().await;
    assert!(
        !log.contains(&token_secret()),
        "the bot token leaked:\n{log}"
    );
    assert!(
        !log.contains("itoken-"),
        "an interaction token leaked:\n{log}"
    );
    assert!(log.contains("slash commands registered"), "{log}");
    drop(servers);
}

fn token_secret() -> String {
    token().rsplit('.').next().unwrap_or_default().to_string()
}

/// Waits for a `serve` that should stop by itself; returns its exit code and log.
async fn exited(mut serve: Serve) -> (Option<i32>, String) {
    let mut child = std::mem::replace(
        &mut serve.child,
        Command::new("true").spawn().expect("true"),
    );
    let status = tokio::time::timeout(QUICK, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .unwrap_or_else(|_| panic!("serve kept running:\n{}", serve.log()))
        .expect("join")
        .expect("wait");
    (status.code(), serve.log())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_serve_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The fake expects another token, so it answers 401 as Discord does.
    let fake = FakeDiscord::new("some-other-token");
    let servers = fake.serve().await.expect("fake Discord");
    let serve = Serve::start(dir.path(), &servers.rest_url(), &[]);
    let (code, log) = exited(serve).await;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("error: Discord refused the bot token (DISCORD_TOKEN)"),
        "{log}"
    );
    assert!(!log.contains(&token_secret()), "the token leaked:\n{log}");
    assert!(!fake.ready(), "no gateway session with a refused token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("LOOPSMITH_CONFIG")
        .env_remove("DISCORD_TOKEN")
        .env("LOOPSMITH_DISCORD__ENABLED", "true")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("discord.enabled is true but DISCORD_TOKEN is not set"),
        "{stderr}"
    );
}

/// Posts `body` to the endpoint as Discord does, signed with `key` (or not at all).
async fn post_signed(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interactions_endpoint_verifies_and_answers_without_the_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public: String = key
        .verifying_key()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fake = FakeDiscord::new(&token());
    fake.set_verify_key(&public);
    let servers = fake.serve().await.expect("fake Discord");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = Serve::start(
        dir.path(),
        &servers.rest_url(),
        &[
            ("LOOPSMITH_DISCORD__INTERACTIONS_LISTEN", listen.clone()),
            ("LOOPSMITH_DISCORD__PUBLIC_KEY", public.clone()),
        ],
    );
    let commands_path = format!("/applications/{APPLICATION_ID}/guilds/{GUILD}/commands");
    let calls = fake
        .wait_for(QUICK, |calls| {
            calls.iter().any(|c| c.is("PUT", &commands_path, ""))
        })
        .await
        .unwrap_or_else(|e| panic!("commands never registered: {e}\n{}", serve.log()));
    assert!(
        calls
            .iter()
            .any(|c| c.is("GET", "/oauth2/applications/@me", ""))
    );
    let url = format!("http://{listen}/interactions");
    let client = reqwest::Client::new();
    // The endpoint listens before the commands are registered, so it is up by now.
    let ping = fake.ping_payload();
    let response = client.post(&url).body("{}").send().await.expect("answers");
    assert_eq!(
        response.status(),
        reqwest::StatusCode::UNAUTHORIZED,
        "unsigned is refused"
    );

    let response = post_signed(&client, &url, Some(&key), &ping).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body, serde_json::json!({"type": 1}));
    // Signed with another key, or over another body: refused.
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]);
    let response = post_signed(&client, &url, Some(&stranger), &ping).await;
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    let response = post_signed(&client, &url, None, &ping).await;
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);

    // A command: accepted at once, answered through the REST callback.
    let alice = Member::new(ALICE, "alice");
    let (payload, itoken) = fake.command_payload(GUILD, &alice, "styles", &[]);
    let response = post_signed(&client, &url, Some(&key), &payload).await;
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let text = private_answer(&fake, &serve, &itoken).await;
    assert!(text.starts_with("Styles:\n• none"), "{text}");

    // A sticker, end to end: the edits go to the application's webhook, whose id came from
    // the API since there is no READY.
    let (payload, itoken) = fake.command_payload(
        GUILD,
        &alice,
        "sticker",
        &[CommandOption::string(
            "prompt",
            "a blue cube spinning -duration 4",
        )],
    );
    let response = post_signed(&client, &url, Some(&key), &payload).await;
    assert_eq!(response.status(), reqwest::StatusCode::ACCEPTED);
    let (clip, _) = delivery(&fake, &serve, &itoken).await;
    assert!(
        clip.path
            .starts_with(&format!("/webhooks/{APPLICATION_ID}/")),
        "{}",
        clip.path
    );
    check_clip(&clip);
    assert!(
        fake.gateway_ops().is_empty(),
        "no gateway session in endpoint mode"
    );

    let log = serve.stop().await;
    assert!(
        log.contains("Discord bot is answering interactions posted to"),
        "{log}"
    );
    assert!(
        !log.contains(&token_secret()),
        "the bot token leaked:\n{log}"
    );
    assert!(
        !log.contains("itoken-"),
        "an interaction token leaked:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_key_of_another_application_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeDiscord::new(&token());
    fake.set_verify_key(&"ab".repeat(32));
    let servers = fake.serve().await.expect("fake Discord");
    let ours = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public: String = ours
        .verifying_key()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let serve = Serve::start(
        dir.path(),
        &servers.rest_url(),
        &[
            (
                "LOOPSMITH_DISCORD__INTERACTIONS_LISTEN",
                "127.0.0.1:0".into(),
            ),
            ("LOOPSMITH_DISCORD__PUBLIC_KEY", public),
        ],
    );
    let (code, log) = exited(serve).await;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("discord.public_key is not this application's public key"),
        "{log}"
    );
}
