//! What the mouse does: a click on a tab switches screens, a click on a Jobs or Users row
//! selects it, and the wheel scrolls the Jobs and Users lists and the Logs. Hit-testing uses
//! the layout functions drawing uses ([`ui::regions`], [`ui::tab_at`], [`ui::table_row_at`]),
//! so it is pure and tested without a terminal.

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use crate::app::{Action, App, Screen};
use crate::ui;

/// Rows (or log lines) one notch of the wheel moves.
pub const WHEEL_STEP: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wheel {
    Up,
    Down,
}

impl App {
    /// Applies a mouse event. `area` is the whole terminal, as frames are drawn on it.
    pub fn on_mouse(&mut self, event: MouseEvent, area: Rect) -> Vec<Action> {
        let click = matches!(event.kind, MouseEventKind::Down(MouseButton::Left));
        let wheel = match event.kind {
            MouseEventKind::ScrollUp => Some(Wheel::Up),
            MouseEventKind::ScrollDown => Some(Wheel::Down),
            _ => None,
        };
        // Releases, drags and other buttons change nothing, so they cost no redraw.
        if !click && wheel.is_none() {
            return Vec::new();
        }
        // Questions and the style editor are answered with the keyboard only, so a stray click
        // never confirms a ban or drops an edit.
        if self.confirm.is_some() || self.style_editor.is_some() {
            return Vec::new();
        }
        if self.help {
            // Like any key, a click closes the help.
            if click {
                self.help = false;
                self.dirty = true;
            }
            return Vec::new();
        }
        let at = Position::new(event.column, event.row);
        let regions = ui::regions(area, self);
        if click && regions.header.contains(at) {
            if let Some(screen) = ui::tab_at(regions.header, at.x) {
                self.go(screen);
                self.dirty = true;
            }
            return Vec::new();
        }
        if !regions.body.contains(at) {
            return Vec::new();
        }
        let changed = match (self.screen, wheel) {
            (Screen::Jobs, Some(wheel)) => {
                scroll(&mut self.job_selected, self.visible.len(), wheel)
            }
            (Screen::Jobs, None) => {
                let (list, _) = ui::jobs::areas(regions.body, self);
                let hit =
                    ui::table_row_at(list, self.job_offset.get(), self.visible.len(), at.x, at.y);
                select(&mut self.job_selected, hit)
            }
            (Screen::Users, Some(wheel)) => {
                scroll(&mut self.user_selected, self.users.len(), wheel)
            }
            (Screen::Users, None) => {
                let hit = ui::table_row_at(
                    regions.body,
                    self.user_offset.get(),
                    self.users.len(),
                    at.x,
                    at.y,
                );
                select(&mut self.user_selected, hit)
            }
            (Screen::Logs, Some(wheel)) => {
                let before = self.log_scroll;
                let max = self.shown_logs().count().saturating_sub(1);
                // Up goes back in time, as on the keyboard.
                self.log_scroll = match wheel {
                    Wheel::Up => (self.log_scroll + WHEEL_STEP).min(max),
                    Wheel::Down => self.log_scroll.saturating_sub(WHEEL_STEP),
                };
                self.log_scroll != before
            }
            _ => false,
        };
        if changed {
            self.dirty = true;
        }
        Vec::new()
    }
}

/// Moves a list's selection by one wheel notch; true when it moved.
fn scroll(selected: &mut usize, len: usize, wheel: Wheel) -> bool {
    let before = *selected;
    *selected = match wheel {
        Wheel::Up => selected.saturating_sub(WHEEL_STEP),
        Wheel::Down => (*selected + WHEEL_STEP).min(len.saturating_sub(1)),
    };
    *selected != before
}

fn select(selected: &mut usize, hit: Option<usize>) -> bool {
    match hit {
        Some(row) if row != *selected => {
            *selected = row;
            true
        }
        _ => false,
    }
}
