//! Drawing. Every function here reads the [`App`] and writes cells; nothing changes state
//! except the Jobs and Users lists' scroll offsets, which only the frame size can decide.

mod backends;
mod dashboard;
mod generate;
mod help;
pub(crate) mod jobs;
mod logs;
pub mod picture;
mod preview;
mod users;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use loopsmith_protocol::JobState;
use loopsmith_protocol::control::BackendState;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::app::{App, Conn, Screen, Tone};
use crate::graphics::Placement;

/// Where the parts of a frame go. Drawing and mouse hit-testing both use it, so a click lands
/// on what was drawn there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regions {
    pub header: Rect,
    /// The red line under the header while not connected.
    pub banner: Option<Rect>,
    /// The current screen.
    pub body: Rect,
    pub footer: Rect,
}

pub fn regions(area: Rect, app: &App) -> Regions {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let (banner, body) = match &app.conn {
        Conn::Connected { .. } => (None, body),
        _ => {
            let [banner, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(body);
            (Some(banner), rest)
        }
    };
    Regions {
        header,
        banner,
        body,
        footer,
    }
}

/// Draws one frame.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    draw_frame(frame, app);
}

/// Draws one frame and says where a picture is to be drawn in pixels after it, if anywhere
/// (see [`crate::graphics`]).
pub fn draw_frame(frame: &mut Frame<'_>, app: &App) -> Option<Placement> {
    let Regions {
        header,
        banner,
        body,
        footer,
    } = regions(frame.area(), app);
    draw_header(frame, header, app);
    if let Some(banner) = banner {
        draw_banner(frame, banner, app);
    }
    let mut placement = None;
    match app.screen {
        Screen::Dashboard => dashboard::draw(frame, body, app),
        Screen::Jobs => jobs::draw(frame, body, app),
        Screen::Preview => placement = preview::draw(frame, body, app),
        Screen::Generate => placement = generate::draw(frame, body, app),
        Screen::Users => users::draw(frame, body, app),
        Screen::Backends => backends::draw(frame, body, app),
        Screen::Logs => logs::draw(frame, body, app),
    }
    draw_footer(frame, footer, app);
    if let Some(editor) = &app.style_editor {
        users::draw_editor(frame, body, editor);
    }
    if let Some(confirm) = &app.confirm {
        let area = centered(body, 50, 5);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(confirm.question.clone()).bold(),
                Line::from(""),
                Line::from("y: yes   any other key: no").dim(),
            ])
            .block(Block::bordered().title(" Confirm "))
            .centered(),
            area,
        );
    }
    if app.help {
        help::draw(frame, body);
    }
    placement
}

const BRAND: &str = " loopsmith ";

fn tab_label(i: usize, screen: Screen) -> String {
    format!(" {} {} ", i + 1, screen.title())
}

/// The screen whose tab is at `column` of the header row, if any.
pub fn tab_at(header: Rect, column: u16) -> Option<Screen> {
    let mut x = usize::from(header.x) + BRAND.width();
    let column = usize::from(column);
    for (i, screen) in Screen::ALL.iter().enumerate() {
        let end = x + tab_label(i, *screen).width();
        if (x..end).contains(&column) && column < usize::from(header.right()) {
            return Some(*screen);
        }
        x = end;
    }
    None
}

