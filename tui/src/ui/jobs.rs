use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table};

use loopsmith_protocol::{JobId, JobState};

use super::dashboard::truncate;
use super::{ago, bar, block, duration, selected_style, state_style, wrap, wrap_hanging};
use crate::app::{App, JobView};

/// The table's part of the screen, and the details pane's when it is open.
pub fn areas(area: Rect, app: &App) -> (Rect, Option<Rect>) {
    if app.job_details {
        let [a, b] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(area);
        (a, Some(b))
    } else {
        (area, None)
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let (list, details) = areas(area, app);
    draw_table(frame, list, app);
    if let Some(area) = details {
        draw_details(frame, area, app);
    }
}

fn draw_table(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let filter = if app.filter_editing {
        format!(" filter: {}▏", app.job_filter)
    } else if app.job_filter.is_empty() {
        String::new()
    } else {
        format!(" filter: {}", app.job_filter)
    };
    let title = format!(
        "Jobs {}/{} · {}{filter}",
        app.visible.len(),
        app.jobs.len(),
        app.state_filter.name()
    );
    // Only the rows on screen are built: with 10k jobs, building them all would cost more
    // than drawing.
    let height = area.height.saturating_sub(3) as usize;
    let mut offset = app.job_offset.get();
    if app.job_selected < offset {
        offset = app.job_selected;
    } else if height > 0 && app.job_selected >= offset + height {
        offset = app.job_selected + 1 - height;
    }
    offset = offset.min(app.visible.len().saturating_sub(height));
    app.job_offset.set(offset);

    let rows = app
        .visible
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .filter_map(|(i, id)| app.jobs.get(id).map(|v| (i, v)))
        .map(|(i, v)| {
            let row = row(app, v);
            if i == app.job_selected {
                row.style(selected_style())
            } else {
                row
            }
        });
    let table = Table::new(
        rows,
        [
            Constraint::Length(7),
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Length(18),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new([
            "id", "state", "progress", "user", "backend", "age", "prompt",
        ])
        .bold(),
    )
    .block(block(&title));
    frame.render_widget(table, area);
    if app.visible.is_empty() {
        let hint = if app.jobs.is_empty() {
            "no jobs yet — submit one on the Generate screen (4)"
        } else {
            "no job matches the filter"
        };
        frame.render_widget(
            Paragraph::new(hint).dim().centered(),
            super::centered(area, area.width.saturating_sub(2), 1),
        );
    }
}

fn row<'a>(app: &App, v: &'a JobView) -> Row<'a> {
    let job = &v.job;
    let progress = match &job.state {
        JobState::Queued => v
            .position
            .map(|p| format!("#{p} in line"))
            .unwrap_or_default(),
        JobState::Running { .. } => {
            format!("{} {:>2.0}%", bar(v.progress(), 6), v.progress() * 100.0)
        }
        _ => String::new(),
    };
    Row::new(vec![
        Line::from(job.id.to_string()),
        Line::from(Span::styled(job.state.name(), state_style(&job.state))),
        Line::from(progress).fg(Color::Cyan),
        Line::from(truncate(&job.user.to_string(), 18)),
        Line::from(job.backend.clone().unwrap_or_default()),
        Line::from(ago(app, job.timings.created_ms)),
        Line::from(job.params.user_prompt.as_str()),
    ])
}

fn draw_details(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let Some(v) = app.selected_job() else {
        frame.render_widget(
            Paragraph::new("no job selected").block(block("Details")),
            area,
        );
        return;
    };
    let job = &v.job;
    let p = &job.params;
    let t = &job.timings;
    let span = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => duration(b.saturating_sub(a)),
        _ => "–".into(),
    };
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::raw(format!("{name:<10}")).dim(),
            Span::raw(value),
        ])
    };
    let mut lines = vec![
        field("job", format!("{} (attempt {})", job.id, job.attempts)),
        Line::from(vec![
            Span::raw(format!("{:<10}", "state")).dim(),
            Span::styled(job.state.name(), state_style(&job.state).bold()),
        ]),
    ];
    // A failure comes first, where a short pane still shows it.
    if let JobState::Failed {
        reason,
        retryable,
        chain,
    } = &job.state
    {
        lines.extend(error_lines(
            job.id,
            reason,
            *retryable,
            chain,
            area.width.saturating_sub(2),
        ));
    }
    lines.extend([
        field("user", job.user.to_string()),
        field("prompt", p.user_prompt.clone()),
        field("rendered", p.prompt.clone()),
        field("style", p.style.clone()),
        field("seed", p.seed.to_string()),
        field(
            "shape",
            format!(
                "{} {} s at {} fps, motion {}",
                p.aspect, p.duration_secs, p.fps, p.motion
            ),
        ),
        field(
            "backend",
            format!(
                "{} (asked {})",
                job.backend.as_deref().unwrap_or("–"),
                p.backend
            ),
        ),
        field(
            "outputs",
            p.outputs
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        field("queued", span(Some(t.created_ms), t.started_ms)),
        field("render", span(t.started_ms, t.rendered_ms)),
        field("encode", span(t.rendered_ms, t.finished_ms)),
        field("total", span(Some(t.created_ms), t.finished_ms)),
    ]);
    match &job.state {
        JobState::Done { artifacts } => {
            lines.push(Line::from(""));
            for a in artifacts {
                lines.push(field(
                    a.kind.as_str(),
                    format!("{} ({} B)", a.path.display(), a.bytes),
                ));
            }
            lines.push(Line::from("p: play the clip").dim());
        }
        JobState::Cancelled { by } => lines.push(field("by", by.to_string())),
        _ => {}
    }
    frame.render_widget(wrap(Paragraph::new(lines)).block(block("Details")), area);
}

/// The sentence the requester saw, whether a retry may help, then the real error as the
/// engine recorded it: one cause a line, each wrapped under itself to `width` columns (the
/// paragraph's own wrapping would lose the indent).
fn error_lines(
    job: JobId,
    reason: &str,
    retryable: bool,
    chain: &[String],
    width: u16,
) -> Vec<Line<'static>> {
    const LABEL: &str = "          ";
    let red = Style::new().fg(Color::Red);
    let mut lines = Vec::new();
    for (i, text) in wrap_hanging(reason, LABEL, LABEL, width)
        .into_iter()
        .enumerate()
    {
        let text = text[LABEL.len()..].to_string();
        let label = if i == 0 { "error" } else { "" };
        lines.push(Line::from(vec![
            Span::raw(format!("{label:<10}")).dim(),
            Span::styled(text, red.bold()),
        ]));
    }
    lines.push(
        Line::from(if retryable {
            format!("{LABEL}retryable (r)")
        } else {
            format!("{LABEL}not retryable")
        })
        .dim(),
    );
    if chain.is_empty() {
        // Jobs recorded before the engine kept the chain.
        lines.push(Line::from(vec![
            Span::raw(format!("{:<10}", "cause")).dim(),
            Span::raw(format!("not recorded; see Logs for job={job}")).dim(),
        ]));
    }
    for (i, cause) in chain.iter().enumerate() {
        let (first, rest) = if i == 0 {
            (LABEL.to_string(), LABEL.to_string())
        } else {
            (format!("{LABEL}↳ "), format!("{LABEL}  "))
        };
        for (j, text) in wrap_hanging(cause, &first, &rest, width)
            .into_iter()
            .enumerate()
        {
            let text = text[LABEL.len()..].to_string();
            let label = if i == 0 && j == 0 { "cause" } else { "" };
            lines.push(Line::from(vec![
                Span::raw(format!("{label:<10}")).dim(),
                Span::styled(text, red),
            ]));
        }
    }
    lines
}
