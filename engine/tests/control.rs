//! The control server over real sockets: handshake, snapshot, live updates, every command,
//! access checks, and bad input answered with errors instead of crashes.

mod common;
#[path = "control/harness.rs"]
mod harness;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use common::*;
use harness::*;
use loopsmith_engine::Health;
use loopsmith_engine::control::ControlError;
use loopsmith_engine::protocol::control::{
    BackendState, ClientMsg, LogLevel, LogLine, Outcome, PROTOCOL_VERSION, ServerMsg, Spend, Token,
};
use loopsmith_engine::protocol::{
    JobId, JobState, OutputKind, Overrides, Platform, UserKey, UserStyle,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UnixStream};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_console_on_the_socket_sees_a_job_from_submit_to_preview() {
    let rig = rig(FakeBackend::new("local"), true);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run/control.sock");
    let server = serve_unix(&rig, &path).await;

    let mode = std::fs::metadata(&path)
        .expect("socket exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let mut client = Client::new(UnixStream::connect(&path).await.expect("connect"));
    match client.hello(None).await {
        ServerMsg::Welcome {
            protocol,
            operator: op,
            ..
        } => {
            assert_eq!(protocol, PROTOCOL_VERSION);
            assert_eq!(op, operator());
        }
        other => panic!("expected welcome, got {other:?}"),
    }
    let snapshot = client
        .until(|m| match m {
            ServerMsg::Snapshot(s) => Some(s.clone()),
            _ => None,
        })
        .await;
    assert!(snapshot.jobs.is_empty());
    assert_eq!(snapshot.backends.len(), 1);
    assert_eq!(snapshot.backends[0].state, BackendState::Ready);

    let outcome = client
        .command(|req| ClientMsg::Submit {
            req,
            prompt: "a red ball".into(),
            overrides: Overrides {
                seed: Some(5),
                outputs: Some(vec![OutputKind::Mp4]),
                ..Overrides::default()
            },
        })
        .await;
    let Outcome::Ok { job: Some(id), .. } = outcome else {
        panic!("submit failed: {outcome:?}");
    };
    let done = client.until_job(id, "done").await;
    assert_eq!(done.user, operator());
    assert_eq!(done.params.seed, 5);
    assert!(done.timings.finished_ms.is_some());

    let req = 99;
    client
        .send(&ClientMsg::Preview {
            req,
            job: id,
            max_side: 32,
        })
        .await;
    let preview = client
        .until(|m| match m {
            ServerMsg::Preview { req: r, preview } if *r == req => Some(preview.clone()),
            ServerMsg::Reply { req: r, outcome } if *r == req => {
                panic!("preview refused: {outcome:?}")
            }
            _ => None,
        })
        .await;
    let frames = preview.decode_rgb().expect("frames decode");
    assert!(!frames.is_empty());
    assert!(preview.width.max(preview.height) <= 32);

    rig.shutdown.cancel();
    tokio::time::timeout(WAIT, server)
        .await
        .expect("the server stops within 30 s")
        .expect("server task")
        .expect("server ran");
    assert!(!path.exists(), "the socket file is removed on shutdown");
    assert!(client.closed().await, "sessions end with the server");
}

#[tokio::test]
async fn handshake_refuses_other_versions_and_non_hello_openers() {
    let rig = rig(FakeBackend::new("local"), false);

    let mut old = Client::new(rig.control.connect_in_process(rig.shutdown.clone()));
    old.send(&ClientMsg::Hello {
        protocol: PROTOCOL_VERSION + 1,
        client: "future".into(),
        operator: None,
        token: None,
    })
    .await;
    match old.recv().await {
        ServerMsg::Refused { reason } => assert!(reason.contains("protocol"), "{reason}"),
        other => panic!("expected refusal, got {other:?}"),
    }
    assert!(old.closed().await);

    let mut rude = Client::new(rig.control.connect_in_process(rig.shutdown.clone()));
    rude.send(&ClientMsg::Refresh).await;
    assert!(matches!(rude.recv().await, ServerMsg::Refused { .. }));

    // Raw garbage as the very first bytes.
    let mut garbage = rig.control.connect_in_process(rig.shutdown.clone());
    garbage
        .write_all(&[0, 0, 0, 3, b'x', b'y', b'z'])
        .await
        .expect("write");
    let mut garbage = Client::new(garbage);
    assert!(matches!(garbage.recv().await, ServerMsg::Refused { .. }));
}

#[tokio::test]
async fn a_malformed_frame_is_reported_and_the_session_goes_on() {
    let rig = rig(FakeBackend::new("local"), false);
    let stream = rig.control.connect_in_process(rig.shutdown.clone());
    let mut client = Client::new(stream);
    assert!(matches!(
        client.hello(None).await,
        ServerMsg::Welcome { .. }
    ));
    client
        .until(|m| matches!(m, ServerMsg::Snapshot(_)).then_some(()))
        .await;
    let junk = br#"{"type":"launch"}"#;
    client
        .writer
        .write_all(&(junk.len() as u32).to_be_bytes())
        .await
        .expect("write");
    client.writer.write_all(junk).await.expect("write");
    let message = client
        .until(|m| match m {
            ServerMsg::ProtocolError { message } => Some(message.clone()),
            _ => None,
        })
        .await;
    assert!(message.contains("launch"), "{message}");
    client.send(&ClientMsg::Refresh).await;
    client
        .until(|m| matches!(m, ServerMsg::Snapshot(_)).then_some(()))
        .await;
}

#[tokio::test]
async fn tcp_is_loopback_only_and_needs_the_token() {
    let rig = rig(FakeBackend::new("local"), false);
    let token = Token::new("a-long-enough-test-token");
    let err = rig
        .control
        .bind_tcp("0.0.0.0:0".parse().expect("addr"), token.clone())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, ControlError::NotLoopback(_)), "{err}");
    let err = rig
        .control
        .bind_tcp("127.0.0.1:0".parse().expect("addr"), Token::new("short"))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, ControlError::WeakToken), "{err}");

    let (addr, serve) = rig
        .control
        .bind_tcp("127.0.0.1:0".parse().expect("addr"), token)
        .await
        .expect("binds");
    let server = tokio::spawn(serve);

    for wrong in [None, Some("a-long-enough-test-tokeN"), Some("a")] {
        let mut client = Client::new(TcpStream::connect(addr).await.expect("connect"));
        match client.hello(wrong).await {
            ServerMsg::Refused { reason } => assert!(reason.contains("token"), "{reason}"),
            other => panic!("expected refusal for {wrong:?}, got {other:?}"),
        }
    }
    let mut client = Client::new(TcpStream::connect(addr).await.expect("connect"));
    assert!(matches!(
        client.hello(Some("a-long-enough-test-token")).await,
        ServerMsg::Welcome { .. }
    ));
    server.abort();
}

