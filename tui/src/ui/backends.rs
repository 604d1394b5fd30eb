use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Stylize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table, TableState};

use loopsmith_protocol::control::BackendState;

use super::{backend_style, bar, block, selected_style};
use crate::app::App;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let rows = app.backends.iter().map(|b| {
        let detail = match &b.state {
            BackendState::Busy { detail } => detail.clone(),
            BackendState::Down { reason } => reason.clone(),
            BackendState::Paused => "no new jobs go here; p resumes".into(),
            BackendState::Ready => String::new(),
        };
        let load = if b.capacity == 0 {
            0.0
        } else {
            b.running as f32 / b.capacity as f32
        };
        Row::new(vec![
            Line::from(b.name.clone()).bold(),
            Line::from(Span::styled(b.state.name(), backend_style(&b.state))),
            Line::from(b.model.clone()),
            Line::from(b.provider.clone()),
            Line::from(b.device.clone()),
            Line::from(format!("{} {}/{}", bar(load, 6), b.running, b.capacity)),
            Line::from(detail).dim(),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(18),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new([
            "name", "state", "model", "provider", "device", "load", "detail",
        ])
        .bold(),
    )
    .block(block(&format!(
        "Backends · queue {} · p: pause/resume",
        app.queue_len
    )))
    .row_highlight_style(selected_style());
    let mut state = TableState::default().with_selected(Some(app.backend_selected));
    frame.render_stateful_widget(table, area, &mut state);
}
