//! Every control message survives the wire unchanged, and bad input is an error, not a panic.

use loopsmith_protocol::control::{
    BackendRow, BackendState, ClientMsg, FrameError, LogLevel, LogLine, Outcome, PROTOCOL_VERSION,
    PreviewFrames, ServerMsg, Snapshot, Spend, Token, UserRow, decode, encode, read_frame,
    write_frame,
};
use loopsmith_protocol::{
    Aspect, BackendChoice, Fit, Job, JobEvent, JobId, JobState, OutputKind, Overrides,
    ParamDefaults, Params, Platform, Timing, Timings, UserKey, UserStyle,
};

fn user() -> UserKey {
    UserKey::new(Platform::Telegram, "42")
}

fn job() -> Job {
    Job {
        id: JobId(7),
        user: user(),
        origin: Some("update-1".into()),
        params: Params {
            prompt: "a cat, anime".into(),
            user_prompt: "a cat".into(),
            negative_prompt: String::new(),
            duration_secs: 3.0,
            fps: 8,
            aspect: Aspect::Square,
            motion: 2,
            seed: 1234,
            guidance: Some(7.5),
            style: "anime".into(),
            outputs: vec![OutputKind::Mp4, OutputKind::WebmSticker],
            backend: BackendChoice::Auto,
            fit: Fit::Crop,
            timing: Timing::SpeedUp,
            seamless_loop: false,
            image: None,
        },
        state: JobState::Failed {
            reason: "boom".into(),
            retryable: true,
            chain: vec!["local failed".into(), "boom at step 3".into()],
        },
        backend: Some("local".into()),
        attempts: 2,
        timings: Timings {
            created_ms: 1,
            started_ms: Some(2),
            rendered_ms: None,
            finished_ms: Some(4),
        },
    }
}

fn client_messages() -> Vec<ClientMsg> {
    vec![
        ClientMsg::Hello {
            protocol: PROTOCOL_VERSION,
            client: "test".into(),
            operator: Some("ann".into()),
            token: Some(Token::new("s3cret")),
        },
        ClientMsg::Hello {
            protocol: 99,
            client: "old".into(),
            operator: None,
            token: None,
        },
        ClientMsg::Submit {
            req: 1,
            prompt: "a dog".into(),
            overrides: Overrides {
                params: ParamDefaults {
                    duration_secs: Some(4.0),
                    aspect: Some(Aspect::Wide),
                    ..ParamDefaults::default()
                },
                seed: Some(9),
                outputs: Some(vec![OutputKind::Gif]),
                ..Overrides::default()
            },
        },
        ClientMsg::Cancel {
            req: 2,
            job: JobId(3),
        },
        ClientMsg::Retry {
            req: 3,
            job: JobId(3),
        },
        ClientMsg::SetStyle {
            req: 4,
            user: user(),
            style: UserStyle {
                preset: Some("pixel-art".into()),
                suffix: Some("glowing".into()),
                seed_lock: Some(5),
                ..UserStyle::default()
            },
        },
        ClientMsg::SetBanned {
            req: 5,
            user: user(),
            banned: true,
        },
        ClientMsg::SetBackendPaused {
            req: 6,
            backend: "pika".into(),
            paused: true,
        },
        ClientMsg::Preview {
            req: 7,
            job: JobId(3),
            max_side: 64,
        },
        ClientMsg::Refresh,
    ]
}

