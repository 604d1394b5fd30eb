//! Tokens and keys. They come only from the environment or a `NAME=value` secrets file and
//! live in `secrecy` types, whose `Debug` prints nothing of the value.

use std::path::Path;

use secrecy::SecretString;

use crate::Settings;
use crate::error::ConfigError;

pub const TELEGRAM_BOT_TOKEN: &str = "TELEGRAM_BOT_TOKEN";
pub const DISCORD_TOKEN: &str = "DISCORD_TOKEN";
pub const FAL_KEY: &str = "FAL_KEY";
pub const SECRET_NAMES: [&str; 3] = [TELEGRAM_BOT_TOKEN, DISCORD_TOKEN, FAL_KEY];

/// The secrets loopsmith may need; each is absent until configured.
#[derive(Debug, Default)]
pub struct Secrets {
    pub telegram_bot_token: Option<SecretString>,
    pub discord_token: Option<SecretString>,
    pub fal_key: Option<SecretString>,
}

impl Secrets {
    /// Reads `engine.secrets_file` (when set), then lets the environment override it.
    pub fn load(
        settings: &Settings,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Secrets, ConfigError> {
        let mut secrets = Secrets::default();
        if !settings.engine.secrets_file.is_empty() {
            let path = Path::new(&settings.engine.secrets_file);
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::ReadSecrets {
                    path: path.to_path_buf(),
                    source,
                })?;
            for (index, line) in text.lines().enumerate() {
                let bad = |problem: String| ConfigError::BadSecretsLine {
                    path: path.to_path_buf(),
                    line: index + 1,
                    problem,
                };
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                let (name, value) = line
                    .split_once('=')
                    .ok_or_else(|| bad("expected NAME=value".to_string()))?;
                let name = name.trim();
                if !SECRET_NAMES.contains(&name) {
                    return Err(bad(format!(
                        "unknown name `{name}`; expected {}",
                        SECRET_NAMES.join(", ")
                    )));
                }
                secrets.set(name, unquote(value.trim()));
            }
        }
        for (name, value) in env {
            if SECRET_NAMES.contains(&name.as_str()) && !value.is_empty() {
                secrets.set(&name, &value);
            }
        }
        Ok(secrets)
    }

    fn set(&mut self, name: &str, value: &str) {
        let slot = match name {
            TELEGRAM_BOT_TOKEN => &mut self.telegram_bot_token,
            DISCORD_TOKEN => &mut self.discord_token,
            _ => &mut self.fal_key,
        };
        *slot = Some(SecretString::from(value.to_string()));
    }

    /// Which secrets are present, by name, for reports that must never show the values.
    pub fn presence(&self) -> [(&'static str, bool); 3] {
        [
            (TELEGRAM_BOT_TOKEN, self.telegram_bot_token.is_some()),
            (DISCORD_TOKEN, self.discord_token.is_some()),
            (FAL_KEY, self.fal_key.is_some()),
        ]
    }
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    const CANARY: &str = "123456789:CANARY-never-print-this-token-value";

    fn with_file(text: &str) -> (tempfile::TempDir, Settings) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secrets.env");
        std::fs::write(&path, text).expect("write secrets");
        let mut settings = Settings::default();
        settings.engine.secrets_file = path.display().to_string();
        (dir, settings)
    }

    #[test]
    fn reads_the_file_and_the_environment_wins() {
        let (_dir, settings) = with_file(&format!(
            "# comment\n\nTELEGRAM_BOT_TOKEN=\"{CANARY}\"\nexport FAL_KEY=from-file\n"
        ));
        let env = [("FAL_KEY".to_string(), "from-env".to_string())];
        let secrets = Secrets::load(&settings, env).expect("loads");
        assert_eq!(
            secrets
                .telegram_bot_token
                .as_ref()
                .map(|s| s.expose_secret().to_string()),
            Some(CANARY.to_string())
        );
        assert_eq!(
            secrets
                .fal_key
                .as_ref()
                .map(|s| s.expose_secret().to_string()),
            Some("from-env".to_string())
        );
        assert!(secrets.discord_token.is_none());
        assert_eq!(
            secrets.presence(),
            [
                (TELEGRAM_BOT_TOKEN, true),
                (DISCORD_TOKEN, false),
                (FAL_KEY, true)
            ]
        );
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let env = [(TELEGRAM_BOT_TOKEN.to_string(), CANARY.to_string())];
        let secrets = Secrets::load(&Settings::default(), env).expect("loads");
        let debug = format!("{secrets:?}");
        assert!(!debug.contains("CANARY"), "{debug}");
        assert!(!debug.contains("123456789"), "{debug}");
    }

    #[test]
    fn a_bad_line_names_the_file_and_line() {
        let (_dir, settings) = with_file("FAL_KEY=x\nTELEGRAM_TOKEN=abc\n");
        let err = Secrets::load(&settings, []).expect_err("unknown name");
        let msg = err.to_string();
        assert!(msg.contains("secrets.env, line 2"), "{msg}");
        assert!(msg.contains("unknown name `TELEGRAM_TOKEN`"), "{msg}");
        assert!(!msg.contains("abc"), "the value must not be echoed: {msg}");

        let (_dir, settings) = with_file("just-a-token\n");
        let msg = Secrets::load(&settings, []).expect_err("no =").to_string();
        assert!(msg.contains("line 1: expected NAME=value"), "{msg}");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let mut settings = Settings::default();
        settings.engine.secrets_file = "/nonexistent/secrets.env".into();
        let msg = Secrets::load(&settings, [])
            .expect_err("missing")
            .to_string();
        assert_eq!(msg, "cannot read secrets file /nonexistent/secrets.env");
    }
}
