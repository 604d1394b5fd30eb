//! Chat surfaces: Telegram (teloxide) over one shared command layer ([`command`]), which the
//! Discord adapter will reuse.

pub mod command;
pub mod telegram;
