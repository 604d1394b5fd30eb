use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use loopsmith_protocol::JobState;

use super::{ago, backend_style, bar, block, duration, state_style};
use crate::app::App;
use crate::stats::stats;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let [top, middle] = Layout::vertical([Constraint::Length(6), Constraint::Fill(1)]).areas(area);
    let [summary, backends] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let [running, recent] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);

    let s = stats(app);
    let na = || "–".to_string();
    let spend = match &app.spend {
        Some(spend) => {
            let share = if spend.cap_usd > 0.0 {
                (spend.today_usd / spend.cap_usd) as f32
            } else {
                0.0
            };
            Line::from(vec![
                Span::raw("Spend today  "),
                Span::styled(
                    format!("${:.2} of ${:.2} ", spend.today_usd, spend.cap_usd),
                    if share >= 0.9 {
                        Style::new().fg(Color::Red).bold()
                    } else {
                        Style::new()
                    },
                ),
                Span::raw(bar(share, 10)).fg(Color::Magenta),
            ])
        }
        None => Line::from("Spend today  not tracked by this server").dim(),
    };
    let lines = vec![
        Line::from(vec![
            Span::raw("Queue        "),
            Span::raw(format!("{} waiting", app.queue_len)).bold(),
            Span::raw(format!("   {} running", s.running)),
        ]),
        Line::from(format!(
            "Last hour    {} done, {} failed or cancelled",
            s.done_last_hour, s.failed_last_hour
        )),
        Line::from(format!(
            "Latency      p50 {}   p95 {}",
            s.p50_ms.map_or_else(na, duration),
            s.p95_ms.map_or_else(na, duration)
        )),
        spend,
    ];
    frame.render_widget(Paragraph::new(lines).block(block("Engine")), summary);

    let rows: Vec<Line<'_>> = if app.backends.is_empty() {
        vec![Line::from("no backends reported").dim()]
    } else {
        app.backends
            .iter()
            .map(|b| {
                let detail = match &b.state {
                    loopsmith_protocol::control::BackendState::Busy { detail } => detail.clone(),
                    loopsmith_protocol::control::BackendState::Down { reason } => reason.clone(),
                    _ => String::new(),
                };
                Line::from(vec![
                    Span::raw(format!("{:<8}", b.name)).bold(),
                    Span::styled(format!("{:<8}", b.state.name()), backend_style(&b.state)),
                    Span::raw(format!("{}/{} ", b.running, b.capacity)),
                    Span::raw(detail).dim(),
                ])
            })
            .collect()
    };
    frame.render_widget(Paragraph::new(rows).block(block("Backends")), backends);

    let width = running.width.saturating_sub(2) as usize;
    let bar_width = width.saturating_sub(40).clamp(5, 30);
    let active: Vec<Line<'_>> = app
        .jobs
        .values()
        .filter(|v| {
            matches!(
                v.job.state,
                JobState::Running { .. } | JobState::Encoding { .. }
            )
        })
        .take(running.height.saturating_sub(2) as usize)
        .map(|v| {
            let eta = v
                .eta_ms
                .map(|e| format!(" eta {}", duration(e)))
                .unwrap_or_default();
            Line::from(vec![
                Span::raw(format!("#{:<6}", v.job.id.0)),
                Span::styled(
                    format!("{:<9}", v.job.state.name()),
                    state_style(&v.job.state),
                ),
                Span::raw(bar(v.progress(), bar_width)).fg(Color::Cyan),
                Span::raw(format!(" {:>3}%{eta} ", (v.progress() * 100.0).round())),
                Span::raw(truncate(&v.job.params.user_prompt, 24)).dim(),
            ])
        })
        .collect();
    let active = if active.is_empty() {
        vec![Line::from("nothing rendering").dim()]
    } else {
        active
    };
    frame.render_widget(Paragraph::new(active).block(block("Running")), running);

    let finished: Vec<Line<'_>> = app
        .jobs
        .values()
        .rev()
        .filter(|v| v.job.state.is_terminal())
        .take(recent.height.saturating_sub(2) as usize)
        .map(|v| {
            Line::from(vec![
                Span::raw(format!("#{:<6}", v.job.id.0)),
                Span::styled(
                    format!("{:<10}", v.job.state.name()),
                    state_style(&v.job.state),
                ),
                Span::raw(
                    v.job
                        .timings
                        .finished_ms
                        .map(|f| ago(app, f))
                        .unwrap_or_default(),
                )
                .dim(),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(finished).block(block("Finished")), recent);
}

pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}
