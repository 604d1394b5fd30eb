//! Mouse hit-testing and the state it changes, on ratatui's TestBackend: each test finds the
//! thing to click in what was drawn, so clicks and drawing cannot drift apart.

mod common;

use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use loopsmith_console::App;
use loopsmith_console::app::{Net, Screen};
use loopsmith_console::mouse::WHEEL_STEP;
use loopsmith_console::ui;
use loopsmith_protocol::JobId;
use loopsmith_protocol::control::{ServerMsg, UserRow};
use loopsmith_protocol::{Platform, UserKey, UserStyle};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

const AREA: Rect = Rect::new(0, 0, 110, 30);

fn render(app: &App) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(AREA.width, AREA.height)).expect("terminal");
    terminal.draw(|f| ui::draw(f, app)).expect("draws");
    terminal
}

/// The cell where `text` starts on screen; panics when it is not drawn.
fn find(terminal: &Terminal<TestBackend>, text: &str) -> (u16, u16) {
    let buffer = terminal.backend().buffer();
    for y in 0..buffer.area.height {
        let symbols: Vec<&str> = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        for x in 0..symbols.len() {
            if symbols[x..].concat().starts_with(text) {
                return (x as u16, y);
            }
        }
    }
    panic!("{text:?} is not on screen:\n{}", terminal.backend());
}

fn mouse(kind: MouseEventKind, (column, row): (u16, u16)) -> MouseEvent {
    MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }
}

fn click(app: &mut App, at: (u16, u16)) {
    app.on_mouse(mouse(MouseEventKind::Down(MouseButton::Left), at), AREA);
}

fn wheel(app: &mut App, kind: MouseEventKind, at: (u16, u16)) {
    app.on_mouse(mouse(kind, at), AREA);
}

fn press(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

#[test]
fn clicking_a_tab_switches_to_its_screen() {
    let mut app = app();
    for screen in Screen::ALL {
        let label = format!("{} {}", screen.index() + 1, screen.title());
        let at = find(&render(&app), &label);
        click(&mut app, at);
        assert_eq!(app.screen, screen, "clicked {label:?} at {at:?}");
        // The tab's padding belongs to it too.
        click(&mut app, (at.0 - 1, at.1));
        assert_eq!(app.screen, screen);
    }
    // The brand and the connection status are not tabs.
    click(&mut app, (2, 0));
    click(&mut app, (AREA.width - 3, 0));
    assert_eq!(app.screen, Screen::Logs);
}

#[test]
fn a_tab_click_leaves_the_generate_form() {
    let mut app = app();
    press(&mut app, KeyCode::Char('4'));
    assert!(app.generate.editing, "the form takes keys");
    let at = find(&render(&app), "2 Jobs");
    click(&mut app, at);
    assert_eq!(app.screen, Screen::Jobs);
}

#[test]
fn clicking_a_jobs_row_selects_that_job() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    let terminal = render(&app);
    let row = find(&terminal, "│3       failed");
    click(&mut app, (row.0 + 30, row.1));
    assert_eq!(app.selected_job().map(|v| v.job.id), Some(JobId(3)));

    // The column headings, the border and the empty space below the last job select nothing.
    let heading = find(&terminal, "│id ");
    click(&mut app, (heading.0 + 5, heading.1));
    click(&mut app, (heading.0, row.1));
    click(&mut app, (row.0 + 5, AREA.height - 4));
    assert_eq!(app.selected_job().map(|v| v.job.id), Some(JobId(3)));

    // With the details open, the table is narrower and the details pane is not a list.
    press(&mut app, KeyCode::Enter);
    let terminal = render(&app);
    let row = find(&terminal, "│6       queued");
    click(&mut app, (row.0 + 3, row.1));
    assert_eq!(app.selected_job().map(|v| v.job.id), Some(JobId(6)));
    let details = find(&terminal, "Details");
    click(&mut app, (details.0, details.1 + 4));
    assert_eq!(app.selected_job().map(|v| v.job.id), Some(JobId(6)));
}

#[test]
fn a_click_finds_the_row_under_the_disconnected_banner_and_a_scrolled_list() {
    let mut app = app();
    // 40 more jobs: the list scrolls on a 30-row terminal.
    for id in 7..=46 {
        app.on_message(ServerMsg::Job(Box::new(job(
            id,
            &operator(),
            "more",
            loopsmith_protocol::JobState::Queued,
        ))));
    }
    app.on_net(Net::Disconnected {
        reason: "gone".into(),
        retry_in_ms: 1_000,
    });
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::End);
    let terminal = render(&app);
    assert!(app.job_offset.get() > 0, "the list scrolled");
    let row = find(&terminal, "│5       running");
    click(&mut app, (row.0 + 2, row.1));
    assert_eq!(app.selected_job().map(|v| v.job.id), Some(JobId(5)));
}

