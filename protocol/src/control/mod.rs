//! The control protocol between the engine and the operator console.
//!
//! A connection starts with a handshake: the client sends [`ClientMsg::Hello`] with the
//! protocol version it speaks (and, over TCP, the access token); the server answers
//! [`ServerMsg::Welcome`] and then a full [`Snapshot`], or [`ServerMsg::Refused`] and closes.
//! After that both sides send frames whenever they like: the server streams job updates,
//! backend health and log lines; the client sends commands, each tagged with a request id the
//! server's [`ServerMsg::Reply`] echoes.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON
//! ([`frame`]). Length-prefixing (rather than newline-delimiting) lets a reader refuse an
//! oversized frame before buffering it, and makes a torn stream an error instead of a merge.

pub mod base64;
pub mod frame;
mod messages;

pub use frame::{FrameError, MAX_FRAME_BYTES, decode, encode, read_frame, write_frame};
pub use messages::{
    BackendRow, BackendState, ClientMsg, LogLevel, LogLine, Outcome, PreviewFrames, ServerMsg,
    Snapshot, Spend, Token, UserRow,
};

/// Bumped whenever a message changes shape; a client and server must agree exactly.
pub const PROTOCOL_VERSION: u32 = 1;
