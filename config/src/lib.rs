//! loopsmith's settings.
//!
//! Loaded as built-in defaults → a TOML file → environment variables
//! `LOOPSMITH_<SECTION>__<KEY>` (lists comma-separated). Unknown keys and bad values are
//! errors that name the key, where the value came from and what is allowed. Secrets come only
//! from the environment or a secrets file ([`Secrets`]).

mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod keys;
mod load;
mod reference;
mod secrets;
mod settings;
mod template;

pub use error::{ConfigError, Origin};
pub use load::{ASPECTS, ENV_PREFIX, RESERVED_ENV, process_env};
pub use reference::reference_markdown;
pub use secrets::{DISCORD_TOKEN, FAL_KEY, SECRET_NAMES, Secrets, TELEGRAM_BOT_TOKEN};
pub use settings::{
    AdminsSettings, BackendName, ControlSettings, Device, DiscordSettings, EngineSettings,
    LimitsSettings, LocalSettings, PikaSettings, PresetSettings, Settings, StorageSettings,
    StylesSettings, TelegramSettings,
};
pub use template::example_config;
