//! The loopsmith operator console (ratatui). It speaks only the control protocol
//! ([`loopsmith_protocol::control`]): it attaches to `loopsmith serve` over the control
//! socket, or to an engine the binary runs in-process, through the same [`Connect`] seam.
//!
//! State and its update logic live in [`app`], [`keys`] and [`mouse`] (no I/O, unit-tested);
//! drawing in [`ui`] (snapshot-tested on ratatui's `TestBackend`); the link with reconnect and
//! backoff in [`client`]; the loop that joins them in [`run()`].

pub mod app;
pub mod client;
pub mod forms;
pub mod graphics;
pub mod keys;
mod model;
pub mod mouse;
mod run;
pub mod stats;
pub mod terminal;
pub mod ui;

pub use app::{Action, App, Net, Screen};
pub use client::{BoxStream, Connect, Connecting, Tcp, UnixSocket};
pub use run::{Options, run};
