//! README's console screenshot: the Dashboard drawn on ratatui's TestBackend from the same
//! known data the screen tests use, written out as SVG (colours included). The test fails when
//! the committed picture no longer matches what the console draws; refresh it with
//! `UPDATE_SCREENSHOT=1 cargo test -p loopsmith-console --test screenshot`.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::app;
use loopsmith_console::ui;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

const WIDTH: u16 = 110;
const HEIGHT: u16 = 30;
const CELL_W: f32 = 8.4;
const CELL_H: f32 = 18.0;
const FOREGROUND: &str = "#d8dee9";
const BACKGROUND: &str = "#1d2128";

/// The xterm default palette for the named colours, so the picture looks like a terminal.
fn hex(color: Color) -> Option<String> {
    let named = |s: &str| Some(s.to_string());
    match color {
        Color::Reset => None,
        Color::Black => named("#000000"),
        Color::Red => named("#cd3131"),
        Color::Green => named("#0dbc79"),
        Color::Yellow => named("#e5e510"),
        Color::Blue => named("#2472c8"),
        Color::Magenta => named("#bc3fbc"),
        Color::Cyan => named("#11a8cd"),
        Color::Gray => named("#e5e5e5"),
        Color::DarkGray => named("#666666"),
        Color::LightRed => named("#f14c4c"),
        Color::LightGreen => named("#23d18b"),
        Color::LightYellow => named("#f5f543"),
        Color::LightBlue => named("#3b8eea"),
        Color::LightMagenta => named("#d670d6"),
        Color::LightCyan => named("#29b8db"),
        Color::White => named("#ffffff"),
        Color::Rgb(r, g, b) => Some(format!("#{r:02x}{g:02x}{b:02x}")),
        Color::Indexed(i) => {
            // The 6×6×6 cube and the grey ramp of the 256-colour palette.
            let (r, g, b) = match i {
                16..=231 => {
                    let i = i - 16;
                    let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
                    (level(i / 36), level((i / 6) % 6), level(i % 6))
                }
                232..=255 => {
                    let v = 8 + (i - 232) * 10;
                    (v, v, v)
                }
                _ => (0xcc, 0xcc, 0xcc),
            };
            Some(format!("#{r:02x}{g:02x}{b:02x}"))
        }
    }
}

fn escape(c: &str) -> String {
    c.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn svg(buffer: &Buffer) -> String {
    let area = buffer.area;
    let (w, h) = (
        f32::from(area.width) * CELL_W,
        f32::from(area.height) * CELL_H,
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\">"
    );
    let _ = writeln!(
        out,
        "<rect width=\"100%\" height=\"100%\" fill=\"{BACKGROUND}\"/>"
    );
    for y in 0..area.height {
        for x in 0..area.width {
            let cell = &buffer[(x, y)];
            let (px, py) = (f32::from(x) * CELL_W, f32::from(y) * CELL_H);
            let reversed = cell.modifier.contains(Modifier::REVERSED);
            let (fg, bg) = if reversed {
                (
                    hex(cell.bg).unwrap_or(BACKGROUND.into()),
                    hex(cell.fg).or(Some(FOREGROUND.into())),
                )
            } else {
                (hex(cell.fg).unwrap_or(FOREGROUND.into()), hex(cell.bg))
            };
            if let Some(bg) = bg {
                let _ = writeln!(
                    out,
                    "<rect x=\"{px:.1}\" y=\"{py:.1}\" width=\"{CELL_W}\" height=\"{CELL_H}\" fill=\"{bg}\"/>"
                );
            }
            let symbol = cell.symbol();
            if symbol.trim().is_empty() {
                continue;
            }
            let weight = if cell.modifier.contains(Modifier::BOLD) {
                " font-weight=\"bold\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<text x=\"{px:.1}\" y=\"{:.1}\" fill=\"{fg}\"{weight}>{}</text>",
                py + CELL_H * 0.75,
                escape(symbol)
            );
        }
    }
    out.push_str("</svg>\n");
    out
}

#[test]
fn the_readme_screenshot_is_what_the_dashboard_draws() {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("terminal");
    let app = app();
    terminal.draw(|f| ui::draw(f, &app)).expect("draws");
    let picture = svg(terminal.backend().buffer());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console-dashboard.svg");
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        std::fs::write(&path, &picture).expect("write the screenshot");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == picture,
        "docs/console-dashboard.svg is stale: run UPDATE_SCREENSHOT=1 cargo test -p loopsmith-console --test screenshot"
    );
}
