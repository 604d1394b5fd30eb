#![allow(dead_code)] // each test binary uses its own part of the harness

//! The harness of the Telegram end-to-end tests: the `loopsmith serve` child process, the
//! canary token, and waiting for the bot's calls at the fake Bot API.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use loopsmith_fakes::telegram::{Call, FakeTelegram};
use serde_json::Value;

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

pub fn fixture_bundle() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/fixtures/tiny-animatediff")
        .display()
        .to_string()
}

pub struct Serve {
    child: Child,
    pub stderr: std::path::PathBuf,
}

impl Serve {
    pub fn start(dir: &Path, api_url: &str, extra: &[(&str, String)]) -> Serve {
        assert!(
            std::env::var_os("ORT_DYLIB_PATH").is_some(),
            "ORT_DYLIB_PATH must name libonnxruntime.so.1.31.x (`cargo xtask test` sets it)"
        );
        // One log per start, so a restarted server's log does not overwrite the first.
        let stderr = (1..)
            .map(|n| dir.join(format!("stderr-{n}.log")))
            .find(|p| !p.exists())
            .expect("a free log name");
        let child = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
            .arg("serve")
            .current_dir(dir)
            .env_remove("LOOPSMITH_CONFIG")
            .env("TELEGRAM_BOT_TOKEN", token())
            .env("LOOPSMITH_TELEGRAM__ENABLED", "true")
            .env("LOOPSMITH_TELEGRAM__API_URL", api_url)
            .env("LOOPSMITH_TELEGRAM__ALLOWED_USERS", format!("{ALICE}"))
            .env("LOOPSMITH_TELEGRAM__ALLOWED_CHATS", format!("{GROUP}"))
            .env("LOOPSMITH_ADMINS__TELEGRAM", format!("{ADMIN}"))
            .env("LOOPSMITH_LOCAL__MODEL", fixture_bundle())
            .env("LOOPSMITH_LOCAL__DEVICE", "cpu")
            .env("LOOPSMITH_ENGINE__SHUTDOWN_GRACE_SECS", "5")
            .env("LOOPSMITH_LIMITS__REQUESTS_PER_MINUTE", "60")
            .env("LOOPSMITH_LIMITS__BURST", "20")
            // Debug logging everywhere: the token must not leak even there.
            .env("LOOPSMITH_LOG", "debug")
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("loopsmith starts");
        Serve { child, stderr }
    }

    /// SIGKILL: no shutdown of any kind, as in a crash. Returns the log.
    pub fn kill(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then a bounded wait for a clean exit; returns the log.
    pub async fn stop(&mut self) -> String {
        self.terminate();
        let (waited, _) = self.wait_exit(Duration::from_secs(60)).await;
        let log = self.log();
        assert!(waited.success(), "{waited:?}\n{log}");
        assert!(log.contains("SIGTERM: stopping"), "{log}");
        assert!(log.contains("stopped"), "{log}");
        log
    }

    /// Sends SIGTERM (as systemd and `docker stop` do) and returns when it was sent.
    pub fn terminate(&self) -> std::time::Instant {
        let pid = self.child.id().to_string();
        let sent = std::time::Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        sent
    }

    /// Waits up to `limit` for the process to exit; panics with the log past it. Returns the
    /// exit status and how long the wait took.
    pub async fn wait_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let started = std::time::Instant::now();
        let mut child =
            std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"));
        let waited = tokio::time::timeout(limit, tokio::task::spawn_blocking(move || child.wait()))
            .await
            .unwrap_or_else(|_| panic!("not stopped within {limit:?}\n{}", self.log()))
            .expect("join")
            .expect("wait");
        (waited, started.elapsed())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Only reached when the test failed before stopping it.
        let _ = self.child.kill();
        let _ = self.child.wait();
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
