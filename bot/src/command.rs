//! The command layer both chat surfaces share: reading commands and prompts with options,
//! what each command and button does, following a job with progress, and every text the bots
//! send. Platform adapters (Telegram, Discord) only translate to and from their APIs.

pub mod actions;
pub mod input;
pub mod options;
pub mod progress;
pub mod texts;

pub use actions::{Action, Setting};
pub use input::{Command, Read};
pub use options::{OptionError, Parsed, parse, parse_with};
pub use progress::{EventSource, Outcome, Pacing, Surface, SurfaceError, follow};
