//! The gateway: a plain `ws://` WebSocket server speaking Discord's v10 protocol with JSON
//! text frames — HELLO, IDENTIFY (token checked, close 4004 when wrong) answered with READY
//! or RESUME answered with RESUMED, heartbeat acks, then the dispatches a test injects. A test
//! can close every session (code 4000, which clients may resume after); events injected while
//! no session is up are lost, where Discord would replay them on resume.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::wire::user;
use super::{APPLICATION_ID, FakeDiscord};
use crate::Running;

/// Not an event: tells every session to close.
pub const CLOSE: &str = "__close__";
/// Short, so a test sees heartbeats; serenity heartbeats at whatever HELLO says.
const HEARTBEAT_MS: u64 = 2_000;

pub async fn serve(fake: FakeDiscord) -> std::io::Result<Running> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(session(fake.clone(), stream));
        }
    });
    Ok(Running { addr, task })
}

fn text(value: Value) -> Message {
    Message::Text(value.to_string())
}

/// One client connection, from HELLO until either side closes.
async fn session(fake: FakeDiscord, stream: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let hello = json!({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_MS}, "s": null, "t": null});
    if ws.send(text(hello)).await.is_err() {
        return;
    }
    // IDENTIFY or RESUME first; heartbeats before them are acked too.
    let resumed = loop {
        let Some(Ok(message)) = ws.next().await else {
            return;
        };
        let Some(frame) = parse(&message) else {
            continue;
        };
        let op = frame["op"].as_u64().unwrap_or(u64::MAX);
        fake.state().gateway_ops.push(op);
        fake.changed();
        match op {
            1 if ws.send(text(json!({"op": 11}))).await.is_err() => return,
            2 | 6 => {
                let token = frame["d"]["token"].as_str().unwrap_or_default();
                let expected = &fake.shared.token;
                if token != expected && token != format!("Bot {expected}") {
                    let close = CloseFrame {
                        code: CloseCode::Library(4004),
                        reason: "Authentication failed.".into(),
                    };
                    let _ = ws.send(Message::Close(Some(close))).await;
                    return;
                }
                break op == 6;
            }
            _ => {}
        }
    };
    // Subscribed before READY, so nothing injected after the test saw READY is missed.
    let mut events = fake.shared.events.subscribe();
    let ready = if resumed {
        json!({"op": 0, "t": "RESUMED", "s": 1, "d": {}})
    } else {
        json!({
        "op": 0, "t": "READY", "s": 1,
        "d": {
            "v": 10,
            "user": user(APPLICATION_ID, "loopsmith", true),
            "guilds": [],
            "session_id": "fake-session",
            "resume_gateway_url": fake.state().gateway_url,
            "application": {"id": APPLICATION_ID.to_string(), "flags": 0},
        }
        })
    };
    if ws.send(text(ready)).await.is_err() {
        return;
    }
    {
        let mut state = fake.state();
        state.live += 1;
        state.sessions += 1;
    }
    fake.changed();
    let mut seq = 1u64;
    loop {
        tokio::select! {
            incoming = ws.next() => {
                let Some(Ok(message)) = incoming else { break };
                if matches!(message, Message::Close(_)) {
                    break;
                }
                let Some(frame) = parse(&message) else { continue };
                let op = frame["op"].as_u64().unwrap_or(u64::MAX);
                fake.state().gateway_ops.push(op);
                fake.changed();
                if op == 1 && ws.send(text(json!({"op": 11}))).await.is_err() {
                    break;
                }
            }
            event = events.recv() => {
                let Ok((name, data)) = event else { break };
                if name == CLOSE {
                    let close = CloseFrame {
                        code: CloseCode::Library(4000),
                        reason: "Unknown error.".into(),
                    };
                    let _ = ws.send(Message::Close(Some(close))).await;
                    break;
                }
                seq += 1;
                let dispatch = json!({"op": 0, "t": name, "s": seq, "d": data});
                if ws.send(text(dispatch)).await.is_err() {
                    break;
                }
            }
        }
    }
    {
        let mut state = fake.state();
        state.live = state.live.saturating_sub(1);
    }
    fake.changed();
}

fn parse(message: &Message) -> Option<Value> {
    match message {
        Message::Text(t) => serde_json::from_str(t).ok(),
        Message::Binary(b) => serde_json::from_slice(b).ok(),
        _ => None,
    }
}
