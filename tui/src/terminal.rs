//! Terminal hygiene: raw mode, the alternate screen and mouse reporting go on together and
//! come off together, on return, on error and on panic, so the operator's shell is never left
//! broken.

use std::fmt;
use std::io::{self, Stdout};
use std::sync::Once;

use crossterm::cursor::{Hide, Show};
use crossterm::event::DisableMouseCapture;
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Owns the terminal while the UI runs; dropping it restores the terminal.
#[derive(Debug)]
pub struct TerminalGuard {
    pub terminal: Term,
}

static PANIC_HOOK: Once = Once::new();

/// Asks for button presses and the wheel only (X10-style reporting, SGR encoding), not
/// crossterm's `EnableMouseCapture`, which also asks for every pointer move: those would wake
/// the console for nothing each time the pointer crosses the window.
#[derive(Debug, Clone, Copy)]
pub struct EnableClicks;

impl crossterm::Command for EnableClicks {
    fn write_ansi(&self, f: &mut impl fmt::Write) -> fmt::Result {
        f.write_str("\x1b[?1000h\x1b[?1006h")
    }
}

impl TerminalGuard {
    /// Raw mode, the alternate screen, a hidden cursor, and mouse clicks when `mouse`.
    pub fn enter(mouse: bool) -> io::Result<TerminalGuard> {
        PANIC_HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                // Restore first, so the panic message lands on a normal screen.
                restore();
                previous(info);
            }));
        });
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        let entered = if mouse {
            execute!(stdout, EnterAlternateScreen, Hide, EnableClicks)
        } else {
            execute!(stdout, EnterAlternateScreen, Hide)
        };
        if let Err(e) = entered {
            restore();
            return Err(e);
        }
        let terminal = match Terminal::new(CrosstermBackend::new(stdout)) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Turns mouse reporting off, leaves raw mode and the alternate screen and shows the cursor;
/// safe to call twice, and whether or not the mouse was on (turning off a mode that is off
/// does nothing).
pub fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        Show
    );
}
