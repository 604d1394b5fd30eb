//! Layering: built-in defaults, then the TOML file, then `LOOPSMITH_<SECTION>__<KEY>`
//! environment variables. Every value remembers where it came from so errors can say so.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::Path;

use toml::{Table, Value};

use crate::Settings;
use crate::error::{ConfigError, Origin};
use crate::keys::{self, KeyKind};

pub const ENV_PREFIX: &str = "LOOPSMITH_";
/// `LOOPSMITH_` variables that are not settings: they are read by the binary itself.
pub const RESERVED_ENV: [&str; 2] = ["LOOPSMITH_CONFIG", "LOOPSMITH_LOG"];

/// The frame shapes a request may ask for (mirrors the engine's `Aspect`).
pub const ASPECTS: [&str; 7] = ["1:1", "16:9", "9:16", "4:5", "5:4", "3:2", "2:3"];

/// (section, key) → where the value came from.
type Origins = HashMap<(String, String), Origin>;

impl Settings {
    /// Loads settings from an optional TOML file and the given environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                Settings::layered(Some((&text, path)), env)
            }
            None => Settings::layered(None, env),
        }
    }

    /// Loads settings from a config file's contents and the given environment, as [`load`]
    /// does once it has read the file. `path` only names the file in errors; it is not read.
    ///
    /// [`load`]: Settings::load
    pub fn from_toml(
        text: &str,
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        Settings::layered(Some((text, path)), env)
    }

    fn layered(
        file: Option<(&str, &Path)>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut merged = Table::new();
        let mut origins = Origins::new();
        if let Some((text, path)) = file {
            let table: Table = text
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: e.to_string().trim_end().to_string(),
                })?;
            let origin = Origin::File(path.to_path_buf());
            check_known(&table, &origin)?;
            for (section, value) in table {
                if let Value::Table(keys) = &value {
                    for key in keys.keys() {
                        origins.insert((section.clone(), key.clone()), origin.clone());
                    }
                }
                merged.insert(section, value);
            }
        }
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| {
                name.starts_with(ENV_PREFIX) && !RESERVED_ENV.contains(&name.as_str())
            })
            .collect();
        // Sorted so that the first bad variable reported is the same on every run.
        vars.sort();
        for (var, raw) in vars {
            apply_env(&mut merged, &mut origins, var, &raw)?;
        }
        let settings: Settings =
            serde_path_to_error::deserialize(Value::Table(merged)).map_err(|e| {
                let path = e.path().to_string();
                let mut segments = path.split('.');
                let section = segments.next().unwrap_or_default().to_string();
                // `backend_order[1]` is a list item: the key is what precedes the index.
                let key = segments
                    .next()
                    .unwrap_or_default()
                    .split('[')
                    .next()
                    .unwrap_or_default()
                    .to_string();
                bad_value(
                    &origins,
                    &section,
                    &key,
                    &path,
                    e.into_inner().message().to_string(),
                )
            })?;
        settings.validate(&origins)?;
        Ok(settings)
    }

    /// Loads settings from an optional file and this process's environment.
    pub fn load_from_process(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::load(file, process_env())
    }
}

/// This process's environment, keeping only variables whose name and value are UTF-8
/// (`std::env::vars` would panic on the others).
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v): (OsString, OsString)| {
            Some((k.into_string().ok()?, v.into_string().ok()?))
        })
        .collect()
}

