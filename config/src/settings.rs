//! The settings themselves. Doc comments here are user documentation: `loopsmith gen-config`
//! prints them above each key, so they say what a key does for a self-hoster.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// All of loopsmith's settings, one field per section of the config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How jobs run: workers, backend order, fallback, shutdown.
    pub engine: EngineSettings,
    /// Where loopsmith keeps its database and the stickers it made.
    pub storage: StorageSettings,
    /// The local ONNX text-to-video model.
    pub local: LocalSettings,
    /// Pika v2.2 on fal, the paid remote fallback.
    pub pika: PikaSettings,
    /// The Telegram bot.
    pub telegram: TelegramSettings,
    /// The Discord bot.
    pub discord: DiscordSettings,
    /// The operator console's control socket.
    pub control: ControlSettings,
    /// Per-user limits that keep one person from starving the rest.
    pub limits: LimitsSettings,
    /// Style presets and the defaults every request starts from.
    pub styles: StylesSettings,
    /// Users who may cancel anyone's job and run admin commands.
    pub admins: AdminsSettings,
    /// The Prometheus metrics endpoint of `loopsmith serve`.
    pub metrics: MetricsSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// Jobs rendered at the same time, across all backends (at least 1).
    pub workers: u32,
    /// Backends tried in this order when a request does not name one.
    pub backend_order: Vec<BackendName>,
    /// Whether a job that fails on one backend with an error another may not repeat moves to the next backend.
    pub fallback: bool,
    /// Seconds a running job gets to finish when loopsmith is asked to stop; the rest stay queued for the next start.
    pub shutdown_grace_secs: u64,
    /// A file of NAME=value lines holding TELEGRAM_BOT_TOKEN, DISCORD_TOKEN and FAL_KEY; empty for none. The environment wins over it.
    pub secrets_file: String,
    /// Seconds a job waits for a busy backend earlier in backend_order (the free local one) before a later one (paid Pika) takes it; 0 moves on at once. Only jobs beyond local.capacity see local busy, so set workers above it to let Pika absorb a queue.
    pub busy_wait_secs: u64,
    /// Consecutive failures that open a backend's circuit breaker, so no job is sent to it until the cool-down ends.
    pub breaker_failures: u32,
    /// Share of failed renders, over the last breaker_window renders, that also opens the breaker (0 to 1; 0 disables this rule).
    pub breaker_failure_rate: f64,
    /// How many recent renders the failure rate is taken over; the rule applies once the window is full.
    pub breaker_window: u32,
    /// Seconds an open breaker waits before letting one probe job through; success closes it, failure opens it again.
    pub breaker_cooldown_secs: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            workers: 1,
            backend_order: vec![BackendName::Local, BackendName::Pika],
            fallback: true,
            shutdown_grace_secs: 30,
            secrets_file: String::new(),
            busy_wait_secs: 20,
            breaker_failures: 5,
            breaker_failure_rate: 0.5,
            breaker_window: 20,
            breaker_cooldown_secs: 60,
        }
    }
}

/// A render backend's name in `engine.backend_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackendName {
    Local,
    Pika,
}

impl BackendName {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendName::Local => "local",
            BackendName::Pika => "pika",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// Folder for the database and artifacts; relative paths start from the working directory.
    pub data_dir: PathBuf,
    /// Days to keep finished jobs, their records and sticker files, before they are cleaned up (checked hourly; 0 keeps them forever).
    pub keep_artifacts_days: u32,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            data_dir: PathBuf::from("loopsmith-data"),
            keep_artifacts_days: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LocalSettings {
    /// Whether the local backend is used at all.
    pub enabled: bool,
    /// Model bundle folder, or `embedded` for the small model that ships with loopsmith.
    pub model: String,
    /// Where inference runs: auto (CUDA when available, else CPU), cpu, or cuda:N for GPU N.
    pub device: Device,
    /// Intra-op threads for ONNX Runtime on CPU; 0 lets ONNX Runtime choose.
    pub threads: u32,
    /// Path of libonnxruntime; empty to search ORT_DYLIB_PATH, the set-up's folder, Python packages and system paths.
    pub onnxruntime: String,
    /// Jobs one device renders at once.
    pub capacity: u32,
}

impl Default for LocalSettings {
    fn default() -> Self {
        LocalSettings {
            enabled: true,
            model: "embedded".to_string(),
            device: Device::Auto,
            threads: 0,
            onnxruntime: String::new(),
            capacity: 1,
        }
    }
}

/// Where local inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub enum Device {
    /// CUDA when a usable GPU is present, otherwise CPU.
    #[default]
    Auto,
    Cpu,
    /// An NVIDIA GPU by index.
    Cuda(u32),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Auto => f.write_str("auto"),
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a device; expected auto, cpu or cuda:N (N a GPU index)");
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => {
                let index = s.strip_prefix("cuda:").ok_or_else(bad)?;
                index.parse().map(Device::Cuda).map_err(|_| bad())
            }
        }
    }
}