#[tokio::test]
async fn pausing_a_backend_takes_it_out_of_the_router() {
    let rig = rig(FakeBackend::new("local"), false);
    let mut client = Client::new(rig.control.connect_in_process(rig.shutdown.clone()));
    client.hello(None).await;

    let outcome = client
        .command(|req| ClientMsg::SetBackendPaused {
            req,
            backend: "local".into(),
            paused: true,
        })
        .await;
    assert!(matches!(outcome, Outcome::Ok { .. }), "{outcome:?}");
    let rows = client
        .until(|m| match m {
            ServerMsg::Backends { backends, .. } => Some(backends.clone()),
            _ => None,
        })
        .await;
    assert_eq!(rows[0].state, BackendState::Paused);
    assert!(rig.backend.is_paused());
    assert!(matches!(rig.engine.backend_health(), Health::Down { .. }));

    let outcome = client
        .command(|req| ClientMsg::SetBackendPaused {
            req,
            backend: "nope".into(),
            paused: true,
        })
        .await;
    match outcome {
        Outcome::Err { message } => assert!(message.contains("local"), "{message}"),
        other => panic!("expected an error, got {other:?}"),
    }

    client
        .command(|req| ClientMsg::SetBackendPaused {
            req,
            backend: "local".into(),
            paused: false,
        })
        .await;
    assert_eq!(rig.engine.backend_health(), Health::Ready);
}

