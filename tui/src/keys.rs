//! What every key does. The help overlay is drawn from [`HELP`]; a binding added below must
//! be added there too.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use loopsmith_protocol::JobState;
use loopsmith_protocol::control::ClientMsg;
use loopsmith_protocol::control::LogLevel;

use crate::app::{Action, App, Confirm, PendingKind, PreviewState, Screen, Tone};
use crate::forms::{GenField, StyleEditor, StyleField};

/// (section, keys, what they do), in the order the help overlay lists them.
pub const HELP: &[(&str, &str, &str)] = &[
    ("Anywhere", "1-7 / Tab / S-Tab", "switch screen"),
    ("Anywhere", "?", "this help"),
    ("Anywhere", "q / Ctrl-C", "quit"),
    ("Anywhere", "Ctrl-R", "reload everything from the engine"),
    ("Lists", "j k / ↑ ↓", "move"),
    ("Lists", "g G / Home End", "first / last"),
    ("Lists", "PgUp PgDn", "page"),
    ("Jobs", "Enter / Esc", "open / close details"),
    ("Jobs", "/", "filter by text (Esc clears)"),
    ("Jobs", "s", "filter by state"),
    ("Jobs", "c", "cancel the job (y confirms)"),
    ("Jobs", "r", "retry the job"),
    ("Jobs", "p", "play the job's clip"),
    ("Preview", "Space", "pause / play"),
    ("Preview", "← →", "step a frame (paused)"),
    ("Generate", "type", "edit the focused field"),
    ("Generate", "Tab S-Tab / ↑ ↓", "next / previous field"),
    ("Generate", "← →", "change an option"),
    ("Generate", "Enter", "submit as the console user"),
    ("Generate", "Esc / i", "leave / resume editing"),
    ("Users", "e / Enter", "edit style (Esc cancels)"),
    ("Users", "b", "ban / unban (y confirms)"),
    ("Backends", "p / Space", "pause / resume"),
    ("Logs", "l", "cycle the lowest level shown"),
    ("Logs", "f / End", "follow the tail"),
    ("Mouse", "click a tab", "switch screen"),
    ("Mouse", "click a row", "select it (Jobs, Users)"),
    ("Mouse", "wheel", "scroll Jobs, Users and Logs"),
];

const PAGE: usize = 10;

fn press(key: &KeyEvent) -> bool {
    key.kind != KeyEventKind::Release
}

/// Moves a selection within `len` items by a key; true when the key was a movement key.
fn navigate(selected: &mut usize, len: usize, key: &KeyEvent) -> bool {
    let last = len.saturating_sub(1);
    *selected = match key.code {
        KeyCode::Down | KeyCode::Char('j') => (*selected + 1).min(last),
        KeyCode::Up | KeyCode::Char('k') => selected.saturating_sub(1),
        KeyCode::PageDown => (*selected + PAGE).min(last),
        KeyCode::PageUp => selected.saturating_sub(PAGE),
        KeyCode::Home | KeyCode::Char('g') => 0,
        KeyCode::End | KeyCode::Char('G') => last,
        _ => return false,
    };
    true
}

