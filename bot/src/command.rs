//! The command layer both chat surfaces share: reading prompts with options, and every text
//! the bots send. Platform adapters (Telegram, Discord) only translate to and from their APIs.

pub mod options;
pub mod texts;

pub use options::{OptionError, Parsed, parse};
