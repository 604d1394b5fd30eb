//! The link to the engine: handshake, forwarding both ways, and reconnecting with backoff.
//! Time is paused, so the backoff is checked exactly without waiting for it.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loopsmith_console::app::Net;
use loopsmith_console::client::{self, BoxStream, Connect, Connecting, backoff};
use loopsmith_protocol::control::{
    ClientMsg, PROTOCOL_VERSION, ServerMsg, Token, read_frame, write_frame,
};
use loopsmith_protocol::{Platform, UserKey};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Hands out prepared in-memory streams, one per connection attempt; refuses when out.
struct Streams {
    queue: Arc<Mutex<VecDeque<DuplexStream>>>,
    token: Option<Token>,
}

impl Connect for Streams {
    fn connect(&self) -> Connecting<'_> {
        let next = self.queue.lock().expect("lock").pop_front();
        Box::pin(async move {
            next.map(|s| Box::new(s) as BoxStream)
                .ok_or_else(|| io::Error::new(io::ErrorKind::ConnectionRefused, "nobody listening"))
        })
    }

    fn token(&self) -> Option<Token> {
        self.token.clone()
    }

    fn describe(&self) -> String {
        "memory".into()
    }
}

fn pair() -> (DuplexStream, DuplexStream) {
    tokio::io::duplex(1 << 16)
}

async fn next(rx: &mut mpsc::Receiver<Net>) -> Net {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a report in time")
        .expect("the client is running")
}

/// Plays the server's side of a handshake.
async fn welcome(server: &mut DuplexStream) -> ClientMsg {
    let hello: ClientMsg = read_frame(server).await.expect("read").expect("hello");
    write_frame(
        server,
        &ServerMsg::Welcome {
            protocol: PROTOCOL_VERSION,
            server: "test".into(),
            operator: UserKey::new(Platform::Console, "ops"),
        },
    )
    .await
    .expect("welcome");
    hello
}

#[test]
fn backoff_doubles_from_a_quarter_second_to_ten() {
    let waits: Vec<u64> = (1..=8).map(|n| backoff(n).as_millis() as u64).collect();
    assert_eq!(
        waits,
        vec![250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000]
    );
    assert_eq!(backoff(u32::MAX), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn it_reconnects_with_backoff_after_the_link_drops() {
    let (client_a, mut server_a) = pair();
    let queue = Arc::new(Mutex::new(VecDeque::from([client_a])));
    let connect = Streams {
        queue: queue.clone(),
        token: Some(Token::new("sekrit-token-value")),
    };
    let (to_app, mut reports) = mpsc::channel(64);
    let (commands, command_rx) = mpsc::channel(8);
    let stop = CancellationToken::new();
    let task = tokio::spawn(client::run(
        Box::new(connect),
        Some("ops".into()),
        to_app,
        command_rx,
        stop.clone(),
    ));

    assert_eq!(next(&mut reports).await, Net::Connecting { attempt: 1 });
    let ClientMsg::Hello {
        protocol,
        operator,
        token,
        ..
    } = welcome(&mut server_a).await
    else {
        panic!("the first frame is a hello");
    };
    assert_eq!(protocol, PROTOCOL_VERSION);
    assert_eq!(operator.as_deref(), Some("ops"));
    assert_eq!(
        token.map(|t| t.expose().to_string()).as_deref(),
        Some("sekrit-token-value")
    );
    assert!(matches!(next(&mut reports).await, Net::Connected { .. }));

    write_frame(&mut server_a, &ServerMsg::Snapshot(Box::default()))
        .await
        .expect("snapshot");
    assert!(
        matches!(next(&mut reports).await, Net::Message(m) if matches!(*m, ServerMsg::Snapshot(_)))
    );
    commands.send(ClientMsg::Refresh).await.expect("command");
    let got: ClientMsg = read_frame(&mut server_a)
        .await
        .expect("read")
        .expect("frame");
    assert_eq!(got, ClientMsg::Refresh);

    // The server goes away: a quick first retry.
    drop(server_a);
    let Net::Disconnected { retry_in_ms, .. } = next(&mut reports).await else {
        panic!("expected a disconnect");
    };
    assert_eq!(retry_in_ms, 250);
    let before = tokio::time::Instant::now();
    assert_eq!(next(&mut reports).await, Net::Connecting { attempt: 2 });
    assert_eq!(before.elapsed(), Duration::from_millis(250));

    // Nobody listening: the wait doubles.
    let Net::Disconnected {
        reason,
        retry_in_ms,
    } = next(&mut reports).await
    else {
        panic!("expected a failed attempt");
    };
    assert!(reason.contains("nobody listening"), "{reason}");
    assert_eq!(retry_in_ms, 500);

    // The server is back.
    let (client_b, mut server_b) = pair();
    queue.lock().expect("lock").push_back(client_b);
    let before = tokio::time::Instant::now();
    assert_eq!(next(&mut reports).await, Net::Connecting { attempt: 3 });
    assert_eq!(before.elapsed(), Duration::from_millis(500));
    welcome(&mut server_b).await;
    assert!(matches!(next(&mut reports).await, Net::Connected { .. }));

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the client stops when told")
        .expect("client task");
}

#[tokio::test(start_paused = true)]
async fn a_refused_handshake_is_reported_with_its_reason() {
    let (client_a, mut server_a) = pair();
    let connect = Streams {
        queue: Arc::new(Mutex::new(VecDeque::from([client_a]))),
        token: None,
    };
    let (to_app, mut reports) = mpsc::channel(64);
    let (_commands, command_rx) = mpsc::channel(8);
    let stop = CancellationToken::new();
    let task = tokio::spawn(client::run(
        Box::new(connect),
        None,
        to_app,
        command_rx,
        stop.clone(),
    ));
    assert_eq!(next(&mut reports).await, Net::Connecting { attempt: 1 });
    let _hello: ClientMsg = read_frame(&mut server_a)
        .await
        .expect("read")
        .expect("hello");
    write_frame(
        &mut server_a,
        &ServerMsg::Refused {
            reason: "a valid control token is required".into(),
        },
    )
    .await
    .expect("refuse");
    let Net::Disconnected { reason, .. } = next(&mut reports).await else {
        panic!("expected a disconnect");
    };
    assert_eq!(reason, "refused: a valid control token is required");
    stop.cancel();
    task.await.expect("client task");
}
