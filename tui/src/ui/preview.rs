use ratatui::Frame;
use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Stylize;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::picture::HalfBlocks;
use super::{block, centered, wrap};
use crate::app::{App, PreviewState};
use crate::graphics::Placement;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) -> Option<Placement> {
    draw_in(frame, area, app, "Preview")
}

/// The player, also used beside the Generate form. Returns where the picture goes when it is
/// to be drawn in pixels (kitty or sixel) after the frame.
pub fn draw_in(frame: &mut Frame<'_>, area: Rect, app: &App, title: &str) -> Option<Placement> {
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
            None
        }
        PreviewState::Loading(job) => {
            frame.render_widget(block(&format!("{title} · job {job}")), area);
            frame.render_widget(
                Paragraph::new("loading frames…").dim().centered(),
                centered(area, area.width.saturating_sub(4), 1),
            );
            None
        }
        PreviewState::Failed { job, reason } => {
            frame.render_widget(block(&format!("{title} · job {job}")), area);
            frame.render_widget(
                wrap(Paragraph::new(format!("No preview: {reason}")))
                    .red()
                    .centered(),
                centered(area, area.width.saturating_sub(4), 3),
            );
            None
        }
        PreviewState::Ready(player) => {
            // The mode shows when it is not the default, so an operator can tell what was found.
            let mode = if app.graphics.pixels() {
                format!(" · {}", app.graphics.mode.name())
            } else {
                String::new()
            };
            let outer = block(&format!(
                "{title} · job {} · {}×{} · frame {}/{} at {} fps{}{mode}",
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
            frame.render_widget(
                Line::from("space: pause/play   ← →: step when paused")
                    .dim()
                    .centered(),
                hint,
            );
            let rgb = player.frames.get(player.frame)?;
            let whole = rgb.len() as u64 == u64::from(player.width) * u64::from(player.height) * 3;
            if app.graphics.pixels() && !app.overlay_open() && whole {
                let cells = app.graphics.fit(picture, player.width, player.height);
                if cells.area() > 0 {
                    reserve(frame.buffer_mut(), cells);
                    return Some(Placement {
                        area: cells,
                        job: player.job,
                        frame: player.frame,
                    });
                }
            }
            frame.render_widget(
                HalfBlocks {
                    rgb,
                    width: player.width,
                    height: player.height,
                },
                picture,
            );
            None
        }
    }
}

/// Blanks the picture's cells and marks them skipped, so ratatui never writes over the
/// picture the painter puts there.
pub fn reserve(buf: &mut Buffer, area: Rect) {
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            if let Some(cell) = buf.cell_mut((x, y)) {
                cell.reset();
                cell.set_diff_option(CellDiffOption::Skip);
            }
        }
    }
}
