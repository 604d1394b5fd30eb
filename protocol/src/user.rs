use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The place a request came from; users on different platforms are different users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Telegram,
    Discord,
    /// The operator console.
    Console,
    /// `loopsmith generate` on the command line.
    Cli,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Telegram,
        Platform::Discord,
        Platform::Console,
        Platform::Cli,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Telegram => "telegram",
            Platform::Discord => "discord",
            Platform::Console => "console",
            Platform::Cli => "cli",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown platform `{s}`; expected telegram, discord, console or cli")
            })
    }
}

/// A user as the engine knows them: the platform plus that platform's id for them
/// (Telegram user id, Discord user snowflake, console operator name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UserKey {
    pub platform: Platform,
    pub id: String,
}

impl UserKey {
    pub fn new(platform: Platform, id: impl Into<String>) -> Self {
        UserKey {
            platform,
            id: id.into(),
        }
    }
}

impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_names_round_trip() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(p));
        }
        assert!("irc".parse::<Platform>().unwrap_err().contains("irc"));
    }
}
