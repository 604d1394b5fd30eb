//! Fake of the Telegram Bot API (see `shared/reference/telegram.md`). Not written yet.
