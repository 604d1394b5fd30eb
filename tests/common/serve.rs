#![allow(dead_code)] // each test binary uses its own part

//! The `loopsmith serve` child process of the end-to-end tests, whatever chat surface it
//! runs: started on the tiny fixture model with the settings every such test shares, one log
//! file per start, SIGKILL as in a crash, SIGTERM as systemd sends it. Each harness adds a
//! `Serve::start` that sets its surface's variables.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The tiny random-weight AnimateDiff fixture: real ONNX Runtime, fast on a CPU.
pub fn fixture_bundle() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/tests/fixtures/tiny-animatediff")
        .display()
        .to_string()
}

pub struct Serve {
    child: Child,
    pub stderr: PathBuf,
}

impl Serve {
    /// Starts `loopsmith serve` in `dir` with the shared settings, then `surface` (the chat
    /// surface's variables), then `extra` (a test's own, which win).
    pub fn spawn(dir: &Path, surface: &[(&str, String)], extra: &[(&str, String)]) -> Serve {
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
            .env("LOOPSMITH_LOCAL__MODEL", fixture_bundle())
            .env("LOOPSMITH_LOCAL__DEVICE", "cpu")
            .env("LOOPSMITH_ENGINE__SHUTDOWN_GRACE_SECS", "5")
            .env("LOOPSMITH_LIMITS__REQUESTS_PER_MINUTE", "60")
            .env("LOOPSMITH_LIMITS__BURST", "20")
            // Debug logging everywhere: no token may leak even there.
            .env("LOOPSMITH_LOG", "debug")
            .envs(surface.iter().map(|(k, v)| (*k, v.as_str())))
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
    pub fn terminate(&self) -> Instant {
        let pid = self.child.id().to_string();
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        sent
    }

    /// Waits up to `limit` for the process to exit; panics with the log past it. Returns the
    /// exit status and how long the wait took.
    pub async fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let mut child =
            std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"));
        let waited = tokio::time::timeout(limit, tokio::task::spawn_blocking(move || child.wait()))
            .await
            .unwrap_or_else(|_| panic!("not stopped within {limit:?}\n{}", self.log()))
            .expect("join")
            .expect("wait");
        (waited, started.elapsed())
    }

    /// Waits for a `serve` that should stop by itself; returns its exit code and log.
    pub async fn exited(mut self, limit: Duration) -> (Option<i32>, String) {
        let (status, _) = self.wait_exit(limit).await;
        (status.code(), self.log())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Only reached when a test failed before stopping it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
