use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Row, Table, TableState};

use super::dashboard::truncate;
use super::{block, centered, selected_style};
use crate::app::App;
use crate::forms::{StyleEditor, StyleField};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let rows = app.users.values().map(|u| {
        let style = [
            u.style.preset.clone(),
            u.style.suffix.as_ref().map(|s| format!("+{s}")),
            u.style.character.as_ref().map(|c| format!("@{c}")),
            u.style.seed_lock.map(|s| format!("seed {s}")),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let quota = if u.quota_limit == 0 {
            format!("{}/∞", u.quota_used)
        } else {
            format!("{}/{}", u.quota_used, u.quota_limit)
        };
        Row::new(vec![
            Line::from(u.key.platform.as_str()),
            Line::from(truncate(&u.key.id, 20)),
            Line::from(u.name.clone().unwrap_or_default()),
            Line::from(if style.is_empty() {
                "–".into()
            } else {
                style
            }),
            Line::from(quota),
            Line::from(u.jobs_total.to_string()),
            Line::from(u.spend_usd.map_or("–".into(), |s| format!("${s:.2}"))),
            if u.banned {
                Line::from(Span::styled("banned", Style::new().fg(Color::Red).bold()))
            } else {
                Line::from("")
            },
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(9),
            Constraint::Length(20),
            Constraint::Length(14),
            Constraint::Fill(1),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(7),
        ],
    )
    .header(
        Row::new([
            "platform", "id", "name", "style", "today", "jobs", "spend", "",
        ])
        .bold(),
    )
    .block(block(&format!(
        "Users {} · e: edit style  b: ban/unban",
        app.users.len()
    )))
    .row_highlight_style(selected_style());
    // The table state scrolls the list so the selected user stays in view, from where it was
    // last frame, like a pager; the offset is kept so a click finds the row it hit.
    let mut state = TableState::default()
        .with_offset(app.user_offset.get())
        .with_selected(Some(app.user_selected));
    frame.render_stateful_widget(table, area, &mut state);
    app.user_offset.set(state.offset());
}

pub fn draw_editor(frame: &mut Frame<'_>, body: Rect, editor: &StyleEditor) {
    let area = centered(body, 64, 9);
    frame.render_widget(Clear, area);
    let mut lines: Vec<Line<'_>> = StyleField::ALL
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let focused = i == editor.focus;
            let input = &editor.fields[i];
            let mut spans = vec![Span::styled(
                format!("{} {:<10}", if focused { "›" } else { " " }, field.label()),
                if focused {
                    Style::new().fg(Color::Cyan).bold()
                } else {
                    Style::new().dim()
                },
            )];
            if focused {
                let before: String = input.text.chars().take(input.cursor).collect();
                let at: String = input
                    .text
                    .chars()
                    .nth(input.cursor)
                    .map_or(" ".into(), String::from);
                let after: String = input.text.chars().skip(input.cursor + 1).collect();
                spans.push(Span::raw(before));
                spans.push(Span::styled(at, Style::new().reversed()));
                spans.push(Span::raw(after));
            } else {
                spans.push(Span::raw(input.text.clone()));
            }
            Line::from(spans)
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from("Tab: next field   Enter: save   Esc: cancel   empty: unset").dim());
    frame.render_widget(
        Paragraph::new(lines).block(block(&format!("Style of {}", editor.user))),
        area,
    );
}
