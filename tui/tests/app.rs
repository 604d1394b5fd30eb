//! The console's state and update logic, without a terminal.

mod common;

use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loopsmith_console::app::{Action, Conn, Net, PreviewState, Screen, StateFilter, Tone};
use loopsmith_protocol::control::{
    BackendState, ClientMsg, LogLevel, Outcome, PreviewFrames, ServerMsg,
};
use loopsmith_protocol::{JobEvent, JobId, JobState, Platform, UserKey};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn keys(app: &mut loopsmith_console::App, text: &str) -> Vec<Action> {
    text.chars()
        .flat_map(|c| app.on_key(key(KeyCode::Char(c))))
        .collect()
}

fn sent(actions: Vec<Action>) -> ClientMsg {
    match actions.as_slice() {
        [Action::Send(m)] => m.clone(),
        other => panic!("expected one command, got {other:?}"),
    }
}

#[test]
fn a_snapshot_lists_jobs_newest_first_and_filters_narrow_it() {
    let mut app = app();
    let ids: Vec<u64> = app.visible.iter().map(|j| j.0).collect();
    assert_eq!(ids, vec![6, 5, 4, 3, 2, 1]);

    app.on_key(key(KeyCode::Char('2')));
    assert_eq!(app.screen, Screen::Jobs);
    app.on_key(key(KeyCode::Char('j')));
    assert_eq!(app.selected_job().map(|v| v.job.id), Some(JobId(5)));

    app.on_key(key(KeyCode::Char('/')));
    keys(&mut app, "robot");
    assert!(app.filter_editing);
    assert_eq!(app.visible, vec![JobId(5)]);
    app.on_key(key(KeyCode::Enter));
    assert!(!app.filter_editing);
    // `q` after the filter is closed quits again, so the filter did not swallow keys.
    assert_eq!(app.on_key(key(KeyCode::Char('q'))), vec![Action::Quit]);

    app.on_key(key(KeyCode::Char('/')));
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.visible.len(), 6);
    assert_eq!(
        app.selected_job().map(|v| v.job.id),
        Some(JobId(5)),
        "selection kept"
    );

    app.on_key(key(KeyCode::Char('s')));
    assert_eq!(app.state_filter, StateFilter::Active);
    assert_eq!(app.visible, vec![JobId(6), JobId(5)]);
    app.on_key(key(KeyCode::Char('s')));
    assert_eq!(app.visible, vec![JobId(2), JobId(1)]);
    app.on_key(key(KeyCode::Char('s')));
    assert_eq!(app.visible, vec![JobId(4), JobId(3)]);
}

#[test]
fn events_move_progress_and_records_add_jobs() {
    let mut app = app();
    let ann = UserKey::new(Platform::Telegram, "1001");
    app.on_message(ServerMsg::Event(JobEvent {
        job: JobId(5),
        user: ann.clone(),
        state: JobState::Running {
            backend: "local".into(),
            progress: 0.9,
        },
        position: None,
        eta_ms: Some(1200),
    }));
    let v = &app.jobs[&JobId(5)];
    assert!((v.progress() - 0.9).abs() < 1e-6);
    assert_eq!(v.eta_ms, Some(1200));

    app.on_message(ServerMsg::Job(Box::new(job(
        7,
        &ann,
        "new one",
        JobState::Queued,
    ))));
    assert_eq!(app.visible.first(), Some(&JobId(7)));

    // An event for a job the console never saw is ignored, not a crash.
    app.on_message(ServerMsg::Event(JobEvent {
        job: JobId(999),
        user: ann,
        state: JobState::Queued,
        position: Some(1),
        eta_ms: None,
    }));
    assert!(!app.jobs.contains_key(&JobId(999)));
}

#[test]
fn commands_are_refused_plainly_while_disconnected() {
    let mut app = app();
    app.on_net(Net::Disconnected {
        reason: "connection reset".into(),
        retry_in_ms: 500,
    });
    assert!(matches!(app.conn, Conn::Disconnected { .. }));
    app.on_key(key(KeyCode::Char('2')));
    app.on_key(key(KeyCode::Char('j')));
    app.on_key(key(KeyCode::Char('j')));
    app.on_key(key(KeyCode::Char('j')));
    assert_eq!(app.selected_job().map(|v| v.job.id), Some(JobId(3)));
    let actions = app.on_key(key(KeyCode::Char('r')));
    assert!(actions.is_empty());
    let (text, tone) = app.status.clone().expect("a status");
    assert!(text.contains("not connected"), "{text}");
    assert_eq!(tone, Tone::Bad);
    // Data from before stays visible.
    assert_eq!(app.jobs.len(), 6);
}

