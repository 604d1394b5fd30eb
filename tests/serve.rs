//! `loopsmith serve` as an operator runs it: the control socket is there for consoles, the
//! metrics endpoint moves while a sticker is made, and a job still rendering when SIGTERM
//! arrives finishes within the grace period and is delivered before the process exits 0.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use loopsmith_fakes::telegram::FakeTelegram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A canary in the shape of a bot token (id, colon, 35+ characters), so teloxide's own
/// redaction applies too. Built at run time so no token-shaped literal sits in the source.
fn token() -> String {
    format!(
        "{}:AA{}",
        4_242_424_242u64,
        ["canary", "never", "in", "logs", "serve_test"].join("_")
    )
}
const ALICE: i64 = 42;
const WAIT: Duration = Duration::from_secs(240);

fn fixture_bundle() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/fixtures/tiny-animatediff")
        .display()
        .to_string()
}

async fn scrape(port: u16) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    Some(text)
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_drains_on_sigterm_with_metrics_and_a_control_socket() {
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "ORT_DYLIB_PATH must name libonnxruntime.so.1.31.x (`cargo xtask test` sets it)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeTelegram::new(&token(), "loopsmith_test_bot");
    let server = fake.serve().await.expect("fake Bot API");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let socket = dir.path().join("control.sock");
    let stderr = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("LOOPSMITH_CONFIG")
        .env("TELEGRAM_BOT_TOKEN", token())
        .env("LOOPSMITH_TELEGRAM__ENABLED", "true")
        .env("LOOPSMITH_TELEGRAM__API_URL", server.base_url())
        .env("LOOPSMITH_LOCAL__MODEL", fixture_bundle())
        .env("LOOPSMITH_LOCAL__DEVICE", "cpu")
        .env("LOOPSMITH_ENGINE__SHUTDOWN_GRACE_SECS", "120")
        .env("LOOPSMITH_CONTROL__SOCKET", &socket)
        .env("LOOPSMITH_METRICS__ENABLED", "true")
        .env("LOOPSMITH_METRICS__LISTEN", format!("127.0.0.1:{port}"))
        .env("LOOPSMITH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("loopsmith starts");
    let log = || std::fs::read_to_string(&stderr).unwrap_or_default();

    fake.wait_for(WAIT, |calls| calls.iter().any(|c| c.is("getUpdates")))
        .await
        .unwrap_or_else(|e| panic!("never polled: {e}\n{}", log()));
    // Everything is up before the bot polls: the socket (0600) and the metrics endpoint.
    let mode = std::fs::metadata(&socket)
        .unwrap_or_else(|e| panic!("no control socket: {e}\n{}", log()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let before = scrape(port).await.expect("metrics answer");
    assert_eq!(
        value(&before, "loopsmith_jobs_entered_total{state=\"done\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(
            &before,
            "loopsmith_breaker_state{backend=\"local\",state=\"closed\"}"
        ),
        Some(1.0)
    );

    // A 4 s clip (sticker and full-clip MP4); SIGTERM as soon as it is rendering.
    fake.send_text(ALICE, ALICE, "a red ball -duration 4");
    fake.wait_for(WAIT, |calls| {
        calls
            .iter()
            .any(|c| c.is("sendChatAction") || c.is("editMessageText"))
    })
    .await
    .unwrap_or_else(|e| panic!("the job never started: {e}\n{}", log()));
    let running = scrape(port).await.expect("metrics answer");
    assert_eq!(
        value(&running, "loopsmith_jobs_entered_total{state=\"queued\"}"),
        Some(1.0),
        "{running}"
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let status = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || child.wait()))
        .await
        .expect("stops within the grace")
        .expect("join")
        .expect("wait");
    let text = log();
    assert!(status.success(), "{status:?}\n{text}");
    assert!(text.contains("SIGTERM: stopping"), "{text}");
    // The job in flight finished and was delivered before the exit.
    assert!(
        fake.calls().iter().any(|c| c.is("sendSticker")),
        "the sticker was not delivered\n{text}"
    );
    assert!(!socket.exists(), "the control socket is removed on exit");
    let token = token();
    let secret = token.split_once(':').map(|(_, s)| s).expect("token shape");
    assert!(!text.contains(secret), "the token leaked");
    assert!(
        scrape(port).await.is_none(),
        "metrics closed with the server"
    );
}
