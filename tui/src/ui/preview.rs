use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::picture::HalfBlocks;
use super::{block, centered, wrap};
use crate::app::{App, PreviewState};

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    draw_in(frame, area, app, "Preview");
}

/// The player, also used beside the Generate form.
pub fn draw_in(frame: &mut Frame<'_>, area: Rect, app: &App, title: &str) {
    match &app.preview {
        PreviewState::Empty => {
            frame.render_widget(block(title), area);
            let inner = centered(area, area.width.saturating_sub(4), 2);
            frame.render_widget(
                wrap(Paragraph::new(
                    "No clip loaded. Pick a done job on the Jobs screen (2) and press p.",
                ))
                .dim()
                .centered(),
                inner,
            );
        }
        PreviewState::Loading(job) => {
            frame.render_widget(block(&format!("{title} · job {job}")), area);
            frame.render_widget(
                Paragraph::new("loading frames…").dim().centered(),
                centered(area, area.width.saturating_sub(4), 1),
            );
        }
        PreviewState::Failed { job, reason } => {
            frame.render_widget(block(&format!("{title} · job {job}")), area);
            frame.render_widget(
                wrap(Paragraph::new(format!("No preview: {reason}")))
                    .red()
                    .centered(),
                centered(area, area.width.saturating_sub(4), 3),
            );
        }
        PreviewState::Ready(player) => {
            let outer = block(&format!(
                "{title} · job {} · {}×{} · frame {}/{} at {} fps{}",
                player.job,
                player.width,
                player.height,
                player.frame + 1,
                player.frames.len(),
                player.fps,
                if player.playing { "" } else { " · paused" }
            ));
            let inner = outer.inner(area);
            frame.render_widget(outer, area);
            let [picture, hint] =
                Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(inner);
            if let Some(rgb) = player.frames.get(player.frame) {
                frame.render_widget(
                    HalfBlocks {
                        rgb,
                        width: player.width,
                        height: player.height,
                    },
                    picture,
                );
            }
            frame.render_widget(
                Line::from("space: pause/play   ← →: step when paused")
                    .dim()
                    .centered(),
                hint,
            );
        }
    }
}
