//! CPU an idle console uses: `loopsmith console --embedded` on the tiny fixture model, in a
//! tmux pane, left alone on each screen for 10 s while its user+system CPU time is read from
//! /proc. Target: near zero (it redraws on events and a 1 Hz clock, never in a busy loop).
//!
//! Needs tmux, Linux /proc and ORT_DYLIB_PATH. Run with
//! `cargo bench -p loopsmith --bench console_idle` (add `--profile dev` to skip a release
//! build; the figure is then an upper bound).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SETTLE: Duration = Duration::from_secs(1);
const WINDOW: Duration = Duration::from_secs(10);

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", socket, "-f", "/dev/null"])
        .args(args)
        .output()
        .expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // The command name may hold spaces; fields after it start after the last ')'.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
}

fn main() {
    let ort = std::env::var("ORT_DYLIB_PATH").expect("set ORT_DYLIB_PATH");
    let model =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tests/fixtures/tiny-animatediff");
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = format!("loopsmith-idle-bench-{}", std::process::id());
    let script = format!(
        "env -u LOOPSMITH_CONFIG LOOPSMITH_LOCAL__MODEL='{}' LOOPSMITH_LOCAL__DEVICE=cpu \
         ORT_DYLIB_PATH='{ort}' '{}' console --embedded; exec sleep 300",
        model.display(),
        env!("CARGO_BIN_EXE_loopsmith")
    );
    let status = Command::new("tmux")
        .args([
            "-L",
            &socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "b",
            "-x",
            "160",
            "-y",
            "48",
            "-c",
        ])
        .arg(dir.path())
        .arg(&script)
        .status()
        .expect("tmux runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !tmux(&socket, &["capture-pane", "-p", "-t", "b"]).contains("● console:") {
        assert!(Instant::now() < deadline, "the console never attached");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The pane's shell runs `env`, which execs the console: the pane's first child is it.
    let shell = tmux(
        &socket,
        &["display-message", "-p", "-t", "b", "#{pane_pid}"],
    );
    let pid = std::fs::read_to_string(format!(
        "/proc/{}/task/{}/children",
        shell.trim(),
        shell.trim()
    ))
    .ok()
    .and_then(|c| c.split_whitespace().next().map(str::to_string))
    .unwrap_or_else(|| shell.trim().to_string());
    let hz = 100.0; // USER_HZ on Linux
    for (key, name) in [
        ("1", "dashboard"),
        ("2", "jobs"),
        ("4", "generate"),
        ("7", "logs"),
    ] {
        tmux(&socket, &["send-keys", "-t", "b", "Escape"]);
        std::thread::sleep(Duration::from_millis(50));
        tmux(&socket, &["send-keys", "-t", "b", key]);
        std::thread::sleep(SETTLE);
        let before = cpu_ticks(&pid);
        std::thread::sleep(WINDOW);
        let used = (cpu_ticks(&pid) - before) as f64 / hz;
        println!(
            "{name:<10} idle {WINDOW:?}: {:.0} ms CPU = {:.2} % of one core",
            used * 1000.0,
            used / WINDOW.as_secs_f64() * 100.0
        );
    }
    tmux(&socket, &["send-keys", "-t", "b", "Escape"]);
    tmux(&socket, &["send-keys", "-t", "b", "q"]);
    let _ = Command::new("tmux")
        .args(["-L", &socket, "-f", "/dev/null", "kill-server"])
        .status();
}
