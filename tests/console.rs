//! `loopsmith console` end to end in a real terminal (tmux): start it with an embedded
//! engine on the tiny fixture model, submit a prompt from the Generate screen, watch the job
//! finish and its clip load, quit with `q`, and check the terminal was left clean.
//!
//! tmux offers no notification when a pane's content changes, so each wait polls
//! `capture-pane` for a condition until a deadline; a deadline passing fails the test with
//! the pane's content.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use loopsmith_config::Settings;
use loopsmith_engine::control::{BackendInfo, Control, ControlledBackend, LogTap};
use loopsmith_engine::media::MediaEncoder;
use loopsmith_engine::{
    Backend, BackendError, Clip, Engine, Health, MemoryStore, ProgressSink, RenderJob, Router,
};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);
/// The pane's mouse reporting modes: any motion (1003), motion while pressed (1002), presses
/// (1000), SGR encoding (1006).
const MOUSE_MODES: &str =
    "#{mouse_all_flag}#{mouse_button_flag}#{mouse_standard_flag}#{mouse_sgr_flag}";

fn fixture_bundle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tests/fixtures/tiny-animatediff")
}

/// One tmux server of our own (its own socket name), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, dir: &Path, shell_command: &str) -> Tmux {
        let socket = format!("loopsmith-console-{name}-{}", std::process::id());
        let tmux = Tmux { socket };
        let status = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "110",
                "-y",
                "30",
                "-c",
            ])
            .arg(dir)
            .arg(shell_command)
            .status()
            .expect("tmux runs (install tmux to run this test)");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        c
    }

    fn capture(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn display(&self, format: &str) -> String {
        let out = self
            .cmd(&["display-message", "-p", "-t", "t", format])
            .output()
            .expect("display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn keys(&self, keys: &[&str]) {
        let status = self
            .cmd(&["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .expect("send-keys");
        assert!(status.success());
    }

    fn literal(&self, text: &str) {
        let status = self
            .cmd(&["send-keys", "-t", "t", "-l", text])
            .status()
            .expect("send-keys");
        assert!(status.success());
    }

    /// Waits until the pane shows `needle`; fails with the pane's content at the deadline.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.capture();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {needle:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

#[test]
fn generate_from_the_console_and_quit_cleanly() {
    let ort = std::env::var("ORT_DYLIB_PATH")
        .expect("ORT_DYLIB_PATH must name libonnxruntime.so.1.31.x (`cargo xtask test` sets it)");
    let dir = tempfile::tempdir().expect("tempdir");
    let script = format!(
        "env -u LOOPSMITH_CONFIG TERM=xterm-256color USER=tester \
         LOOPSMITH_LOCAL__MODEL='{model}' LOOPSMITH_LOCAL__DEVICE=cpu ORT_DYLIB_PATH='{ort}' \
         '{bin}' console --embedded; \
         echo \"CONSOLE-EXIT=$?\"; stty -a | grep -o -- '-\\?icanon' | sed 's/^/MODE=/'; \
         exec sleep 120",
        model = fixture_bundle().display(),
        bin = env!("CARGO_BIN_EXE_loopsmith"),
    );
    let tmux = Tmux::start("embedded", dir.path(), &script);

    tmux.wait_for("● console:tester");
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "1",
        "the UI uses the alternate screen"
    );

    tmux.keys(&["4"]);
    tmux.wait_for("Generate as console:tester");
    tmux.literal("a red ball bouncing");
    tmux.keys(&["Enter"]);
    tmux.wait_for("job 1 queued");
    let screen = tmux.wait_for("job 1 done");
    assert!(
        !screen.contains("OpenH264"),
        "native logs leaked under the UI:\n{screen}"
    );
    // The finished clip loads beside the form and plays in half blocks.
    let screen = tmux.wait_for("Preview · job 1 ·");
    assert!(screen.contains('▀'), "{screen}");

    // The form still has focus, so `2` is typed into the prompt, not a screen switch.
    tmux.keys(&["2"]);
    tmux.wait_for("Prompt   a red ball bouncing2");
    // Esc leaves the form; then `2` switches screens.
    tmux.keys(&["Escape"]);
    tmux.wait_for("i or Enter: edit the form");
    tmux.keys(&["2"]);
    let jobs = tmux.wait_for("Jobs 1/1");
    assert!(jobs.contains("done"), "{jobs}");

    tmux.keys(&["q"]);
    let after = tmux.wait_for("MODE=");
    assert!(after.contains("CONSOLE-EXIT=0"), "{after}");
    assert!(
        after.contains("MODE=icanon"),
        "raw mode was left on:\n{after}"
    );
    assert!(
        !after.contains("Dashboard"),
        "the UI was left on screen:\n{after}"
    );
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
    assert_eq!(
        tmux.display("#{cursor_flag}"),
        "1",
        "the cursor was left hidden"
    );

    let log = std::fs::read_to_string(dir.path().join("loopsmith-data/console.log"))
        .expect("the console wrote its log file");
    assert!(log.contains("console attached"), "{log}");
}

#[test]
fn without_a_terminal_the_console_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .args(["console"])
        .env_remove("LOOPSMITH_CONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs a terminal"), "{stderr}");
}

/// Renders a plain green clip at once: the attach test is about the console, not the model.
#[derive(Debug)]
struct GreenBackend;

#[async_trait]
impl Backend for GreenBackend {
    fn name(&self) -> &str {
        "green"
    }

    fn health(&self) -> Health {
        Health::Ready
    }

    async fn render(
        &self,
        job: &RenderJob,
        progress: ProgressSink,
        _cancel: CancellationToken,
    ) -> Result<Clip, BackendError> {
        progress.report("green", 0.5, None);
        Ok(Clip {
            width: 64,
            height: 64,
            fps: job.params.fps,
            frames: vec![[20u8, 200, 40].repeat(64 * 64); 8],
            seed: job.params.seed,
            backend: "green".into(),
        })
    }
}

/// An engine serving the control socket, as `loopsmith serve` will; stopped by its token.
fn serve(
    runtime: &tokio::runtime::Runtime,
    engine: &Engine,
    backend: &Arc<ControlledBackend>,
    socket: &Path,
) -> CancellationToken {
    let stop = CancellationToken::new();
    let control = Control::new(engine.clone(), vec![backend.clone()], LogTap::new());
    let (path, token) = (socket.to_path_buf(), stop.clone());
    runtime.spawn(async move { control.serve_unix(&path, token).await });
    let deadline = Instant::now() + WAIT;
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "the control socket never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop
}

/// An engine rendering with [`GreenBackend`], in `runtime`.
fn green_engine(
    runtime: &tokio::runtime::Runtime,
    data_dir: &Path,
) -> (Engine, Arc<ControlledBackend>) {
    let mut settings = Settings::default();
    settings.storage.data_dir = data_dir.to_path_buf();
    let backend = ControlledBackend::new(
        Arc::new(GreenBackend),
        BackendInfo {
            model: "green".into(),
            provider: "test".into(),
            device: "cpu".into(),
            capacity: 1,
        },
    );
    let engine = {
        let _entered = runtime.enter();
        Engine::start(
            &settings,
            Arc::new(MemoryStore::new()),
            Arc::new(Router::new(vec![backend.clone()], true)),
            Arc::new(MediaEncoder),
        )
        .expect("engine starts")
    };
    (engine, backend)
}

#[test]
fn attach_to_a_server_survive_its_restart_and_quit_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("run/control.sock");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (engine, backend) = green_engine(&runtime, &dir.path().join("data"));
    let first = serve(&runtime, &engine, &backend, &socket);

    // Without TMUX in its environment the console cannot tell it runs in tmux, so it asks the
    // terminal what it can draw (tmux answers: no sixel) before the UI starts; the keys below
    // then show that the answer was not taken for input.
    let script = format!(
        "env -u LOOPSMITH_CONFIG -u TMUX TERM=xterm-256color USER=tester \
         LOOPSMITH_STORAGE__DATA_DIR='{data}' '{bin}' console --socket '{socket}'; \
         echo \"CONSOLE-EXIT=$?\"; stty -a | grep -o -- '-\\?icanon' | sed 's/^/MODE=/'; \
         exec sleep 120",
        data = dir.path().join("console-data").display(),
        bin = env!("CARGO_BIN_EXE_loopsmith"),
        socket = socket.display(),
    );
    let tmux = Tmux::start("attach", dir.path(), &script);
    tmux.wait_for("● console:tester");

    tmux.keys(&["4"]);
    tmux.literal("a green square");
    tmux.keys(&["Enter"]);
    tmux.wait_for("job 1 done");
    let screen = tmux.wait_for("Preview · job 1 ·");
    assert!(screen.contains('▀'), "{screen}");

    tmux.keys(&["Escape"]);
    tmux.wait_for("i or Enter: edit the form");
    tmux.keys(&["6"]);
    tmux.wait_for("green    ready");

    // The server goes away: the console says so plainly and keeps what it had.
    first.cancel();
    let screen = tmux.wait_for("DISCONNECTED · retrying in");
    assert!(
        screen.contains("green"),
        "the last known state stays on screen:\n{screen}"
    );

    // It comes back on the same socket: the console finds it again by itself.
    let second = serve(&runtime, &engine, &backend, &socket);
    let deadline = Instant::now() + WAIT;
    loop {
        let screen = tmux.capture();
        if screen.contains("● console:tester") && !screen.contains("DISCONNECTED") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the console never reconnected:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    tmux.keys(&["q"]);
    let after = tmux.wait_for("MODE=");
    assert!(after.contains("CONSOLE-EXIT=0"), "{after}");
    assert!(
        after.contains("MODE=icanon"),
        "raw mode was left on:\n{after}"
    );
    assert_eq!(
        tmux.display("#{alternate_on}"),
        "0",
        "the alternate screen was left"
    );
    second.cancel();
}

/// In kitty and sixel modes pictures go out as escape sequences after each frame. tmux 3.3,
/// which runs this test, takes both kinds in and shows nothing for them, so the pane must show
/// the UI with the picture's cells blank: a malformed sequence would leave its bytes on screen
/// or swallow the UI drawn after it. The help drawn over a picture falls back to half-blocks,
/// and a click on a tab (an SGR mouse report typed into the pane) switches screens.
#[test]
fn pictures_in_pixels_leave_the_screen_clean_and_the_mouse_clicks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("run/control.sock");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (engine, backend) = green_engine(&runtime, &dir.path().join("data"));
    let stop = serve(&runtime, &engine, &backend, &socket);

    for (n, mode) in ["kitty", "sixel"].into_iter().enumerate() {
        let script = format!(
            "env -u LOOPSMITH_CONFIG TERM=xterm-256color USER=tester \
             LOOPSMITH_STORAGE__DATA_DIR='{data}' '{bin}' console --socket '{socket}' \
             --graphics {mode}; \
             echo \"CONSOLE-EXIT=$?\"; stty -a | grep -o -- '-\\?icanon' | sed 's/^/MODE=/'; \
             exec sleep 120",
            data = dir.path().join("console-data").display(),
            bin = env!("CARGO_BIN_EXE_loopsmith"),
            socket = socket.display(),
        );
        let tmux = Tmux::start(mode, dir.path(), &script);
        tmux.wait_for("● console:tester");
        // Presses and the wheel (1000) in SGR encoding (1006), and no pointer motion (1002,
        // 1003): those would wake the console at every move.
        assert_eq!(tmux.display(MOUSE_MODES), "0011");
        tmux.keys(&["4"]);
        tmux.literal(&format!("a green square in {mode}"));
        tmux.keys(&["Enter"]);
        let job = n + 1;
        tmux.wait_for(&format!("job {job} done"));
        tmux.keys(&["Escape"]);
        tmux.wait_for("i or Enter: edit the form");
        // The Preview tab, clicked: row 1, column 40 is inside " 3 Preview ".
        tmux.literal("\x1b[<0;40;1M\x1b[<0;40;1m");
        let screen = tmux.wait_for(&format!("fps · {mode}"));
        assert!(screen.contains("space: pause/play"), "{screen}");
        assert!(
            !screen.contains('▀'),
            "the picture is not drawn in cells:\n{screen}"
        );
        for junk in ["_G", "a=T", "Pq", "1;1;", "m=1", "\u{1b}"] {
            assert!(
                !screen.contains(junk),
                "{junk:?} reached the screen:\n{screen}"
            );
        }

        tmux.keys(&["?"]);
        let help = tmux.wait_for("Keys · any key closes");
        assert!(help.contains("click a tab"), "{help}");
        assert!(
            help.contains('▀'),
            "around the help the clip is in cells:\n{help}"
        );
        tmux.keys(&["Escape"]);
        tmux.wait_for("space: pause/play");

        tmux.keys(&["q"]);
        let after = tmux.wait_for("MODE=");
        assert!(after.contains("CONSOLE-EXIT=0"), "{after}");
        assert!(after.contains("MODE=icanon"), "{after}");
        assert_eq!(tmux.display("#{alternate_on}"), "0");
        assert_eq!(
            tmux.display(MOUSE_MODES),
            "0000",
            "mouse reporting was left on"
        );
    }
    stop.cancel();
}
