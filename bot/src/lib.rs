//! Chat surfaces: Telegram (teloxide) and Discord (serenity) over one shared command layer.
//!
//! Empty for now; the Telegram and Discord work fills it. teloxide 0.17 and serenity 0.12.5
//! are declared already so the workspace's pinned versions resolve and build together.
