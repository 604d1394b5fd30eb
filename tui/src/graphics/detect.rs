//! Which picture mode to use. `--graphics` decides when it names a mode; `auto` goes by the
//! environment first and asks the terminal only when that says nothing:
//!
//! 1. Inside tmux or screen (`TMUX`, `STY`, `TERM=screen*|tmux*`): half-blocks. Multiplexers
//!    pass pictures through only when configured to, and draw their own panes over them.
//! 2. `TERM` unset, `dumb` or `linux`: half-blocks.
//! 3. kitty (`KITTY_WINDOW_ID`, `TERM=xterm-kitty`), Ghostty (`TERM=xterm-ghostty`) or
//!    `TERM_PROGRAM` WezTerm or ghostty: kitty graphics.
//! 4. `TERM` naming sixel, foot or mlterm: sixel.
//! 5. Anything else is asked, once, before the UI loop starts: `CSI 16 t` (the cell size in
//!    pixels) then `CSI c` (primary device attributes, which every VT-style terminal answers,
//!    so its reply marks the end of the answers). Attribute 4 in that reply means sixel. The
//!    wait is at most [`ASK_TIMEOUT`]; a terminal that has not answered by then gets
//!    half-blocks, and its late reply is read and dropped by crossterm's input parser.
//!
//! Sixel pictures are drawn at their pixel size, so sixel also needs the cell size: from the
//! terminal's window size report (`TIOCGWINSZ`), else from the `16 t` answer. With neither,
//! `auto` falls back to half-blocks, and an explicit `--graphics sixel` assumes 10×20 pixels.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use super::{Choice, Graphics, Mode};

/// Longest wait for the terminal's answers.
pub const ASK_TIMEOUT: Duration = Duration::from_millis(200);
/// The questions: cell size in pixels, then primary device attributes.
pub const QUERY: &str = "\x1b[16t\x1b[c";
/// The cell size an explicit `--graphics sixel` assumes when the terminal does not say.
pub const ASSUMED_CELL_PX: (u16, u16) = (10, 20);

/// What the environment says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Use(Mode),
    /// Nothing conclusive: ask the terminal.
    Ask,
}

/// Reads the environment through `var` (so tests need not touch the process's).
pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Verdict {
    let term = var("TERM").unwrap_or_default();
    let program = var("TERM_PROGRAM").unwrap_or_default();
    let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
    if set("TMUX") || set("STY") || term.starts_with("screen") || term.starts_with("tmux") {
        return Verdict::Use(Mode::HalfBlocks);
    }
    if term.is_empty() || term == "dumb" || term == "linux" {
        return Verdict::Use(Mode::HalfBlocks);
    }
    if set("KITTY_WINDOW_ID")
        || term == "xterm-kitty"
        || term == "xterm-ghostty"
        || program == "WezTerm"
        || program.eq_ignore_ascii_case("ghostty")
    {
        return Verdict::Use(Mode::Kitty);
    }
    if term.contains("sixel") || term.starts_with("foot") || term.starts_with("mlterm") {
        return Verdict::Use(Mode::Sixel);
    }
    Verdict::Ask
}

/// What the terminal answered to [`QUERY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reply {
    /// The device attributes arrived, so nothing more will.
    pub answered: bool,
    /// Attribute 4 (sixel graphics) was among them.
    pub sixel: bool,
    /// The cell size from `CSI 6 ; height ; width t`, as (width, height).
    pub cell_px: Option<(u16, u16)>,
}

