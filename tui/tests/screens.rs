//! Every screen drawn on ratatui's TestBackend and compared with a reviewed snapshot.

mod common;

use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loopsmith_console::App;
use loopsmith_console::app::Net;
use loopsmith_console::graphics::{Graphics, Mode, Placement};
use loopsmith_console::ui;
use loopsmith_protocol::control::{PreviewFrames, ServerMsg};
use loopsmith_protocol::{JobId, JobState};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::CellDiffOption;
use ratatui::layout::Rect;
use ratatui::style::Color;

fn render(app: &App) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(110, 30)).expect("terminal");
    terminal.draw(|f| ui::draw(f, app)).expect("draws");
    terminal
}

fn press(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

#[test]
fn dashboard() {
    insta::assert_snapshot!(render(&app()).backend());
}

#[test]
fn jobs() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('j'));
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn job_details_with_an_error() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('j'));
    }
    press(&mut app, KeyCode::Enter);
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn a_failure_recorded_before_chains_points_to_the_logs() {
    let mut app = app();
    let job = app.jobs.get_mut(&JobId(3)).expect("job 3");
    job.job.state = JobState::Failed {
        reason: "Rendering failed on our side; please try again.".into(),
        retryable: false,
        chain: Vec::new(),
    };
    press(&mut app, KeyCode::Char('2'));
    for _ in 0..3 {
        press(&mut app, KeyCode::Char('j'));
    }
    press(&mut app, KeyCode::Enter);
    let screen = render(&app).backend().to_string();
    assert!(screen.contains("not retryable"), "{screen}");
    assert!(
        screen.contains("cause     not recorded; see Logs for job=3"),
        "{screen}"
    );
}

#[test]
fn jobs_filtered_to_nothing() {
    let mut app = app();
    press(&mut app, KeyCode::Char('2'));
    press(&mut app, KeyCode::Char('/'));
    typed(&mut app, "zebra");
    insta::assert_snapshot!(render(&app).backend());
}

fn playing(app: &mut App) {
    press(app, KeyCode::Char('2'));
    press(app, KeyCode::End);
    let actions = app.on_key(KeyEvent::new(KeyCode::Char('p'), KeyModifiers::NONE));
    let Some(loopsmith_console::Action::Send(loopsmith_protocol::control::ClientMsg::Preview {
        req,
        ..
    })) = actions.first().cloned()
    else {
        panic!("expected a preview request");
    };
    // A 4×4 clip: a red left half and a blue right half, then the reverse.
    let frame = |left: [u8; 3], right: [u8; 3]| -> Vec<u8> {
        (0..16)
            .flat_map(|i| if i % 4 < 2 { left } else { right })
            .collect()
    };
    let frames = vec![
        frame([255, 0, 0], [0, 0, 255]),
        frame([0, 0, 255], [255, 0, 0]),
    ];
    app.on_message(ServerMsg::Preview {
        req,
        preview: PreviewFrames::from_rgb(JobId(1), 4, 4, 8, &frames),
    });
}

#[test]
fn preview_plays_in_half_blocks() {
    let mut app = app();
    playing(&mut app);
    let terminal = render(&app);
    insta::assert_snapshot!(terminal.backend());
    // The picture's colours, which the text snapshot cannot show: left red, right blue.
    let buffer = terminal.backend().buffer();
    let cells: Vec<_> = buffer
        .content()
        .iter()
        .filter(|c| c.symbol() == "▀")
        .collect();
    assert!(!cells.is_empty());
    assert!(cells.iter().any(|c| c.fg == Color::Rgb(255, 0, 0)));
    assert!(cells.iter().any(|c| c.fg == Color::Rgb(0, 0, 255)));
    assert!(
        cells.iter().all(|c| c.fg == c.bg),
        "each column is one colour top to bottom"
    );
}

/// Draws a frame as the run loop does, returning where a picture in pixels goes.
fn render_with_placement(app: &App) -> (Terminal<TestBackend>, Option<Placement>) {
    let mut terminal = Terminal::new(TestBackend::new(110, 30)).expect("terminal");
    let mut placement = None;
    terminal
        .draw(|f| placement = ui::draw_frame(f, app))
        .expect("draws");
    (terminal, placement)
}

#[test]
fn preview_leaves_its_cells_to_kitty() {
    let mut app = app();
    app.graphics = Graphics {
        mode: Mode::Kitty,
        cell_px: None,
    };
    playing(&mut app);
    let (terminal, placement) = render_with_placement(&app);
    insta::assert_snapshot!(terminal.backend());
    let placement = placement.expect("a picture to paint");
    assert_eq!((placement.job, placement.frame), (JobId(1), 0));
    // The picture area: 25 rows under the title, and a square at two rows a column is 50
    // columns wide, centred in 108.
    assert_eq!(placement.area, Rect::new(30, 2, 50, 25));
    // ratatui writes nothing there: the cells are blank and skipped.
    let mut frame = ratatui::buffer::Buffer::empty(Rect::new(0, 0, 110, 30));
    let mut probe = Terminal::new(TestBackend::new(110, 30)).expect("terminal");
    probe
        .draw(|f| {
            ui::draw_frame(f, &app);
            frame = f.buffer_mut().clone();
        })
        .expect("draws");
    for y in placement.area.top()..placement.area.bottom() {
        for x in placement.area.left()..placement.area.right() {
            let cell = &frame[(x, y)];
            assert_eq!(cell.diff_option, CellDiffOption::Skip, "({x}, {y})");
            assert_eq!(cell.symbol(), " ");
        }
    }
    assert!(!terminal.backend().to_string().contains('▀'));
}

