use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::{block, centered};
use crate::keys::HELP;

/// Every binding from [`HELP`], in two columns so it fits a 24-row terminal.
pub fn draw(frame: &mut Frame<'_>, body: Rect) {
    let mut lines: Vec<Line<'_>> = Vec::new();
    let mut section = "";
    for (s, keys, what) in HELP {
        if *s != section {
            lines.push(Line::from(*s).bold().cyan());
            section = s;
        }
        lines.push(Line::from(vec![
            Span::raw(format!(" {keys:<18}")).bold(),
            Span::raw(*what),
        ]));
    }
    // Split at a section start near the middle so no section straddles the columns.
    let middle = lines.len() / 2;
    let split = (middle..lines.len())
        .find(|&i| HELP.iter().any(|(s, _, _)| lines[i].to_string() == *s))
        .unwrap_or(middle);
    let right = lines.split_off(split);
    let rows = lines.len().max(right.len()) as u16;
    let area = centered(body, 118, rows + 2);
    frame.render_widget(Clear, area);
    let outer = block("Keys · any key closes");
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [a, b] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), a);
    frame.render_widget(Paragraph::new(right), b);
}