#[test]
fn cancel_asks_first_and_sends_only_on_yes() {
    let mut app = app();
    app.on_key(key(KeyCode::Char('2')));
    app.on_key(key(KeyCode::Char('j'))); // job 5, running
    assert!(app.on_key(key(KeyCode::Char('c'))).is_empty());
    assert!(app.confirm.is_some());
    assert!(app.on_key(key(KeyCode::Char('n'))).is_empty());
    assert!(app.confirm.is_none());

    app.on_key(key(KeyCode::Char('c')));
    let command = sent(app.on_key(key(KeyCode::Char('y'))));
    let ClientMsg::Cancel { req, job } = command else {
        panic!("expected a cancel, got {command:?}");
    };
    assert_eq!(job, JobId(5));
    assert!(req > 0);
    app.on_message(ServerMsg::Reply {
        req,
        outcome: Outcome::Ok {
            message: "job 5: cancel requested".into(),
            job: Some(JobId(5)),
        },
    });
    assert_eq!(app.status.as_ref().map(|s| s.1), Some(Tone::Good));

    // A finished job cannot be cancelled; it can be retried.
    app.on_key(key(KeyCode::Char('j'))); // job 4, cancelled
    assert!(app.on_key(key(KeyCode::Char('c'))).is_empty());
    assert!(app.confirm.is_none());
    let retry = sent(app.on_key(key(KeyCode::Char('r'))));
    assert!(
        matches!(retry, ClientMsg::Retry { job: JobId(4), .. }),
        "{retry:?}"
    );
}

#[test]
fn generate_types_q_into_the_prompt_submits_and_plays_the_result() {
    let mut app = app();
    app.on_key(key(KeyCode::Char('4')));
    assert_eq!(app.screen, Screen::Generate);
    assert!(
        keys(&mut app, "a quiet fox").is_empty(),
        "typing sends nothing"
    );
    assert_eq!(app.generate.prompt.text, "a quiet fox");

    let command = sent(app.on_key(key(KeyCode::Enter)));
    let ClientMsg::Submit { req, prompt, .. } = command else {
        panic!("expected a submit, got {command:?}");
    };
    assert_eq!(prompt, "a quiet fox");
    app.on_message(ServerMsg::Reply {
        req,
        outcome: Outcome::Ok {
            message: "job 8 queued at position 2".into(),
            job: Some(JobId(8)),
        },
    });
    assert_eq!(app.generate.last_job, Some(JobId(8)));

    let mut record = job(8, &operator(), "a quiet fox", JobState::Queued);
    app.on_message(ServerMsg::Job(Box::new(record.clone())));
    assert_eq!(app.generated_job().map(|v| v.job.id), Some(JobId(8)));
    record.state = done();
    let actions = app.on_message(ServerMsg::Job(Box::new(record)));
    let ClientMsg::Preview { req, job, .. } = sent(actions) else {
        panic!("a finished job of the form asks for its preview");
    };
    assert_eq!(job, JobId(8));
    assert_eq!(
        app.screen,
        Screen::Generate,
        "the preview loads beside the form"
    );

    let frames = vec![vec![10u8; 2 * 2 * 3], vec![200u8; 2 * 2 * 3]];
    app.on_message(ServerMsg::Preview {
        req,
        preview: PreviewFrames::from_rgb(JobId(8), 2, 2, 8, &frames),
    });
    let PreviewState::Ready(player) = &app.preview else {
        panic!("preview not loaded: {:?}", app.preview);
    };
    assert_eq!(player.frames, frames);
    assert!(app.tick_player());
    let PreviewState::Ready(player) = &app.preview else {
        unreachable!()
    };
    assert_eq!(player.frame, 1);
    // Frames only tick while the Preview screen shows: an idle console does not wake up.
    assert_eq!(app.frame_interval_ms(), None);
    app.on_key(key(KeyCode::Esc));
    app.on_key(key(KeyCode::Char('3')));
    assert_eq!(app.frame_interval_ms(), Some(125));
    app.on_key(key(KeyCode::Char(' ')));
    assert_eq!(app.frame_interval_ms(), None, "paused");

    // Esc leaves the form, then q quits.
    app.on_key(key(KeyCode::Char('4')));
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.on_key(key(KeyCode::Char('q'))), vec![Action::Quit]);
}