#[test]
fn pictures_go_back_to_half_blocks_under_the_help() {
    let mut app = app();
    app.graphics = Graphics {
        mode: Mode::Sixel,
        cell_px: Some((10, 20)),
    };
    playing(&mut app);
    assert!(render_with_placement(&app).1.is_some());
    press(&mut app, KeyCode::Char('?'));
    let (terminal, placement) = render_with_placement(&app);
    assert_eq!(placement, None, "pixels would cover the help");
    assert!(terminal.backend().to_string().contains('▀'));
}

#[test]
fn the_generate_screen_shows_its_clip_in_pixels_too() {
    let mut app = app();
    app.graphics = Graphics {
        mode: Mode::Sixel,
        cell_px: Some((10, 20)),
    };
    playing(&mut app);
    press(&mut app, KeyCode::Char('4'));
    let (terminal, placement) = render_with_placement(&app);
    let placement = placement.expect("a picture beside the form");
    assert!(placement.area.x >= 55, "in the right half: {placement:?}");
    // As large as fits: 25 rows of 20 px are 500 px, more than 480, so 24 rows and 48
    // columns of 10 px.
    assert_eq!((placement.area.width, placement.area.height), (48, 24));
    assert!(terminal.backend().to_string().contains("· sixel"));
}

#[test]
fn preview_empty() {
    let mut app = app();
    press(&mut app, KeyCode::Char('3'));
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn generate_with_a_running_job() {
    let mut app = app();
    press(&mut app, KeyCode::Char('4'));
    typed(&mut app, "a quiet fox");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Right);
    app.generate.last_job = Some(JobId(5));
    app.jobs.get_mut(&JobId(5)).expect("job 5").eta_ms = Some(3_500);
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn users() {
    let mut app = app();
    press(&mut app, KeyCode::Char('5'));
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn users_style_editor() {
    let mut app = app();
    press(&mut app, KeyCode::Char('5'));
    press(&mut app, KeyCode::Char('e'));
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn users_ban_confirmation() {
    let mut app = app();
    press(&mut app, KeyCode::Char('5'));
    press(&mut app, KeyCode::Char('b'));
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn backends() {
    let mut app = app();
    press(&mut app, KeyCode::Char('6'));
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn logs() {
    let mut app = app();
    press(&mut app, KeyCode::Char('7'));
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn help_overlay() {
    let mut app = app();
    press(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn the_help_lists_every_binding_on_a_24_row_terminal() {
    let mut app = app();
    press(&mut app, KeyCode::Char('?'));
    let mut terminal = Terminal::new(TestBackend::new(110, 24)).expect("terminal");
    terminal.draw(|f| ui::draw(f, &app)).expect("draws");
    let screen = terminal.backend().to_string();
    for (section, keys, what) in loopsmith_console::keys::HELP {
        assert!(screen.contains(section), "{section} missing:\n{screen}");
        assert!(
            screen.contains(&format!(" {keys:<18}{what}")),
            "{keys} → {what} missing:\n{screen}"
        );
    }
}

#[test]
fn disconnected() {
    let mut app = app();
    app.on_net(Net::Disconnected {
        reason: "cannot connect: Connection refused (os error 111)".into(),
        retry_in_ms: 2_000,
    });
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn connecting_before_any_data() {
    let mut app = App::new("socket loopsmith-data/control.sock");
    app.now_ms = NOW;
    app.on_net(Net::Connecting { attempt: 3 });
    insta::assert_snapshot!(render(&app).backend());
}

#[test]
fn a_tiny_terminal_does_not_panic() {
    let mut app = app();
    for screen in '1'..='7' {
        press(&mut app, KeyCode::Char(screen));
        press(&mut app, KeyCode::Esc);
        for (w, h) in [(1, 1), (10, 3), (20, 5), (0, 0)] {
            let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
            terminal.draw(|f| ui::draw(f, &app)).expect("draws");
        }
    }
    playing(&mut app);
    // Pictures in pixels on every size too, down to nothing, placed only inside the screen.
    for mode in [Mode::Kitty, Mode::Sixel] {
        app.graphics = Graphics {
            mode,
            cell_px: Some((1, 2)),
        };
        for screen in ['3', '4'] {
            press(&mut app, KeyCode::Esc);
            press(&mut app, KeyCode::Char(screen));
            for (w, h) in [(1, 1), (10, 3), (20, 5), (0, 0), (12, 8)] {
                let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("terminal");
                let mut placement = None;
                terminal
                    .draw(|f| placement = ui::draw_frame(f, &app))
                    .expect("draws");
                if let Some(p) = placement {
                    assert!(p.area.area() > 0 && p.area.right() <= w && p.area.bottom() <= h);
                }
            }
        }
    }
    press(&mut app, KeyCode::Char('?'));
    let mut terminal = Terminal::new(TestBackend::new(12, 4)).expect("terminal");
    terminal.draw(|f| ui::draw(f, &app)).expect("draws");
    let _ = JobState::Queued;
}