/// The item under row `y` of a bordered table with one header line that lists `len` items
/// from `offset` on; `None` for borders, the header, or below the last item.
pub fn table_row_at(table: Rect, offset: usize, len: usize, x: u16, y: u16) -> Option<usize> {
    let inner = table.inner(ratatui::layout::Margin::new(1, 1));
    let first_row = inner.y.checked_add(1)?;
    if x < inner.x || x >= inner.right() || y < first_row || y >= inner.bottom() {
        return None;
    }
    let index = offset + usize::from(y - first_row);
    (index < len).then_some(index)
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let mut spans = vec![Span::styled(BRAND, Style::new().bold().reversed())];
    for (i, screen) in Screen::ALL.iter().enumerate() {
        let label = tab_label(i, *screen);
        spans.push(if *screen == app.screen {
            Span::styled(label, Style::new().fg(Color::Cyan).bold().underlined())
        } else {
            Span::raw(label).dim()
        });
    }
    let conn = match &app.conn {
        Conn::Connected { operator, .. } => {
            Span::styled(format!(" ● {operator} "), Style::new().fg(Color::Green))
        }
        Conn::Connecting { attempt } => Span::styled(
            format!(" CONNECTING (try {attempt}) "),
            Style::new().fg(Color::Yellow).bold(),
        ),
        Conn::Disconnected { .. } => Span::styled(
            " DISCONNECTED ",
            Style::new().fg(Color::White).bg(Color::Red).bold(),
        ),
    };
    let width: usize = spans.iter().map(|s| s.width()).sum::<usize>() + conn.width();
    spans.push(Span::raw(
        " ".repeat((area.width as usize).saturating_sub(width)),
    ));
    spans.push(conn);
    frame.render_widget(Line::from(spans), area);
}

fn draw_banner(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let text = match &app.conn {
        Conn::Disconnected {
            reason,
            retry_in_ms,
        } => format!(
            " DISCONNECTED · retrying in {} · {reason} · {} · data shown is from before ",
            duration(*retry_in_ms),
            app.target,
        ),
        Conn::Connecting { attempt } => {
            format!(" Connecting to {} (attempt {attempt})… ", app.target)
        }
        Conn::Connected { .. } => String::new(),
    };
    frame.render_widget(
        Paragraph::new(text).style(Style::new().fg(Color::White).bg(Color::Red)),
        area,
    );
}

fn draw_footer(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let line = match &app.status {
        Some((text, tone)) => Line::from(Span::styled(
            format!(" {text}"),
            match tone {
                Tone::Info => Style::new(),
                Tone::Good => Style::new().fg(Color::Green),
                Tone::Bad => Style::new().fg(Color::Red).bold(),
            },
        )),
        None => Line::from(" ?: help   q: quit   1-7: screens").dim(),
    };
    frame.render_widget(line, area);
}

/// A rectangle of at most `w`×`h` in the middle of `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// "850 ms", "4.2 s", "3 m 05 s", "2 h 10 m".
pub fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} m {:02} s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{} h {:02} m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// How long ago a moment was, relative to the app's clock.
pub fn ago(app: &App, at_ms: u64) -> String {
    if app.now_ms == 0 || at_ms > app.now_ms {
        return "now".into();
    }
    let d = app.now_ms - at_ms;
    match d {
        0..60_000 => format!("{}s ago", d / 1000),
        60_000..3_600_000 => format!("{}m ago", d / 60_000),
        3_600_000..86_400_000 => format!("{}h ago", d / 3_600_000),
        _ => format!("{}d ago", d / 86_400_000),
    }
}

pub fn state_style(state: &JobState) -> Style {
    match state {
        JobState::Queued => Style::new().fg(Color::Yellow),
        JobState::Running { .. } => Style::new().fg(Color::Cyan),
        JobState::Encoding { .. } => Style::new().fg(Color::Blue),
        JobState::Done { .. } => Style::new().fg(Color::Green),
        JobState::Failed { .. } => Style::new().fg(Color::Red),
        JobState::Cancelled { .. } => Style::new().fg(Color::DarkGray),
    }
}

pub fn backend_style(state: &BackendState) -> Style {
    match state {
        BackendState::Ready => Style::new().fg(Color::Green),
        BackendState::Busy { .. } => Style::new().fg(Color::Yellow),
        BackendState::Down { .. } => Style::new().fg(Color::Red).bold(),
        BackendState::Paused => Style::new().fg(Color::Magenta),
    }
}