/// Finds the answers in whatever the terminal sent, ignoring anything around them.
pub fn parse_reply(bytes: &[u8]) -> Reply {
    let mut reply = Reply::default();
    let mut i = 0;
    while let Some(start) = find(&bytes[i..], b"\x1b[").map(|p| p + i) {
        let body_start = start + 2;
        // A CSI sequence: parameter bytes, then one final byte in @..~.
        let Some(len) = bytes[body_start..]
            .iter()
            .position(|b| (0x40..=0x7e).contains(b))
        else {
            break;
        };
        let body = &bytes[body_start..body_start + len];
        let last = bytes[body_start + len];
        let text = String::from_utf8_lossy(body);
        match (last, text.strip_prefix('?')) {
            (b'c', Some(attributes)) => {
                reply.answered = true;
                reply.sixel = attributes.split(';').any(|a| a == "4");
            }
            (b't', None) => {
                let fields: Vec<&str> = text.split(';').collect();
                if let ["6", h, w] = fields[..]
                    && let (Ok(h), Ok(w)) = (h.parse::<u16>(), w.parse::<u16>())
                    && h > 0
                    && w > 0
                {
                    reply.cell_px = Some((w, h));
                }
            }
            _ => {}
        }
        i = body_start + len + 1;
    }
    reply
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A cell's size from the window size the kernel holds: (width, height) in pixels, when the
/// terminal filled it in.
pub fn cell_px_from_window(columns: u16, rows: u16, width: u16, height: u16) -> Option<(u16, u16)> {
    if columns == 0 || rows == 0 || width == 0 || height == 0 {
        return None;
    }
    let cell = (width / columns, height / rows);
    (cell.0 > 0 && cell.1 > 0).then_some(cell)
}

/// The mode to use. `window_cell_px` is the cell size from the window size report; `ask`
/// sends [`QUERY`] and returns what came back, and is called only when needed.
pub fn resolve(
    choice: Choice,
    var: impl Fn(&str) -> Option<String>,
    window_cell_px: Option<(u16, u16)>,
    ask: impl FnOnce() -> Vec<u8>,
) -> Graphics {
    let graphics = |mode, cell_px| Graphics { mode, cell_px };
    match choice {
        Choice::HalfBlocks => Graphics::HALF_BLOCKS,
        // The terminal scales kitty pictures itself; the cell size only sharpens the fit.
        Choice::Kitty => graphics(Mode::Kitty, window_cell_px),
        Choice::Sixel => {
            let cell = window_cell_px
                .or_else(|| parse_reply(&ask()).cell_px)
                .unwrap_or(ASSUMED_CELL_PX);
            graphics(Mode::Sixel, Some(cell))
        }
        Choice::Auto => match from_env(var) {
            Verdict::Use(Mode::HalfBlocks) => Graphics::HALF_BLOCKS,
            Verdict::Use(Mode::Kitty) => graphics(Mode::Kitty, window_cell_px),
            Verdict::Use(Mode::Sixel) => {
                match window_cell_px.or_else(|| parse_reply(&ask()).cell_px) {
                    Some(cell) => graphics(Mode::Sixel, Some(cell)),
                    None => Graphics::HALF_BLOCKS,
                }
            }
            Verdict::Ask => {
                let reply = parse_reply(&ask());
                match (reply.sixel, window_cell_px.or(reply.cell_px)) {
                    (true, Some(cell)) => graphics(Mode::Sixel, Some(cell)),
                    _ => Graphics::HALF_BLOCKS,
                }
            }
        },
    }
}

/// [`resolve`] against this process's environment and terminal. Call with the terminal in
/// raw mode and before anything else reads input, so the answers are not taken for keys.
pub fn detect(choice: Choice) -> Graphics {
    let window = crossterm::terminal::window_size()
        .ok()
        .and_then(|w| cell_px_from_window(w.columns, w.rows, w.width, w.height));
    resolve(
        choice,
        |name| std::env::var(name).ok(),
        window,
        || ask_terminal(ASK_TIMEOUT),
    )
}

/// Sends [`QUERY`] and collects the answer until the device attributes arrive or `timeout`
/// passes. Reads stdin with `VMIN=0 VTIME=1` (a read returns after at most a tenth of a
/// second without input), so there is no thread to leave blocked and no busy loop; the
/// terminal's settings are put back before returning.
pub fn ask_terminal(timeout: Duration) -> Vec<u8> {
    use rustix::termios::{OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr};
    let stdin = io::stdin();
    let Ok(saved) = tcgetattr(&stdin) else {
        return Vec::new();
    };
    let mut quick = saved.clone();
    quick.special_codes[SpecialCodeIndex::VMIN] = 0;
    quick.special_codes[SpecialCodeIndex::VTIME] = 1;
    if tcsetattr(&stdin, OptionalActions::Now, &quick).is_err() {
        return Vec::new();
    }
    let mut answer = Vec::new();
    let mut out = io::stdout();
    if out
        .write_all(QUERY.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
    {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 256];
        while Instant::now() < deadline && !parse_reply(&answer).answered {
            match rustix::io::read(&stdin, &mut buf) {
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
    }
    let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_environment_decides_where_it_can() {
        let cases: &[(&[(&str, &str)], Verdict)] = &[
            (&[("TERM", "xterm-kitty")], Verdict::Use(Mode::Kitty)),
            (
                &[("TERM", "xterm-256color"), ("KITTY_WINDOW_ID", "1")],
                Verdict::Use(Mode::Kitty),
            ),
            (
                &[("TERM", "xterm-256color"), ("TERM_PROGRAM", "WezTerm")],
                Verdict::Use(Mode::Kitty),
            ),
            (&[("TERM", "xterm-ghostty")], Verdict::Use(Mode::Kitty)),
            (&[("TERM", "foot")], Verdict::Use(Mode::Sixel)),
            (&[("TERM", "foot-extra")], Verdict::Use(Mode::Sixel)),
            (&[("TERM", "mlterm")], Verdict::Use(Mode::Sixel)),
            (&[("TERM", "xterm-sixel")], Verdict::Use(Mode::Sixel)),
            // Multiplexers win over everything, even a kitty outside them.
            (
                &[("TERM", "tmux-256color"), ("KITTY_WINDOW_ID", "1")],
                Verdict::Use(Mode::HalfBlocks),
            ),
            (
                &[("TERM", "xterm-kitty"), ("TMUX", "/tmp/tmux-0/default,1,0")],
                Verdict::Use(Mode::HalfBlocks),
            ),
            (&[("TERM", "screen.xterm")], Verdict::Use(Mode::HalfBlocks)),
            (
                &[("TERM", "foot"), ("STY", "123.pts-0")],
                Verdict::Use(Mode::HalfBlocks),
            ),
            (&[("TERM", "linux")], Verdict::Use(Mode::HalfBlocks)),
            (&[("TERM", "dumb")], Verdict::Use(Mode::HalfBlocks)),
            (&[], Verdict::Use(Mode::HalfBlocks)),
            (&[("TERM", "xterm-256color")], Verdict::Ask),
            // An empty TMUX is not tmux.
            (&[("TERM", "xterm"), ("TMUX", "")], Verdict::Ask),
        ];
        for (pairs, expected) in cases {
            assert_eq!(from_env(env(pairs)), *expected, "{pairs:?}");
        }
    }

    #[test]
    fn replies_are_read_from_whatever_surrounds_them() {
        let xterm = parse_reply(b"\x1b[6;20;10t\x1b[?63;1;2;4;6;9;15;22c");
        assert_eq!(
            xterm,
            Reply {
                answered: true,
                sixel: true,
                cell_px: Some((10, 20)),
            }
        );
        // VTE: no sixel, no cell size; a key pressed meanwhile around it.
        let vte = parse_reply(b"a\x1b[?65;1;9cb");
        assert_eq!(
            vte,
            Reply {
                answered: true,
                sixel: false,
                cell_px: None,
            }
        );
        // "14" is not "4"; a partial reply is not an answer; garbage is nothing.
        assert!(!parse_reply(b"\x1b[?62;14;22c").sixel);
        assert!(!parse_reply(b"\x1b[?62;4").answered);
        assert_eq!(parse_reply(b"\x1b[6;0;0t\x1b[\x1b[?"), Reply::default());
        assert_eq!(parse_reply(b"\x1b[6;99999;8t").cell_px, None);
        assert_eq!(
            parse_reply(&[0xff, 0x1b, b'[', 0xfe, b'c']),
            Reply::default()
        );
    }

    #[test]
    fn cell_size_comes_from_the_window_when_it_is_filled_in() {
        assert_eq!(cell_px_from_window(80, 24, 800, 480), Some((10, 20)));
        assert_eq!(cell_px_from_window(80, 24, 0, 0), None);
        assert_eq!(cell_px_from_window(0, 0, 800, 480), None);
        assert_eq!(cell_px_from_window(800, 24, 100, 480), None);
    }

    /// A terminal that answers with `reply`, counting the questions.
    fn terminal<'a>(reply: &'static [u8], asked: &'a Cell<u32>) -> impl FnOnce() -> Vec<u8> + 'a {
        move || {
            asked.set(asked.get() + 1);
            reply.to_vec()
        }
    }

    #[test]
    fn auto_asks_only_when_the_environment_is_silent() {
        let asked = Cell::new(0);
        let xterm = env(&[("TERM", "xterm-256color")]);
        let sixel_xterm: &[u8] = b"\x1b[6;20;10t\x1b[?63;4c";
        assert_eq!(
            resolve(Choice::Auto, &xterm, None, terminal(sixel_xterm, &asked)),
            Graphics {
                mode: Mode::Sixel,
                cell_px: Some((10, 20)),
            }
        );
        // The window's size report wins over the answer.
        assert_eq!(
            resolve(
                Choice::Auto,
                &xterm,
                Some((8, 16)),
                terminal(sixel_xterm, &asked)
            )
            .cell_px,
            Some((8, 16))
        );
        // Sixel without a cell size, no sixel, or no answer: half-blocks.
        for reply in [&b"\x1b[?63;4c"[..], b"\x1b[?65;1;9c", b""] {
            let reply: &'static [u8] = Box::leak(reply.to_vec().into_boxed_slice());
            assert_eq!(
                resolve(Choice::Auto, &xterm, None, terminal(reply, &asked)),
                Graphics::HALF_BLOCKS
            );
        }
        assert_eq!(asked.get(), 5);

        // kitty and tmux are known from the environment: nothing is asked.
        let kitty = env(&[("TERM", "xterm-kitty")]);
        assert_eq!(
            resolve(Choice::Auto, &kitty, None, terminal(b"", &asked)).mode,
            Mode::Kitty
        );
        let tmux = env(&[("TERM", "tmux-256color"), ("TMUX", "x")]);
        assert_eq!(
            resolve(Choice::Auto, &tmux, None, terminal(b"", &asked)),
            Graphics::HALF_BLOCKS
        );
        assert_eq!(asked.get(), 5);
    }

    #[test]
    fn an_explicit_choice_is_kept() {
        let asked = Cell::new(0);
        let tmux = env(&[("TERM", "tmux-256color"), ("TMUX", "x")]);
        assert_eq!(
            resolve(Choice::Kitty, &tmux, None, terminal(b"", &asked)).mode,
            Mode::Kitty
        );
        assert_eq!(
            resolve(
                Choice::HalfBlocks,
                env(&[("TERM", "xterm-kitty")]),
                None,
                || { unreachable!("nothing to ask") }
            ),
            Graphics::HALF_BLOCKS
        );
        assert_eq!(asked.get(), 0);
        // Sixel needs a cell size: the window's, the terminal's, or an assumed one.
        assert_eq!(
            resolve(
                Choice::Sixel,
                &tmux,
                None,
                terminal(b"\x1b[6;18;9t\x1b[?1c", &asked)
            ),
            Graphics {
                mode: Mode::Sixel,
                cell_px: Some((9, 18)),
            }
        );
        assert_eq!(
            resolve(Choice::Sixel, &tmux, None, terminal(b"", &asked)).cell_px,
            Some(ASSUMED_CELL_PX)
        );
        assert_eq!(asked.get(), 2);
    }
}
