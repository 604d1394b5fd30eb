use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use loopsmith_protocol::control::LogLevel;

use super::block;
use crate::app::App;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let height = area.height.saturating_sub(2) as usize;
    // Walk back from the newest line: the view costs the screen's height, not the log's length.
    let mut shown: Vec<Line<'_>> = app
        .shown_logs()
        .rev()
        .skip(app.log_scroll)
        .take(height)
        .map(|l| {
            let secs = l.at_ms / 1000;
            Line::from(vec![
                Span::raw(format!(
                    "{:02}:{:02}:{:02} ",
                    secs / 3600 % 24,
                    secs / 60 % 60,
                    secs % 60
                ))
                .dim(),
                Span::styled(format!("{:<5} ", l.level.as_str()), level_style(l.level)),
                Span::raw(format!("{} ", l.target)).dim(),
                Span::raw(l.text.as_str()),
            ])
        })
        .collect();
    shown.reverse();
    let follow = if app.log_scroll == 0 {
        "following".to_string()
    } else {
        format!("{} lines up · f: follow", app.log_scroll)
    };
    let title = format!("Logs · {} and above (l) · {follow}", app.log_level.as_str());
    frame.render_widget(Paragraph::new(shown).block(block(&title)), area);
}

fn level_style(level: LogLevel) -> Style {
    match level {
        LogLevel::Trace => Style::new().fg(Color::DarkGray),
        LogLevel::Debug => Style::new().fg(Color::Blue),
        LogLevel::Info => Style::new().fg(Color::Green),
        LogLevel::Warn => Style::new().fg(Color::Yellow),
        LogLevel::Error => Style::new().fg(Color::Red).bold(),
    }
}