/// A text progress bar, `width` cells wide, with eighths for a smooth edge.
pub fn bar(fraction: f32, width: usize) -> String {
    const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let fraction = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let total = (fraction * width as f32 * 8.0).round() as usize;
    let mut s = "█".repeat(total / 8);
    if total / 8 < width {
        s.push(EIGHTHS[total % 8]);
        s.push_str(&" ".repeat(width - total / 8 - 1));
    }
    s
}

pub fn block(title: &str) -> Block<'static> {
    Block::bordered().title(Line::from(format!(" {title} ")).bold())
}

pub fn selected_style() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

pub fn wrap(p: Paragraph<'_>) -> Paragraph<'_> {
    p.wrap(Wrap { trim: false })
}

/// `text` word-wrapped to `width` columns, the first line after `first` and the others after
/// `rest`, so a wrapped entry stays indented under itself. A word wider than a line is cut.
pub fn wrap_hanging(text: &str, first: &str, rest: &str, width: u16) -> Vec<String> {
    let width = usize::from(width);
    let mut lines = Vec::new();
    let mut line = first.to_string();
    let mut used = first.width();
    let mut empty = true;
    for word in text.split_whitespace() {
        let mut word = word;
        loop {
            let gap = usize::from(!empty);
            let word_width = word.width();
            if used + gap + word_width <= width {
                if !empty {
                    line.push(' ');
                }
                line.push_str(word);
                used += gap + word_width;
                empty = false;
                break;
            }
            if !empty {
                // Start a new line and try the word again there.
                lines.push(std::mem::replace(&mut line, rest.to_string()));
                used = rest.width();
                empty = true;
                continue;
            }
            // An empty line and the word still does not fit: cut it at the line's end (at
            // least one character, so a line too narrow for anything still ends).
            let room = width.saturating_sub(used);
            let mut cut = 0;
            let mut taken = 0;
            for (i, c) in word.char_indices() {
                let w = c.width().unwrap_or(0);
                if taken + w > room && cut > 0 {
                    break;
                }
                taken += w;
                cut = i + c.len_utf8();
            }
            line.push_str(&word[..cut]);
            lines.push(std::mem::replace(&mut line, rest.to_string()));
            used = rest.width();
            word = &word[cut..];
            if word.is_empty() {
                break;
            }
        }
    }
    if !empty || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_proportionally_and_stay_their_width() {
        assert_eq!(bar(0.0, 4), "    ");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██  ");
        assert_eq!(bar(f32::NAN, 3), "   ");
        for i in 0..=100 {
            assert_eq!(bar(i as f32 / 100.0, 7).chars().count(), 7);
        }
    }

    #[test]
    fn wrapped_causes_keep_their_indent_and_their_width() {
        assert_eq!(
            wrap_hanging("the denoiser failed at step 3", "  ↳ ", "    ", 16),
            vec!["  ↳ the denoiser", "    failed at", "    step 3"]
        );
        assert_eq!(wrap_hanging("short", "  ", "  ", 40), vec!["  short"]);
        // A word wider than the line is cut, never left to overflow.
        let lines = wrap_hanging("Name:'/unet/down.0/conv/Conv_output_0'", "  ", "  ", 12);
        assert!(lines.iter().all(|l| l.width() <= 12), "{lines:?}");
        assert_eq!(
            lines.concat().replace(' ', ""),
            "Name:'/unet/down.0/conv/Conv_output_0'"
        );
        // Wide characters count as two columns.
        assert!(
            wrap_hanging("界界界界界界", "", "", 5)
                .iter()
                .all(|l| l.width() <= 5)
        );
        // Nothing to wrap, or no room at all, still ends.
        assert_eq!(wrap_hanging("", "  ", "  ", 10), vec!["  "]);
        assert!(!wrap_hanging("abc def", "  ", "  ", 0).is_empty());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(4_200), "4.2 s");
        assert_eq!(duration(185_000), "3 m 05 s");
        assert_eq!(duration(7_800_000), "2 h 10 m");
    }
}