#[tokio::test]
async fn cancel_and_retry_from_the_console() {
    let (fake, gate) = FakeBackend::gated("local");
    let rig = rig(fake.clone(), false);
    let mut client = Client::new(rig.control.connect_in_process(rig.shutdown.clone()));
    client.hello(None).await;

    let submit = |req| ClientMsg::Submit {
        req,
        prompt: "a cat".into(),
        overrides: Overrides {
            seed: Some(77),
            ..Overrides::default()
        },
    };
    let Outcome::Ok { job: Some(id), .. } = client.command(submit).await else {
        panic!("submit failed");
    };
    fake.wait_started(1).await;
    let outcome = client
        .command(|req| ClientMsg::Cancel { req, job: id })
        .await;
    assert!(matches!(outcome, Outcome::Ok { .. }), "{outcome:?}");
    let cancelled = client.until_job(id, "cancelled").await;
    assert_eq!(cancelled.state, JobState::Cancelled { by: operator() });

    let outcome = client
        .command(|req| ClientMsg::Retry { req, job: id })
        .await;
    let Outcome::Ok {
        job: Some(again), ..
    } = outcome
    else {
        panic!("retry failed: {outcome:?}");
    };
    assert_ne!(again, id);
    gate.add_permits(1);
    let done = client.until_job(again, "done").await;
    assert_eq!(done.params.seed, 77);
    assert_eq!(done.params.user_prompt, "a cat");

    let outcome = client
        .command(|req| ClientMsg::Cancel { req, job: again })
        .await;
    assert!(matches!(outcome, Outcome::Err { .. }), "{outcome:?}");
    let outcome = client
        .command(|req| ClientMsg::Retry {
            req,
            job: JobId(12345),
        })
        .await;
    assert!(matches!(outcome, Outcome::Err { .. }), "{outcome:?}");
}

#[tokio::test]
async fn style_and_ban_edits_come_back_as_user_rows() {
    let rig = rig(FakeBackend::new("local"), false);
    let mut client = Client::new(rig.control.connect_in_process(rig.shutdown.clone()));
    client.hello(None).await;
    let ann = UserKey::new(Platform::Telegram, "1");

    let style = UserStyle {
        suffix: Some("glowing".into()),
        ..UserStyle::default()
    };
    let outcome = client
        .command(|req| ClientMsg::SetStyle {
            req,
            user: ann.clone(),
            style: style.clone(),
        })
        .await;
    assert!(matches!(outcome, Outcome::Ok { .. }), "{outcome:?}");
    let row = client
        .until(|m| match m {
            ServerMsg::User(row) => Some(row.clone()),
            _ => None,
        })
        .await;
    assert_eq!(row.style, style);

    let bad = UserStyle {
        preset: Some("no-such-preset".into()),
        ..UserStyle::default()
    };
    let outcome = client
        .command(|req| ClientMsg::SetStyle {
            req,
            user: ann.clone(),
            style: bad,
        })
        .await;
    assert!(matches!(outcome, Outcome::Err { .. }), "{outcome:?}");

    client
        .command(|req| ClientMsg::SetBanned {
            req,
            user: ann.clone(),
            banned: true,
        })
        .await;
    let row = client
        .until(|m| match m {
            ServerMsg::User(row) => Some(row.clone()),
            _ => None,
        })
        .await;
    assert!(row.banned);
    assert!(rig.engine.user(&ann).await.expect("user").banned);
}

