//! Chat surfaces: Telegram (teloxide) and Discord (serenity) over one shared command layer
//! ([`command`]).

pub mod command;
pub mod discord;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod telegram;
