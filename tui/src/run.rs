//! The event loop: keys, server reports and timers in; a redraw only when something changed.

use std::io::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{self, Event};
use crossterm::queue;
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use ratatui::layout::Rect;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::app::{Action, App};
use crate::client::{self, Connect};
use crate::graphics::{Choice, Painter, detect};
use crate::terminal::{Term, TerminalGuard};
use crate::ui;

/// How the console attaches and who it says it is.
pub struct Options {
    pub connect: Box<dyn Connect>,
    /// The operator's login, sent in the hello.
    pub operator: Option<String>,
    /// Whether to ask the terminal for mouse clicks and the wheel (`--no-mouse` turns it off
    /// where capturing the mouse gets in the way, e.g. of selecting text).
    pub mouse: bool,
    /// How to draw pictures (`--graphics`); `Auto` finds out what the terminal supports.
    pub graphics: Choice,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("connect", &self.connect.describe())
            .field("operator", &self.operator)
            .field("mouse", &self.mouse)
            .field("graphics", &self.graphics)
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs the console until the operator quits. Must be called inside a tokio runtime.
pub async fn run(options: Options) -> io::Result<()> {
    // A terminal closing (SIGHUP) or a polite kill (SIGTERM) ends the console like `q` does,
    // so the terminal is restored and an embedded engine shuts down cleanly.
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;

    let mut guard = TerminalGuard::enter(options.mouse)?;
    // Before the input reader starts, so the terminal's answers are not taken for keys. At
    // most a fifth of a second, and only when the environment does not already say.
    let mut painter = Painter::new(detect::detect(options.graphics));
    let stop = CancellationToken::new();
    let (net_tx, mut net_rx) = mpsc::channel(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let mut app = App::new(options.connect.describe());
    app.graphics = painter.graphics();
    let client = tokio::spawn(client::run(
        options.connect,
        options.operator,
        net_tx,
        cmd_rx,
        stop.clone(),
    ));

    // crossterm's reader blocks, so it lives on its own thread; the poll timeout is only how
    // often it checks whether to stop, not a redraw rate.
    let (key_tx, mut keys) = mpsc::channel::<Event>(256);
    let reader_stop = stop.clone();
    let reader = std::thread::spawn(move || {
        while !reader_stop.is_cancelled() {
            match event::poll(Duration::from_millis(200)) {
                Ok(true) => match event::read() {
                    Ok(ev) => {
                        if key_tx.blocking_send(ev).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });

    // Relative times ("3s ago", ETAs) move once a second; nothing else redraws on a timer.
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let result = loop {
        app.now_ms = now_ms();
        if app.dirty {
            app.dirty = false;
            if let Err(e) = draw(&mut guard.terminal, &app, &mut painter) {
                break Err(e);
            }
        }
        let frame = app.frame_interval_ms().map(Duration::from_millis);
        let actions = tokio::select! {
            net = net_rx.recv() => match net {
                Some(net) => {
                    let mut actions = app.on_net(net);
                    // Take what else is already here before drawing: a burst of events
                    // becomes one frame.
                    for _ in 0..256 {
                        match net_rx.try_recv() {
                            Ok(more) => actions.extend(app.on_net(more)),
                            Err(_) => break,
                        }
                    }
                    actions
                }
                None => break Ok(()),
            },
            key = keys.recv() => match key {
                Some(Event::Key(key)) => app.on_key(key),
                Some(Event::Resize(..)) => {
                    app.dirty = true;
                    // ratatui clears the screen on a resize, pictures included; the cell size
                    // may have changed with the font.
                    let mut graphics = painter.graphics();
                    if let Ok(w) = crossterm::terminal::window_size()
                        && let Some(cell) =
                            detect::cell_px_from_window(w.columns, w.rows, w.width, w.height)
                    {
                        graphics.cell_px = Some(cell);
                    }
                    painter.set_graphics(graphics);
                    painter.invalidate();
                    app.graphics = graphics;
                    Vec::new()
                }
                Some(Event::Mouse(mouse)) => match guard.terminal.size() {
                    Ok(size) => app.on_mouse(mouse, Rect::new(0, 0, size.width, size.height)),
                    Err(e) => break Err(e),
                },
                Some(_) => Vec::new(),
                None => break Err(io::Error::other("the terminal stopped sending input")),
            },
            _ = hangup.recv() => break Ok(()),
            _ = terminate.recv() => break Ok(()),
            _ = clock.tick() => {
                app.dirty = true;
                Vec::new()
            }
            _ = tokio::time::sleep(frame.unwrap_or(Duration::MAX)), if frame.is_some() => {
                app.tick_player();
                Vec::new()
            }
        };
        let mut quit = false;
        for action in actions {
            match action {
                Action::Quit => quit = true,
                Action::Send(command) => {
                    if cmd_tx.try_send(command).is_err() {
                        app.set_status(
                            "the link to the engine is busy; the command was not sent",
                            crate::app::Tone::Bad,
                        );
                    }
                }
            }
        }
        if quit {
            break Ok(());
        }
    };
    stop.cancel();
    let _ = client.await;
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    let backend = guard.terminal.backend_mut();
    let _ = painter.finish(backend).and_then(|()| backend.flush());
    drop(guard);
    result
}

/// Draws a frame, then the picture in pixels when there is one. In a graphics mode the two go
/// out as one synchronized update, so terminals that support it never show one without the
/// other.
fn draw(terminal: &mut Term, app: &App, painter: &mut Painter) -> io::Result<()> {
    if !painter.active() {
        terminal.draw(|f| ui::draw(f, app))?;
        return Ok(());
    }
    queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    let mut placement = None;
    terminal.draw(|f| placement = ui::draw_frame(f, app))?;
    if painter.needs_clear(placement.as_ref()) {
        // The skipped cells still hold whatever was there: start from a clean screen.
        terminal.clear()?;
        terminal.draw(|f| placement = ui::draw_frame(f, app))?;
    }
    painter.paint(placement, &app.preview, terminal.backend_mut())?;
    queue!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    terminal.backend_mut().flush()
}