impl App {
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if !press(&key) {
            return Vec::new();
        }
        self.dirty = true;
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return vec![Action::Quit];
        }
        if let Some(confirm) = self.confirm.take() {
            if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                let command = confirm.command;
                return self.command(PendingKind::Other, move |req| with_req(command, req));
            }
            self.set_status("cancelled", Tone::Info);
            return Vec::new();
        }
        if self.help {
            self.help = false;
            return Vec::new();
        }
        if ctrl && key.code == KeyCode::Char('r') {
            return if self.connected() {
                vec![Action::Send(ClientMsg::Refresh)]
            } else {
                Vec::new()
            };
        }
        // Text entry captures every other key.
        if self.style_editor.is_some() {
            return self.style_editor_key(key);
        }
        if self.filter_editing {
            match key.code {
                KeyCode::Enter => self.filter_editing = false,
                KeyCode::Esc => {
                    self.filter_editing = false;
                    self.job_filter.clear();
                    self.refresh_visible();
                }
                KeyCode::Backspace => {
                    self.job_filter.pop();
                    self.refresh_visible();
                }
                KeyCode::Char(c) if !ctrl => {
                    self.job_filter.push(c);
                    self.refresh_visible();
                }
                _ => {}
            }
            return Vec::new();
        }
        if self.screen == Screen::Generate && self.generate.editing {
            return self.generate_key(key);
        }

        match key.code {
            KeyCode::Char('q') => return vec![Action::Quit],
            KeyCode::Char('?') => {
                self.help = true;
                return Vec::new();
            }
            KeyCode::Char(c @ '1'..='7') => {
                self.go(Screen::ALL[c as usize - '1' as usize]);
                return Vec::new();
            }
            KeyCode::Tab => {
                self.go(Screen::ALL[(self.screen.index() + 1) % Screen::ALL.len()]);
                return Vec::new();
            }
            KeyCode::BackTab => {
                let n = Screen::ALL.len();
                self.go(Screen::ALL[(self.screen.index() + n - 1) % n]);
                return Vec::new();
            }
            _ => {}
        }
        match self.screen {
            Screen::Dashboard => Vec::new(),
            Screen::Jobs => self.jobs_key(key),
            Screen::Preview => self.preview_key(key),
            Screen::Generate => {
                if matches!(key.code, KeyCode::Char('i') | KeyCode::Enter) {
                    self.generate.editing = true;
                }
                Vec::new()
            }
            Screen::Users => self.users_key(key),
            Screen::Backends => self.backends_key(key),
            Screen::Logs => {
                self.logs_key(key);
                Vec::new()
            }
        }
    }

    pub(crate) fn go(&mut self, screen: Screen) {
        self.screen = screen;
        if screen == Screen::Generate {
            self.generate.editing = true;
        }
    }

    fn jobs_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if navigate(&mut self.job_selected, self.visible.len(), &key) {
            return Vec::new();
        }
        let selected = self.selected_job().map(|v| (v.job.id, v.job.state.clone()));
        match key.code {
            KeyCode::Enter => self.job_details = !self.job_details,
            KeyCode::Esc => self.job_details = false,
            KeyCode::Char('/') => self.filter_editing = true,
            KeyCode::Char('s') => {
                self.state_filter = self.state_filter.next();
                self.refresh_visible();
            }
            KeyCode::Char('c') => match selected {
                Some((id, state)) if !state.is_terminal() => {
                    self.confirm = Some(Confirm {
                        question: format!("Cancel job {id}?"),
                        command: ClientMsg::Cancel { req: 0, job: id },
                    });
                }
                Some((id, state)) => {
                    self.set_status(format!("job {id} is already {}", state.name()), Tone::Info)
                }
                None => {}
            },
            KeyCode::Char('r') => match selected {
                Some((id, state)) if state.is_terminal() => {
                    return self
                        .command(PendingKind::Other, |req| ClientMsg::Retry { req, job: id });
                }
                Some((id, state)) => self.set_status(
                    format!("job {id} is still {}; retry a finished job", state.name()),
                    Tone::Info,
                ),
                None => {}
            },
            KeyCode::Char('p') => match selected {
                Some((id, JobState::Done { .. })) => return self.request_preview(id),
                Some((id, state)) => self.set_status(
                    format!(
                        "job {id} is {}; its clip plays once it is done",
                        state.name()
                    ),
                    Tone::Info,
                ),
                None => {}
            },
            _ => {}
        }
        Vec::new()
    }

    fn preview_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if let PreviewState::Ready(player) = &mut self.preview {
            let n = player.frames.len().max(1);
            match key.code {
                KeyCode::Char(' ') => player.playing = !player.playing,
                KeyCode::Right if !player.playing => player.frame = (player.frame + 1) % n,
                KeyCode::Left if !player.playing => player.frame = (player.frame + n - 1) % n,
                _ => {}
            }
        }
        Vec::new()
    }

    fn generate_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let form = &mut self.generate;
        match key.code {
            KeyCode::Esc => form.editing = false,
            KeyCode::Tab => form.focus_next(true),
            KeyCode::BackTab => form.focus_next(false),
            KeyCode::Up => form.focus_next(false),
            KeyCode::Down => form.focus_next(true),
            KeyCode::Enter => {
                let form = self.generate.clone();
                if let Err(problem) = form.to_submit(0) {
                    self.set_status(problem, Tone::Bad);
                    return Vec::new();
                }
                return self.command(PendingKind::Submit, |req| {
                    form.to_submit(req).unwrap_or(ClientMsg::Refresh)
                });
            }
            KeyCode::Left | KeyCode::Right
                if !matches!(
                    form.focus,
                    GenField::Prompt | GenField::Style | GenField::Seed
                ) =>
            {
                form.cycle(key.code == KeyCode::Right)
            }
            _ => {
                let focus = form.focus;
                if let Some(input) = form.input(focus) {
                    // Digits only in the seed box; anything else would be refused on submit.
                    let digit_only = focus == GenField::Seed;
                    if !(digit_only && matches!(key.code, KeyCode::Char(c) if !c.is_ascii_digit()))
                    {
                        input.handle(key);
                    }
                }
            }
        }
        Vec::new()
    }

    fn users_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if navigate(&mut self.user_selected, self.users.len(), &key) {
            return Vec::new();
        }
        let Some(user) = self.selected_user().cloned() else {
            return Vec::new();
        };
        match key.code {
            KeyCode::Char('e') | KeyCode::Enter => {
                self.style_editor = Some(StyleEditor::new(user.key.clone(), &user.style));
            }
            KeyCode::Char('b') => {
                let banned = !user.banned;
                self.confirm = Some(Confirm {
                    question: format!("{} {}?", if banned { "Ban" } else { "Unban" }, user.key),
                    command: ClientMsg::SetBanned {
                        req: 0,
                        user: user.key,
                        banned,
                    },
                });
            }
            _ => {}
        }
        Vec::new()
    }

    fn style_editor_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let Some(editor) = self.style_editor.as_mut() else {
            return Vec::new();
        };
        let n = StyleField::ALL.len();
        match key.code {
            KeyCode::Esc => self.style_editor = None,
            KeyCode::Tab | KeyCode::Down => editor.focus = (editor.focus + 1) % n,
            KeyCode::BackTab | KeyCode::Up => editor.focus = (editor.focus + n - 1) % n,
            KeyCode::Enter => {
                let editor = editor.clone();
                if let Err(problem) = editor.to_command(0) {
                    self.set_status(problem, Tone::Bad);
                    return Vec::new();
                }
                self.style_editor = None;
                return self.command(PendingKind::Other, |req| {
                    editor.to_command(req).unwrap_or(ClientMsg::Refresh)
                });
            }
            _ => {
                let focus = editor.focus;
                editor.fields[focus].handle(key);
            }
        }
        Vec::new()
    }

    fn backends_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if navigate(&mut self.backend_selected, self.backends.len(), &key) {
            return Vec::new();
        }
        if matches!(key.code, KeyCode::Char('p') | KeyCode::Char(' '))
            && let Some(row) = self.selected_backend().cloned()
        {
            if !row.pausable {
                self.set_status(
                    format!("{} cannot be paused from here", row.name),
                    Tone::Info,
                );
                return Vec::new();
            }
            let paused = row.state.name() != "paused";
            return self.command(PendingKind::Other, |req| ClientMsg::SetBackendPaused {
                req,
                backend: row.name,
                paused,
            });
        }
        Vec::new()
    }

    fn logs_key(&mut self, key: KeyEvent) {
        let shown = self.shown_logs().count();
        let max = shown.saturating_sub(1);
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => self.log_scroll = (self.log_scroll + 1).min(max),
            KeyCode::Down | KeyCode::Char('j') => {
                self.log_scroll = self.log_scroll.saturating_sub(1)
            }
            KeyCode::PageUp => self.log_scroll = (self.log_scroll + PAGE).min(max),
            KeyCode::PageDown => self.log_scroll = self.log_scroll.saturating_sub(PAGE),
            KeyCode::Home | KeyCode::Char('g') => self.log_scroll = max,
            KeyCode::End | KeyCode::Char('G') | KeyCode::Char('f') => self.log_scroll = 0,
            KeyCode::Char('l') => {
                self.log_level = next_level(self.log_level);
                self.log_scroll = 0;
            }
            _ => {}
        }
    }
}

/// Puts a fresh request id into a command built before its id was known (a confirmation).
fn with_req(command: ClientMsg, req: u64) -> ClientMsg {
    match command {
        ClientMsg::Cancel { job, .. } => ClientMsg::Cancel { req, job },
        ClientMsg::SetBanned { user, banned, .. } => ClientMsg::SetBanned { req, user, banned },
        other => other,
    }
}

/// Info → Warn → Error → Trace → Debug → Info: the common choices first.
fn next_level(level: LogLevel) -> LogLevel {
    match level {
        LogLevel::Trace => LogLevel::Debug,
        LogLevel::Debug => LogLevel::Info,
        LogLevel::Info => LogLevel::Warn,
        LogLevel::Warn => LogLevel::Error,
        LogLevel::Error => LogLevel::Trace,
    }
}
