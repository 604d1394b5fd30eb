//! Chat surfaces: Telegram (teloxide) and Discord (serenity) over one shared command layer
//! ([`command`]).

pub mod command;
pub mod discord;
pub mod telegram;