#[test]
fn the_wheel_moves_through_jobs_users_and_logs() {
    let mut app = app();
    let body = (50, 15);
    press(&mut app, KeyCode::Char('2'));
    wheel(&mut app, MouseEventKind::ScrollDown, body);
    assert_eq!(app.job_selected, WHEEL_STEP);
    wheel(&mut app, MouseEventKind::ScrollDown, body);
    assert_eq!(app.job_selected, app.visible.len() - 1, "stops at the end");
    wheel(&mut app, MouseEventKind::ScrollUp, body);
    wheel(&mut app, MouseEventKind::ScrollUp, body);
    assert_eq!(app.job_selected, 0, "stops at the top");

    // Users: three more, so there is somewhere to go.
    for i in 0..3 {
        app.on_message(user_row(UserKey::new(Platform::Telegram, format!("90{i}"))));
    }
    press(&mut app, KeyCode::Char('5'));
    wheel(&mut app, MouseEventKind::ScrollDown, body);
    assert_eq!(app.user_selected, WHEEL_STEP);

    // Logs: up goes back in time, as far as there are lines, and down returns to the tail.
    press(&mut app, KeyCode::Char('7'));
    wheel(&mut app, MouseEventKind::ScrollUp, body);
    let shown = app.shown_logs().count();
    assert_eq!(app.log_scroll, WHEEL_STEP.min(shown - 1));
    wheel(&mut app, MouseEventKind::ScrollDown, body);
    assert_eq!(app.log_scroll, 0, "following again");

    // Screens without a list ignore the wheel.
    press(&mut app, KeyCode::Char('1'));
    app.dirty = false;
    wheel(&mut app, MouseEventKind::ScrollDown, body);
    assert!(!app.dirty);
}

#[test]
fn clicking_a_users_row_selects_it_even_when_the_list_has_scrolled() {
    let mut app = app();
    for i in 0..40 {
        app.on_message(user_row(UserKey::new(
            Platform::Discord,
            format!("user{i:02}"),
        )));
    }
    press(&mut app, KeyCode::Char('5'));
    press(&mut app, KeyCode::End);
    let terminal = render(&app);
    assert!(app.user_offset.get() > 0, "the list scrolled");
    let at = find(&terminal, "user20");
    click(&mut app, at);
    assert_eq!(
        app.selected_user().map(|u| u.key.id.as_str()),
        Some("user20")
    );
}

#[test]
fn dialogs_are_keyboard_only_and_a_click_closes_the_help() {
    let mut app = app();
    press(&mut app, KeyCode::Char('5'));
    press(&mut app, KeyCode::Char('b'));
    assert!(app.confirm.is_some());
    let jobs_tab = find(&render(&app), "2 Jobs");
    click(&mut app, jobs_tab);
    assert!(app.confirm.is_some(), "a click never answers a question");
    assert_eq!(app.screen, Screen::Users);
    press(&mut app, KeyCode::Char('n'));

    press(&mut app, KeyCode::Char('e'));
    click(&mut app, jobs_tab);
    assert!(app.style_editor.is_some(), "a click never drops an edit");
    press(&mut app, KeyCode::Esc);

    press(&mut app, KeyCode::Char('?'));
    wheel(&mut app, MouseEventKind::ScrollDown, (50, 15));
    assert!(app.help, "the wheel leaves the help open");
    click(&mut app, jobs_tab);
    assert!(!app.help, "a click closes it");
    assert_eq!(app.screen, Screen::Users, "and does nothing else");
}

#[test]
fn pointer_moves_and_releases_cost_no_redraw() {
    let mut app = app();
    app.dirty = false;
    for kind in [
        MouseEventKind::Moved,
        MouseEventKind::Up(MouseButton::Left),
        MouseEventKind::Drag(MouseButton::Left),
        MouseEventKind::Down(MouseButton::Right),
    ] {
        assert!(app.on_mouse(mouse(kind, (30, 0)), AREA).is_empty());
    }
    assert!(!app.dirty);
    assert_eq!(app.screen, Screen::Dashboard);
    // A click outside the terminal (a stale size) is ignored, not a panic.
    click(&mut app, (500, 500));
    assert_eq!(app.screen, Screen::Dashboard);
}

/// A user the console is told about: nothing used, nothing spent.
fn user_row(key: UserKey) -> ServerMsg {
    ServerMsg::User(UserRow {
        key,
        name: None,
        style: UserStyle::default(),
        banned: false,
        quota_used: 0,
        quota_limit: 50,
        jobs_total: 0,
        spend_usd: None,
    })
}