impl TryFrom<String> for Device {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Device> for String {
    fn from(value: Device) -> Self {
        value.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PikaSettings {
    /// Whether Pika on fal may render jobs; it needs FAL_KEY and costs money.
    pub enabled: bool,
    /// Base URL of fal's queue API.
    pub base_url: String,
    /// Hosts results may be downloaded from, each with its subdomains; https only, except loopback hosts listed here.
    pub media_hosts: Vec<String>,
    /// Resolution asked of Pika: 720p or 1080p.
    pub resolution: String,
    /// Most US dollars spent on Pika per UTC day across everyone (0 disables paid renders).
    pub daily_budget_usd: f64,
    /// Most US dollars one user may spend on Pika per UTC day.
    pub user_daily_budget_usd: f64,
    /// What a 5 s clip at 720p costs, in US dollars; reserved from the budget before each submit (10 s clips cost twice as much).
    pub price_720p_usd: f64,
    /// What a 5 s clip at 1080p costs, in US dollars.
    pub price_1080p_usd: f64,
    /// Base URL of fal's storage API, where image inputs are uploaded.
    pub storage_url: String,
    /// Milliseconds between status polls while a job is queued or rendering at fal (jittered by a quarter either way).
    pub poll_interval_ms: u64,
    /// Follow fal's status stream (server-sent events) instead of polling, falling back to polling whenever it breaks; off by default, as in fal's own JavaScript client.
    pub status_stream: bool,
    /// Seconds fal may take to start a job (queue wait included) before it gives up unpaid; 0 sends no limit.
    pub start_timeout_secs: u64,
    /// Seconds a whole Pika job may take, from submit to the decoded clip; past it the request is cancelled at fal.
    pub deadline_secs: u64,
    /// Attempts per HTTP call when fal answers 408, 429 or 5xx or the connection fails (1 means no retry).
    pub max_attempts: u32,
    /// Largest result file downloaded, in MiB; a bigger one is refused while streaming.
    pub max_result_mib: u64,
}

impl Default for PikaSettings {
    fn default() -> Self {
        PikaSettings {
            enabled: false,
            base_url: "https://queue.fal.run".to_string(),
            media_hosts: vec!["v3.fal.media".to_string(), "fal.media".to_string()],
            resolution: "720p".to_string(),
            daily_budget_usd: 5.0,
            user_daily_budget_usd: 1.0,
            price_720p_usd: 0.20,
            price_1080p_usd: 0.45,
            storage_url: "https://rest.fal.ai".to_string(),
            poll_interval_ms: 2000,
            status_stream: false,
            start_timeout_secs: 300,
            deadline_secs: 900,
            max_attempts: 5,
            max_result_mib: 50,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramSettings {
    /// Whether the Telegram bot runs; it needs TELEGRAM_BOT_TOKEN.
    pub enabled: bool,
    /// Bot API server; point it at a self-hosted telegram-bot-api server if you run one.
    pub api_url: String,
    /// Public https URL Telegram posts updates to; empty uses long polling.
    pub webhook_url: String,
    /// Address the webhook server listens on, behind the https proxy that webhook_url reaches.
    pub webhook_listen: String,
    /// Chat ids allowed to use the bot; with allowed_users, both empty allows everyone.
    pub allowed_chats: Vec<i64>,
    /// User ids allowed to use the bot in any chat; with allowed_chats, both empty allows everyone.
    pub allowed_users: Vec<u64>,
}

impl Default for TelegramSettings {
    fn default() -> Self {
        TelegramSettings {
            enabled: false,
            api_url: "https://api.telegram.org".to_string(),
            webhook_url: String::new(),
            webhook_listen: "127.0.0.1:8443".to_string(),
            allowed_chats: Vec::new(),
            allowed_users: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordSettings {
    /// Whether the Discord bot runs; it needs DISCORD_TOKEN.
    pub enabled: bool,
    /// Base URL of a proxy in front of Discord's REST API; empty talks to Discord directly.
    pub proxy_url: String,
    /// Guild to register slash commands in (instant); 0 registers them globally.
    pub guild_id: u64,
    /// Receive interactions over HTTP on this address (e.g. 127.0.0.1:8444, behind the HTTPS proxy that Discord's Interactions Endpoint URL points at) instead of the gateway; empty uses the gateway.
    pub interactions_listen: String,
    /// The application's public key (64 hex characters, from the developer portal), which verifies every request to interactions_listen.
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ControlSettings {
    /// Unix socket the console attaches to (created with mode 0600).
    pub socket: PathBuf,
    /// Also listen on this loopback address, e.g. 127.0.0.1:7878, for consoles reaching the server through an SSH tunnel; empty for none. Clients must send the token in LOOPSMITH_CONTROL_TOKEN (16 characters or more).
    pub tcp: String,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            socket: PathBuf::from("loopsmith-data/control.sock"),
            tcp: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Whether `serve` exposes Prometheus metrics at http://LISTEN/metrics.
    pub enabled: bool,
    /// Address to listen on; loopback only (put an authenticating proxy in front to share it).
    pub listen: std::net::SocketAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: false,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// Jobs one user may have waiting or rendering at once.
    pub max_queued_per_user: u32,
    /// Requests one user may make per minute, on average.
    pub requests_per_minute: u32,
    /// Requests one user may make in a quick burst before the per-minute rate applies.
    pub burst: u32,
    /// Stickers one user may request per UTC day; 0 for no limit.
    pub daily_quota: u32,
    /// Words or phrases no prompt may contain, matched as whole words after Unicode NFKC, case and accent folding (so full-width, styled or accented spellings and invisible characters do not slip past); checked before anything renders.
    pub blocked_words: Vec<String>,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        LimitsSettings {
            max_queued_per_user: 3,
            requests_per_minute: 6,
            burst: 3,
            daily_quota: 50,
            blocked_words: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StylesSettings {
    /// Preset used when neither the request nor the user picks one.
    pub preset: String,
    /// Clip length in seconds when nothing else sets it (3 to 10).
    pub duration_secs: f32,
    /// Frames per second when nothing else sets it (8 to 30).
    pub fps: u32,
    /// Frame shape when nothing else sets it: 1:1, 16:9, 9:16, 4:5, 5:4, 3:2 or 2:3.
    pub aspect: String,
    /// Amount of motion when nothing else sets it, 0 (still) to 4 (lively).
    pub motion: u8,
    /// Extra presets by name, next to the built-in ones; each may set prefix, suffix, negative, and default duration_secs, fps, aspect, motion, guidance.
    pub custom: BTreeMap<String, PresetSettings>,
}

impl Default for StylesSettings {
    fn default() -> Self {
        StylesSettings {
            preset: "none".to_string(),
            duration_secs: 3.0,
            fps: 24,
            aspect: "1:1".to_string(),
            motion: 2,
            custom: BTreeMap::new(),
        }
    }
}

/// A style preset an operator defines in the config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PresetSettings {
    /// Text put before the prompt.
    pub prefix: String,
    /// Text put after the prompt.
    pub suffix: String,
    /// Negative prompt this style always adds.
    pub negative: String,
    /// Clip length this style prefers, in seconds (0 to not set one).
    pub duration_secs: f32,
    /// Frames per second this style prefers (0 to not set one).
    pub fps: u32,
    /// Frame shape this style prefers (empty to not set one).
    pub aspect: String,
    /// Motion this style prefers, 0 to 4 (-1 to not set one).
    pub motion: i8,
    /// Guidance scale this style prefers (0 to keep the model's default).
    pub guidance: f32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdminsSettings {
    /// Telegram user ids of admins.
    pub telegram: Vec<u64>,
    /// Discord user ids of admins.
    pub discord: Vec<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_accepts_the_documented_forms() {
        assert_eq!("auto".parse(), Ok(Device::Auto));
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!("cuda".parse(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(Device::Cuda(3)));
        for bad in ["gpu", "cuda:", "cuda:x", "CPU", ""] {
            let err = bad.parse::<Device>().unwrap_err();
            assert!(err.contains("auto, cpu or cuda:N"), "{bad}: {err}");
        }
        assert_eq!(Device::Cuda(1).to_string(), "cuda:1");
    }
}
