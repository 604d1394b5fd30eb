use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use loopsmith_protocol::JobState;

use super::{bar, block, duration, state_style};
use crate::app::App;
use crate::forms::{GenField, TextInput};
use crate::graphics::Placement;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) -> Option<Placement> {
    let [form, side] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let [form, progress] =
        Layout::vertical([Constraint::Length(11), Constraint::Fill(1)]).areas(form);
    let g = &app.generate;
    let mut lines = Vec::new();
    for field in GenField::ALL {
        let focused = g.editing && g.focus == field;
        let label = Span::styled(
            format!("{} {:<9}", if focused { "›" } else { " " }, field.label()),
            if focused {
                Style::new().fg(Color::Cyan).bold()
            } else {
                Style::new().dim()
            },
        );
        let value: Vec<Span<'_>> = match field {
            GenField::Prompt | GenField::Style | GenField::Seed => {
                let input = match field {
                    GenField::Prompt => &g.prompt,
                    GenField::Style => &g.style,
                    _ => &g.seed,
                };
                if focused {
                    with_cursor(input)
                } else {
                    vec![Span::raw(g.value(field))]
                }
            }
            _ => {
                let v = g.value(field);
                if focused {
                    vec![Span::raw(format!("‹ {v} ›")).cyan()]
                } else {
                    vec![Span::raw(v)]
                }
            }
        };
        let mut spans = vec![label];
        spans.extend(value);
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    lines.push(
        Line::from(if g.editing {
            "Enter submit · Tab field · ← → option · Esc done"
        } else {
            "i or Enter: edit the form · q: quit"
        })
        .dim(),
    );
    let who = app
        .operator()
        .map(|o| format!("Generate as {o}"))
        .unwrap_or_else(|| "Generate".into());
    frame.render_widget(Paragraph::new(lines).block(block(&who)), form);

    let status: Vec<Line<'_>> = match app.generated_job() {
        None => vec![Line::from("Submitted jobs show their progress here.").dim()],
        Some(v) => {
            let mut l = vec![Line::from(vec![
                Span::raw(format!("job {} ", v.job.id)),
                Span::styled(v.job.state.name(), state_style(&v.job.state).bold()),
            ])];
            match &v.job.state {
                JobState::Queued => l.push(Line::from(
                    v.position
                        .map(|p| format!("#{p} in line"))
                        .unwrap_or_else(|| "waiting".into()),
                )),
                JobState::Running { backend, .. } | JobState::Encoding { backend } => {
                    l.push(Line::from(vec![
                        Span::raw(bar(v.progress(), 24)).cyan(),
                        Span::raw(format!(" {:>3.0}% on {backend}", v.progress() * 100.0)),
                    ]));
                    if let Some(eta) = v.eta_ms {
                        l.push(Line::from(format!("about {} left", duration(eta))).dim());
                    }
                }
                JobState::Done { .. } => {
                    l.push(Line::from("done — the clip plays on the right").green())
                }
                JobState::Failed { reason, .. } => l.push(Line::from(reason.clone()).red()),
                JobState::Cancelled { by } => l.push(Line::from(format!("cancelled by {by}"))),
            }
            l
        }
    };
    frame.render_widget(Paragraph::new(status).block(block("Progress")), progress);
    super::preview::draw_in(frame, side, app, "Preview")
}

fn with_cursor(input: &TextInput) -> Vec<Span<'static>> {
    let before: String = input.text.chars().take(input.cursor).collect();
    let at: String = input
        .text
        .chars()
        .nth(input.cursor)
        .map_or(" ".into(), String::from);
    let after: String = input.text.chars().skip(input.cursor + 1).collect();
    vec![
        Span::raw(before),
        Span::styled(at, Style::new().reversed()),
        Span::raw(after),
    ]
}