fn check_known(table: &Table, origin: &Origin) -> Result<(), ConfigError> {
    for (section_name, value) in table {
        let section = keys::section(section_name).ok_or_else(|| ConfigError::UnknownSection {
            origin: origin.clone(),
            section: section_name.clone(),
            allowed: keys::section_names(),
        })?;
        let Value::Table(entries) = value else {
            return Err(ConfigError::BadValue {
                origin: origin.clone(),
                key: section_name.clone(),
                problem: format!(
                    "`{section_name}` must be a section ([{section_name}]), not a single value"
                ),
                allowed: format!("keys {}", section.key_names()),
            });
        };
        for (key_name, value) in entries {
            let key = section
                .key(key_name)
                .ok_or_else(|| unknown_key(origin, section_name, key_name, section.key_names()))?;
            if let (KeyKind::Map(entry_keys), Value::Table(named)) = (&key.kind, value) {
                for (entry_name, entry) in named {
                    let Value::Table(fields) = entry else {
                        continue; // the typed pass reports this with the value's path
                    };
                    for field in fields.keys() {
                        if !entry_keys.iter().any(|k| &k.name == field) {
                            let names = entry_keys
                                .iter()
                                .map(|k| k.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ");
                            return Err(ConfigError::UnknownKey {
                                origin: origin.clone(),
                                section: format!("{section_name}.{key_name}.{entry_name}"),
                                key: format!("{section_name}.{key_name}.{entry_name}.{field}"),
                                allowed: names,
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn unknown_key(origin: &Origin, section: &str, key: &str, allowed: String) -> ConfigError {
    if let Some(env) = secret_env_for(section, key) {
        return ConfigError::SecretInConfig {
            origin: origin.clone(),
            key: format!("{section}.{key}"),
            env,
        };
    }
    ConfigError::UnknownKey {
        origin: origin.clone(),
        section: section.to_string(),
        key: format!("{section}.{key}"),
        allowed,
    }
}

/// The environment variable a secret-looking key was probably meant to be.
fn secret_env_for(section: &str, key: &str) -> Option<&'static str> {
    let looks_secret = ["token", "bot_token", "key", "api_key", "fal_key", "secret"].contains(&key);
    if !looks_secret {
        return None;
    }
    match section {
        "telegram" => Some("TELEGRAM_BOT_TOKEN"),
        "discord" => Some("DISCORD_TOKEN"),
        "pika" => Some("FAL_KEY"),
        _ => None,
    }
}

fn apply_env(
    merged: &mut Table,
    origins: &mut Origins,
    var: String,
    raw: &str,
) -> Result<(), ConfigError> {
    let Some((section_name, key_name)) = var[ENV_PREFIX.len()..].split_once("__") else {
        return Err(ConfigError::BadEnvName { var });
    };
    let (section_name, key_name) = (section_name.to_lowercase(), key_name.to_lowercase());
    let origin = Origin::Env(var.clone());
    let section = keys::section(&section_name).ok_or_else(|| ConfigError::UnknownSection {
        origin: origin.clone(),
        section: section_name.clone(),
        allowed: keys::section_names(),
    })?;
    let key = section
        .key(&key_name)
        .ok_or_else(|| unknown_key(&origin, &section_name, &key_name, section.key_names()))?;
    let value = env_value(&key.kind, raw).map_err(|problem| ConfigError::BadValue {
        origin: origin.clone(),
        key: format!("{section_name}.{key_name}"),
        problem,
        allowed: key.kind.allowed(),
    })?;
    let entry = merged
        .entry(section_name.clone())
        .or_insert_with(|| Value::Table(Table::new()));
    if let Value::Table(keys) = entry {
        keys.insert(key_name.clone(), value);
    }
    origins.insert((section_name, key_name), origin);
    Ok(())
}

/// Turns an environment variable's text into the TOML value its key's type expects.
fn env_value(kind: &KeyKind, raw: &str) -> Result<Value, String> {
    let trimmed = raw.trim();
    match kind {
        KeyKind::Text | KeyKind::Choice(_) => Ok(Value::String(raw.to_string())),
        KeyKind::Integer { .. } => trimmed
            .parse::<i64>()
            .map(Value::Integer)
            .map_err(|_| format!("`{raw}` is not a whole number")),
        KeyKind::Number => trimmed
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| format!("`{raw}` is not a number")),
        KeyKind::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err(format!("`{raw}` is not true or false")),
        },
        KeyKind::List(item) => {
            if trimmed.is_empty() {
                return Ok(Value::Array(Vec::new()));
            }
            trimmed
                .split(',')
                .map(|part| env_value(item, part.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        KeyKind::Map(_) => {
            Err("a table cannot be set from the environment; set it in the config file".to_string())
        }
    }
}

fn bad_value(
    origins: &Origins,
    section: &str,
    key: &str,
    path: &str,
    problem: String,
) -> ConfigError {
    let origin = origins
        .get(&(section.to_string(), key.to_string()))
        .cloned()
        .unwrap_or(Origin::Default);
    let allowed = keys::section(section)
        .and_then(|s| s.key(key))
        .map(|k| match k.kind {
            // A free-form string's rules are in its description.
            KeyKind::Text => k.description.clone(),
            _ => k.kind.allowed(),
        })
        .unwrap_or_else(|| "see `loopsmith gen-config`".to_string());
    ConfigError::BadValue {
        origin,
        key: path.to_string(),
        problem,
        allowed,
    }
}

impl Settings {
    /// Checks the rules the types alone cannot express.
    fn validate(&self, origins: &Origins) -> Result<(), ConfigError> {
        let fail = |section: &str, key: &str, problem: String, allowed: &str| {
            let mut err = bad_value(origins, section, key, &format!("{section}.{key}"), problem);
            if let ConfigError::BadValue { allowed: a, .. } = &mut err {
                *a = allowed.to_string();
            }
            Err(err)
        };
        if self.engine.workers == 0 {
            return fail(
                "engine",
                "workers",
                "0 workers would never render".into(),
                "1 or more",
            );
        }
        if !self.metrics.listen.ip().is_loopback() {
            return fail(
                "metrics",
                "listen",
                format!(
                    "{} is not a loopback address; metrics carry user counts and spend",
                    self.metrics.listen
                ),
                "a loopback address such as 127.0.0.1:9464 or [::1]:9464",
            );
        }
        let order = &self.engine.backend_order;
        if order.is_empty() {
            return fail(
                "engine",
                "backend_order",
                "the list is empty".into(),
                "local, pika or both",
            );
        }
        if order.len() == 2 && order[0] == order[1] {
            return fail(
                "engine",
                "backend_order",
                format!("`{}` is listed twice", order[0].as_str()),
                "each backend at most once",
            );
        }
        if self.local.capacity == 0 {
            return fail(
                "local",
                "capacity",
                "0 would never render".into(),
                "1 or more",
            );
        }
        check_url(&self.pika.base_url, false)
            .or_else(|p| fail("pika", "base_url", p, "an http:// or https:// URL"))?;
        if !["720p", "1080p"].contains(&self.pika.resolution.as_str()) {
            return fail(
                "pika",
                "resolution",
                format!("`{}` is not offered by Pika", self.pika.resolution),
                "720p or 1080p",
            );
        }
        check_url(&self.pika.storage_url, false)
            .or_else(|p| fail("pika", "storage_url", p, "an http:// or https:// URL"))?;
        for (key, value) in [
            ("poll_interval_ms", self.pika.poll_interval_ms),
            ("deadline_secs", self.pika.deadline_secs),
            ("max_attempts", u64::from(self.pika.max_attempts)),
            ("max_result_mib", self.pika.max_result_mib),
        ] {
            if value == 0 {
                return fail("pika", key, "0 would never finish".into(), "1 or more");
            }
        }
        let rate = self.engine.breaker_failure_rate;
        if !(0.0..=1.0).contains(&rate) {
            return fail(
                "engine",
                "breaker_failure_rate",
                format!("{rate} is not a share"),
                "a number from 0 to 1",
            );
        }
        if self.engine.breaker_failures == 0 {
            return fail(
                "engine",
                "breaker_failures",
                "0 would keep the breaker open".into(),
                "1 or more",
            );
        }
        for (key, value) in [
            ("daily_budget_usd", self.pika.daily_budget_usd),
            ("user_daily_budget_usd", self.pika.user_daily_budget_usd),
            ("price_720p_usd", self.pika.price_720p_usd),
            ("price_1080p_usd", self.pika.price_1080p_usd),
        ] {
            if !(value >= 0.0 && value.is_finite()) {
                return fail(
                    "pika",
                    key,
                    format!("{value} is not an amount"),
                    "0 or more US dollars",
                );
            }
        }
        check_url(&self.telegram.api_url, false)
            .or_else(|p| fail("telegram", "api_url", p, "an http:// or https:// URL"))?;
        check_url(&self.telegram.webhook_url, true)
            .or_else(|p| fail("telegram", "webhook_url", p, "empty, or an https:// URL"))?;
        if self.telegram.webhook_url.starts_with("http://") {
            return fail(
                "telegram",
                "webhook_url",
                "Telegram only posts to https".into(),
                "empty, or an https:// URL",
            );
        }
        check_url(&self.discord.proxy_url, true).or_else(|p| {
            fail(
                "discord",
                "proxy_url",
                p,
                "empty, or an http:// or https:// URL",
            )
        })?;
        if !self.discord.interactions_listen.is_empty() {
            if self
                .discord
                .interactions_listen
                .parse::<std::net::SocketAddr>()
                .is_err()
            {
                return fail(
                    "discord",
                    "interactions_listen",
                    format!("`{}` is not an address", self.discord.interactions_listen),
                    "empty, or an address such as 127.0.0.1:8444",
                );
            }
            let key = &self.discord.public_key;
            if key.len() != 64 || !key.chars().all(|c| c.is_ascii_hexdigit()) {
                // Blamed on the key that was set: public_key is usually just missing.
                return fail(
                    "discord",
                    "interactions_listen",
                    "it is set, so every request must be verified, but discord.public_key is \
                     not the application's public key"
                        .into(),
                    "empty, or set together with public_key (64 hex characters)",
                );
            }
        }
        if !self.control.tcp.is_empty() {
            // The control port can run the engine; it must never be reachable off the machine.
            match self.control.tcp.parse::<std::net::SocketAddr>() {
                Ok(addr) if addr.ip().is_loopback() => {}
                Ok(addr) => {
                    return fail(
                        "control",
                        "tcp",
                        format!("{addr} is reachable from other machines"),
                        "empty, or a loopback address such as 127.0.0.1:7878",
                    );
                }
                Err(_) => {
                    return fail(
                        "control",
                        "tcp",
                        format!("`{}` is not an address with a port", self.control.tcp),
                        "empty, or a loopback address such as 127.0.0.1:7878",
                    );
                }
            }
        }
        if self.limits.requests_per_minute == 0 {
            return fail(
                "limits",
                "requests_per_minute",
                "0 would refuse every request".into(),
                "1 or more",
            );
        }
        if self.limits.burst == 0 {
            return fail(
                "limits",
                "burst",
                "0 would refuse every request".into(),
                "1 or more",
            );
        }
        let styles = &self.styles;
        if !(3.0..=10.0).contains(&styles.duration_secs) {
            return fail(
                "styles",
                "duration_secs",
                format!("{} is out of range", styles.duration_secs),
                "3 to 10 seconds",
            );
        }
        if !(8..=30).contains(&styles.fps) {
            return fail(
                "styles",
                "fps",
                format!("{} is out of range", styles.fps),
                "8 to 30",
            );
        }
        if !ASPECTS.contains(&styles.aspect.as_str()) {
            return fail(
                "styles",
                "aspect",
                format!("`{}` is not a supported shape", styles.aspect),
                &ASPECTS.join(", "),
            );
        }
        if styles.motion > 4 {
            return fail(
                "styles",
                "motion",
                format!("{} is out of range", styles.motion),
                "0 to 4",
            );
        }
        for (name, preset) in &styles.custom {
            let key = |field: &str| format!("styles.custom.{name}.{field}");
            let problem = if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                Some((
                    key("").trim_end_matches('.').to_string(),
                    format!("`{name}` is not a usable preset name"),
                    "lowercase letters, digits and dashes",
                ))
            } else if preset.duration_secs != 0.0 && !(3.0..=10.0).contains(&preset.duration_secs) {
                Some((
                    key("duration_secs"),
                    format!("{} is out of range", preset.duration_secs),
                    "0 (unset) or 3 to 10 seconds",
                ))
            } else if preset.fps != 0 && !(8..=30).contains(&preset.fps) {
                Some((
                    key("fps"),
                    format!("{} is out of range", preset.fps),
                    "0 (unset) or 8 to 30",
                ))
            } else if !preset.aspect.is_empty() && !ASPECTS.contains(&preset.aspect.as_str()) {
                Some((
                    key("aspect"),
                    format!("`{}` is not a supported shape", preset.aspect),
                    "empty (unset) or 1:1, 16:9, 9:16, 4:5, 5:4, 3:2, 2:3",
                ))
            } else if !(-1..=4).contains(&preset.motion) {
                Some((
                    key("motion"),
                    format!("{} is out of range", preset.motion),
                    "-1 (unset) or 0 to 4",
                ))
            } else if !(0.0..=20.0).contains(&preset.guidance) {
                Some((
                    key("guidance"),
                    format!("{} is out of range", preset.guidance),
                    "0 (model default) to 20",
                ))
            } else {
                None
            };
            if let Some((key, problem, allowed)) = problem {
                let origin = origins
                    .get(&("styles".to_string(), "custom".to_string()))
                    .cloned()
                    .unwrap_or(Origin::Default);
                return Err(ConfigError::BadValue {
                    origin,
                    key,
                    problem,
                    allowed: allowed.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// `Ok` for an http(s) URL with a host (or an empty string where `empty_ok`).
fn check_url(url: &str, empty_ok: bool) -> Result<(), String> {
    if url.is_empty() {
        return if empty_ok {
            Ok(())
        } else {
            Err("the URL is empty".to_string())
        };
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http(s) URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}