fn server_messages() -> Vec<ServerMsg> {
    let row = UserRow {
        key: user(),
        name: Some("Ann".into()),
        style: UserStyle::default(),
        banned: false,
        quota_used: 3,
        quota_limit: 50,
        jobs_total: 12,
        spend_usd: None,
    };
    let backend = BackendRow {
        name: "local".into(),
        state: BackendState::Busy {
            detail: "1/1".into(),
        },
        model: "tiny".into(),
        provider: "cpu".into(),
        device: "cpu".into(),
        running: 1,
        capacity: 1,
        pausable: true,
    };
    let log = LogLine {
        at_ms: 5,
        level: LogLevel::Warn,
        target: "loopsmith_engine".into(),
        text: "slow job=7".into(),
    };
    vec![
        ServerMsg::Welcome {
            protocol: PROTOCOL_VERSION,
            server: "loopsmith 0.1.0".into(),
            operator: UserKey::new(Platform::Console, "op"),
        },
        ServerMsg::Refused {
            reason: "version".into(),
        },
        ServerMsg::Snapshot(Box::new(Snapshot {
            jobs: vec![job()],
            users: vec![row.clone()],
            backends: vec![backend.clone()],
            queue_len: 4,
            logs: vec![log.clone()],
            spend: Some(Spend {
                today_usd: 1.5,
                cap_usd: 10.0,
            }),
            now_ms: 99,
        })),
        ServerMsg::Job(Box::new(job())),
        ServerMsg::Event(JobEvent {
            job: JobId(7),
            user: user(),
            state: JobState::Running {
                backend: "local".into(),
                progress: 0.5,
            },
            position: None,
            eta_ms: Some(1000),
        }),
        ServerMsg::Backends {
            backends: vec![
                backend,
                BackendRow {
                    name: "pika".into(),
                    state: BackendState::Paused,
                    model: "pika-2.2".into(),
                    provider: "fal".into(),
                    device: "remote".into(),
                    running: 0,
                    capacity: 4,
                    pausable: true,
                },
            ],
            queue_len: 0,
            spend: Some(Spend {
                today_usd: 0.5,
                cap_usd: 5.0,
            }),
        },
        ServerMsg::User(row),
        ServerMsg::Log(log),
        ServerMsg::Reply {
            req: 1,
            outcome: Outcome::Ok {
                message: "queued".into(),
                job: Some(JobId(8)),
            },
        },
        ServerMsg::Reply {
            req: 2,
            outcome: Outcome::Err {
                message: "no".into(),
            },
        },
        ServerMsg::Preview {
            req: 7,
            preview: PreviewFrames::from_rgb(JobId(7), 2, 1, 8, &[vec![1, 2, 3, 4, 5, 6]]),
        },
        ServerMsg::ProtocolError {
            message: "bad".into(),
        },
    ]
}

#[tokio::test]
async fn every_message_round_trips_through_frames() {
    let (mut a, mut b) = tokio::io::duplex(1024);
    let clients = client_messages();
    let servers = server_messages();
    let (c, s) = (clients.clone(), servers.clone());
    let writer = tokio::spawn(async move {
        for m in &c {
            write_frame(&mut a, m).await.expect("write client");
        }
        for m in &s {
            write_frame(&mut a, m).await.expect("write server");
        }
    });
    for expected in clients {
        let got: ClientMsg = read_frame(&mut b).await.expect("read").expect("frame");
        assert_eq!(got, expected);
    }
    for expected in servers {
        let got: ServerMsg = read_frame(&mut b).await.expect("read").expect("frame");
        assert_eq!(got, expected);
    }
    writer.await.expect("writer");
}

#[test]
fn the_hello_frame_has_a_stable_shape() {
    let hello = ClientMsg::Hello {
        protocol: 1,
        client: "c".into(),
        operator: None,
        token: None,
    };
    assert_eq!(
        String::from_utf8(encode(&hello).expect("encodes")).expect("utf8"),
        r#"{"type":"hello","protocol":1,"client":"c"}"#
    );
    let cancel: ClientMsg = decode(br#"{"type":"cancel","req":3,"job":9}"#).expect("decodes");
    assert_eq!(
        cancel,
        ClientMsg::Cancel {
            req: 3,
            job: JobId(9)
        }
    );
}

#[test]
fn tokens_never_show_in_debug_output() {
    let hello = ClientMsg::Hello {
        protocol: 1,
        client: "c".into(),
        operator: None,
        token: Some(Token::new("hunter2-very-secret")),
    };
    let debug = format!("{hello:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
}

#[test]
fn unknown_or_malformed_messages_are_errors() {
    for bad in [
        &br#"{"type":"launch_missiles"}"#[..],
        br#"{"type":"cancel","req":"x","job":1}"#,
        br#"{"type":"cancel"}"#,
        br#"[1,2,3]"#,
        b"",
        b"\xff\xfe",
    ] {
        let err = decode::<ClientMsg>(bad).expect_err("refused");
        assert!(matches!(err, FrameError::Malformed(_)), "{err}");
    }
}

#[test]
fn preview_frames_decode_and_check_their_size() {
    let frames = vec![vec![0u8, 1, 2, 3, 4, 5], vec![250, 251, 252, 253, 254, 255]];
    let preview = PreviewFrames::from_rgb(JobId(1), 2, 1, 8, &frames);
    assert_eq!(preview.decode_rgb().expect("decodes"), frames);

    let mut short = preview.clone();
    short.width = 3;
    assert!(
        short
            .decode_rgb()
            .unwrap_err()
            .contains("frame 0 has 6 bytes")
    );
    let mut garbage = preview.clone();
    garbage.frames[1] = "***".into();
    assert!(garbage.decode_rgb().unwrap_err().contains("frame 1"));
    let mut empty = preview;
    empty.fps = 0;
    assert!(empty.decode_rgb().is_err());
    let huge = PreviewFrames {
        job: JobId(1),
        width: u32::MAX,
        height: u32::MAX,
        fps: 1,
        frames: vec![],
    };
    // Either an overflow error or an empty decode; never a panic or a giant allocation.
    let _ = huge.decode_rgb();
}