#[test]
fn a_bad_preview_is_an_error_on_screen_not_a_crash() {
    let mut app = app();
    app.on_key(key(KeyCode::Char('2')));
    app.on_key(key(KeyCode::End)); // job 1, done
    let ClientMsg::Preview { req, .. } = sent(app.on_key(key(KeyCode::Char('p')))) else {
        panic!("expected a preview request");
    };
    assert_eq!(app.screen, Screen::Preview);
    let mut broken = PreviewFrames::from_rgb(JobId(1), 2, 2, 8, &[vec![0; 12]]);
    broken.frames[0] = "!!".into();
    app.on_message(ServerMsg::Preview {
        req,
        preview: broken,
    });
    assert!(
        matches!(app.preview, PreviewState::Failed { .. }),
        "{:?}",
        app.preview
    );

    app.on_key(key(KeyCode::Char('2')));
    app.on_key(key(KeyCode::Home)); // job 6, queued: no clip yet
    assert!(app.on_key(key(KeyCode::Char('p'))).is_empty());
    assert!(app.status.as_ref().is_some_and(|s| s.0.contains("queued")));
}

#[test]
fn a_drop_while_loading_a_preview_says_so() {
    let mut app = app();
    app.on_key(key(KeyCode::Char('2')));
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Char('p')));
    app.on_net(Net::Disconnected {
        reason: "eof".into(),
        retry_in_ms: 250,
    });
    assert!(matches!(app.preview, PreviewState::Failed { .. }));
}

#[test]
fn logs_filter_by_level_and_hold_still_when_scrolled_back() {
    let mut app = app();
    assert_eq!(app.shown_logs().count(), 3, "debug is hidden at info");
    app.on_key(key(KeyCode::Char('7')));
    app.on_key(key(KeyCode::Char('l')));
    assert_eq!(app.log_level, LogLevel::Warn);
    assert_eq!(app.shown_logs().count(), 2);
    app.on_key(key(KeyCode::Up));
    assert_eq!(app.log_scroll, 1);
    app.on_message(ServerMsg::Log(log(NOW, LogLevel::Error, "new")));
    assert_eq!(app.log_scroll, 2, "the view stays on the same lines");
    app.on_message(ServerMsg::Log(log(NOW, LogLevel::Info, "hidden")));
    assert_eq!(app.log_scroll, 2, "a hidden line does not move the view");
    app.on_key(key(KeyCode::Char('f')));
    assert_eq!(app.log_scroll, 0);
}

#[test]
fn backends_pause_and_resume_by_their_current_state() {
    let mut app = app();
    app.on_key(key(KeyCode::Char('6')));
    let command = sent(app.on_key(key(KeyCode::Char('p'))));
    assert!(
        matches!(&command, ClientMsg::SetBackendPaused { backend, paused: true, .. } if backend == "local"),
        "{command:?}"
    );
    app.on_key(key(KeyCode::Char('j')));
    assert_eq!(
        app.selected_backend().map(|b| b.state.clone()),
        Some(BackendState::Paused)
    );
    let command = sent(app.on_key(key(KeyCode::Char(' '))));
    assert!(
        matches!(&command, ClientMsg::SetBackendPaused { backend, paused: false, .. } if backend == "pika"),
        "{command:?}"
    );
}

#[test]
fn users_ban_after_confirmation_and_edit_styles() {
    let mut app = app();
    app.on_key(key(KeyCode::Char('5')));
    app.on_key(key(KeyCode::Char('b')));
    let command = sent(app.on_key(key(KeyCode::Char('y'))));
    assert!(
        matches!(&command, ClientMsg::SetBanned { banned: true, user, .. } if user.id == "1001"),
        "{command:?}"
    );

    app.on_key(key(KeyCode::Char('e')));
    assert!(app.style_editor.is_some());
    assert!(
        app.on_key(key(KeyCode::Char('q'))).is_empty(),
        "q types into the editor"
    );
    app.on_key(key(KeyCode::Tab));
    app.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    keys(&mut app, "neon");
    let command = sent(app.on_key(key(KeyCode::Enter)));
    let ClientMsg::SetStyle { style, .. } = command else {
        panic!("expected a style edit, got {command:?}");
    };
    assert_eq!(style.preset.as_deref(), Some("animeq"));
    assert_eq!(style.suffix.as_deref(), Some("neon"));
    assert!(app.style_editor.is_none());
}

#[test]
fn help_and_quitting() {
    let mut app = app();
    app.on_key(key(KeyCode::Char('?')));
    assert!(app.help);
    assert!(
        app.on_key(key(KeyCode::Char('q'))).is_empty(),
        "any key closes help first"
    );
    assert!(!app.help);
    app.on_key(key(KeyCode::Char('4')));
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        vec![Action::Quit],
        "Ctrl-C quits even while typing"
    );
}