#[tokio::test]
async fn log_lines_stream_to_the_console() {
    let rig = rig(FakeBackend::new("local"), false);
    rig.logs.push(LogLine {
        at_ms: 1,
        level: LogLevel::Info,
        target: "t".into(),
        text: "before attach".into(),
    });
    let mut client = Client::new(rig.control.connect_in_process(rig.shutdown.clone()));
    client.hello(None).await;
    let snapshot = client
        .until(|m| match m {
            ServerMsg::Snapshot(s) => Some(s.clone()),
            _ => None,
        })
        .await;
    assert_eq!(snapshot.logs.len(), 1);
    rig.logs.push(LogLine {
        at_ms: 2,
        level: LogLevel::Error,
        target: "t".into(),
        text: "after attach".into(),
    });
    let line = client
        .until(|m| match m {
            ServerMsg::Log(line) => Some(line.clone()),
            _ => None,
        })
        .await;
    assert_eq!(line.text, "after attach");
}

#[tokio::test]
async fn a_live_socket_is_not_stolen_and_a_stale_one_is_replaced() {
    let rig = rig(FakeBackend::new("local"), false);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.sock");
    // A stale socket file: bound once, its listener gone.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let _server = serve_unix(&rig, &path).await;

    let err = rig
        .control
        .serve_unix(&path, CancellationToken::new())
        .await
        .expect_err("in use");
    assert!(matches!(err, ControlError::InUse(_)), "{err}");
    rig.shutdown.cancel();
}

#[tokio::test]
async fn serve_runs_the_socket_and_the_configured_port_until_shutdown() {
    let rig = rig(FakeBackend::new("local"), false);
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let settings = loopsmith_config::ControlSettings {
        socket: dir.path().join("control.sock"),
        tcp: format!("127.0.0.1:{port}"),
    };

    let err = loopsmith_engine::control::serve(
        rig.control.clone(),
        &settings,
        None,
        CancellationToken::new(),
    )
    .await
    .expect_err("a port without a token");
    assert!(matches!(err, ControlError::NoToken), "{err}");

    let token = Token::new("sixteen-chars-or-more");
    let server = tokio::spawn({
        let (control, settings, stop) =
            (rig.control.clone(), settings.clone(), rig.shutdown.clone());
        async move { loopsmith_engine::control::serve(control, &settings, Some(token), stop).await }
    });
    let tcp = async {
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
                return stream;
            }
            tokio::task::yield_now().await;
        }
    };
    let stream = tokio::time::timeout(WAIT, tcp)
        .await
        .expect("the port opens");
    let mut client = Client::new(stream);
    assert!(matches!(
        client.hello(Some("sixteen-chars-or-more")).await,
        ServerMsg::Welcome { .. }
    ));
    let mut local = Client::new(UnixStream::connect(&settings.socket).await.expect("socket"));
    assert!(matches!(local.hello(None).await, ServerMsg::Welcome { .. }));

    rig.shutdown.cancel();
    tokio::time::timeout(WAIT, server)
        .await
        .expect("serve stops within 30 s")
        .expect("task")
        .expect("served");
    assert!(client.closed().await, "TCP sessions end with the server");
}

#[tokio::test]
async fn spend_reaches_the_console_on_attach_and_when_it_changes() {
    let rig = rig(FakeBackend::new("local"), false);
    let spent = Arc::new(std::sync::Mutex::new(1.0));
    let source = spent.clone();
    let control = rig.control.clone().with_spend(move || {
        Some(Spend {
            today_usd: *source.lock().expect("lock"),
            cap_usd: 5.0,
        })
    });
    let mut client = Client::new(control.connect_in_process(rig.shutdown.clone()));
    client.hello(None).await;
    let snapshot = client
        .until(|m| match m {
            ServerMsg::Snapshot(s) => Some(s.clone()),
            _ => None,
        })
        .await;
    assert_eq!(snapshot.spend.map(|s| s.today_usd), Some(1.0));
    *spent.lock().expect("lock") = 2.5;
    let now = client
        .until(|m| match m {
            ServerMsg::Backends { spend, .. } => spend.clone(),
            _ => None,
        })
        .await;
    assert_eq!(now.today_usd, 2.5);
}
