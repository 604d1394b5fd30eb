//! Chat surfaces: Telegram (teloxide) and Discord (serenity) over one shared command layer
//! ([`command`]).
//!
//! The platform adapters are not built yet. teloxide 0.17 and serenity 0.12.5 are declared
//! already so the workspace's pinned versions resolve and build together.

pub mod command;
