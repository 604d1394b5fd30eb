//! The Discord bot: serenity 0.12 on the gateway (no intents: interactions always arrive) or
//! behind an HTTP interactions endpoint (`endpoint`), slash commands registered in one
//! guild (instant) or globally, and the shared command layer for everything it says.
//!
//! [`start`] checks the token with `GET /users/@me`; on the gateway it then connects and
//! waits for READY, which registers the commands; as an endpoint it checks the public key
//! against the application, listens, and registers. The returned [`Running`] stops intake and
//! then lets jobs that are being delivered finish.
//!
//! `discord.proxy_url` replaces Discord's REST base (a rate-limit proxy, or a local fake in
//! tests). serenity sends requests through a proxy only with its own ratelimiter turned off,
//! so behind a proxy nothing in this process honours Discord's per-route buckets: the proxy
//! must. Progress edits are paced per job and spaced across jobs here either way (see
//! [`EditGate`]).

mod commands;
mod endpoint;
mod handlers;
mod net;
mod stickers;
mod surface;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loopsmith_config::DiscordSettings;
use loopsmith_engine::Engine;
use secrecy::{ExposeSecret, SecretString};
use serenity::all::{
    ClientBuilder, Command, Context, EventHandler, GatewayIntents, GuildId, Http, HttpBuilder,
    Interaction, Ready, ShardManager,
};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::command::Pacing;

pub use net::{EditGate, Redactor};

/// How long [`start`] waits for the gateway's READY before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Space between any two message edits, across all jobs: at most four a second.
const EDIT_SPACING: Duration = Duration::from_millis(250);

/// Why the bot could not start. Texts never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum DiscordError {
    #[error("discord.proxy_url `{0}` is not an http:// or https:// URL")]
    BadUrl(String),
    #[error("Discord refused the bot token (DISCORD_TOKEN): {0}")]
    Unauthorized(String),
    #[error("cannot reach Discord's API at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("the Discord gateway did not accept the bot: {0}")]
    Gateway(String),
    #[error("discord.interactions_listen `{0}` is not an address like 127.0.0.1:8444")]
    BadListen(String),
    #[error("interactions endpoint: {0}")]
    Endpoint(String),
}

/// What the bot needs beyond the engine.
pub struct Config {
    pub token: SecretString,
    /// Base URL replacing `https://discord.com`; empty for Discord itself.
    pub proxy_url: String,
    /// Guild to register commands in; 0 registers them globally.
    pub guild_id: u64,
    pub pacing: Pacing,
    pub edit_spacing: Duration,
    /// HTTP interactions instead of the gateway: the address to listen on and the
    /// application's public key (hex).
    pub endpoint: Option<(String, String)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("proxy_url", &self.proxy_url)
            .field("guild_id", &self.guild_id)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn new(settings: &DiscordSettings, token: SecretString) -> Config {
        Config {
            token,
            proxy_url: settings.proxy_url.trim_end_matches('/').to_string(),
            guild_id: settings.guild_id,
            pacing: Pacing::DISCORD,
            edit_spacing: EDIT_SPACING,
            endpoint: (!settings.interactions_listen.is_empty()).then(|| {
                (
                    settings.interactions_listen.clone(),
                    settings.public_key.clone(),
                )
            }),
        }
    }
}

/// Everything a handler needs; shared by all of them.
pub(crate) struct App {
    pub engine: Engine,
    pub guild_id: u64,
    pub pacing: Pacing,
    pub gate: EditGate,
    pub redactor: Redactor,
    /// Woken when the gateway says READY.
    ready: Notify,
    /// Tasks following jobs to delivery; they outlive the interaction that started them.
    followers: Mutex<JoinSet<()>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("guild_id", &self.guild_id)
            .finish_non_exhaustive()
    }
}

impl App {
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut set = self
            .followers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Reap finished followers so the set does not grow with every job.
        while set.try_join_next().is_some() {}
        set.spawn(task);
    }
}

struct Handler {
    app: Arc<App>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, ready: Ready) {
        info!(bot = %ready.user.name, "Discord gateway ready");
        let list = commands::all();
        let registered = if self.app.guild_id == 0 {
            Command::set_global_commands(&ctx.http, list)
                .await
                .map(|c| c.len())
        } else {
            GuildId::new(self.app.guild_id)
                .set_commands(&ctx.http, list)
                .await
                .map(|c| c.len())
        };
        match registered {
            Ok(n) => info!(
                commands = n,
                guild = self.app.guild_id,
                "slash commands registered"
            ),
            Err(e) => {
                warn!(error = %self.app.redactor.chain(&e), "registering slash commands failed")
            }
        }
        self.app.ready.notify_waiters();
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        handlers::interaction(self.app.clone(), ctx.http.clone(), interaction).await;
    }
}

/// Registers the slash commands in the guild, or globally. A failure is logged: the bot
/// still answers commands registered earlier.
async fn register(app: &App, http: &Http) {
    let list = commands::all();
    let registered = if app.guild_id == 0 {
        Command::set_global_commands(http, list)
            .await
            .map(|c| c.len())
    } else {
        GuildId::new(app.guild_id)
            .set_commands(http, list)
            .await
            .map(|c| c.len())
    };
    match registered {
        Ok(n) => info!(
            commands = n,
            guild = app.guild_id,
            "slash commands registered"
        ),
        Err(e) => warn!(error = %app.redactor.chain(&e), "registering slash commands failed"),
    }
}

/// A fresh seed for a re-roll. Seeds only need to differ, not to be unpredictable: the
/// clock's nanoseconds mixed with a counter keep the bot free of an RNG dependency.
pub(crate) fn random_seed() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos
        .wrapping_mul(2_654_435_761)
        .wrapping_add(COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed))
}

/// How interactions come in.
enum Intake {
    Gateway {
        shards: Arc<ShardManager>,
        client: JoinHandle<()>,
    },
    Endpoint {
        stop: CancellationToken,
        server: JoinHandle<()>,
    },
}

/// The running bot.
pub struct Running {
    app: Arc<App>,
    intake: Intake,
    /// Where the interactions endpoint listens, in endpoint mode.
    endpoint: Option<SocketAddr>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").finish_non_exhaustive()
    }
}

impl Running {
    /// The interactions endpoint's address, when the bot runs without the gateway.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint
    }

    /// Closes the gateway or the endpoint: no new interactions. Handlers already running
    /// finish.
    pub async fn stop_intake(&mut self) {
        let task = match &mut self.intake {
            Intake::Gateway { shards, client } => {
                shards.shutdown_all().await;
                client
            }
            Intake::Endpoint { stop, server } => {
                stop.cancel();
                server
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), &mut *task)
            .await
            .is_err()
        {
            warn!("Discord intake did not close in time");
            task.abort();
        }
    }

    /// Gives jobs that are being followed up to `limit` to be delivered, then drops the rest
    /// (their jobs stay in the engine's store).
    pub async fn finish(self, limit: Duration) {
        let mut set = std::mem::take(
            &mut *self
                .app
                .followers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        let drained =
            tokio::time::timeout(limit, async { while set.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            warn!(left = set.len(), "stopping with clips still being followed");
        }
        set.abort_all();
    }
}

/// Checks the token, then starts the gateway or the interactions endpoint.
pub async fn start(engine: Engine, config: Config) -> Result<Running, DiscordError> {
    let redactor = Redactor::new(&config.token);
    let mut builder = HttpBuilder::new(config.token.expose_secret());
    let api = if config.proxy_url.is_empty() {
        "https://discord.com".to_string()
    } else {
        let url = url::Url::parse(&config.proxy_url)
            .map_err(|_| DiscordError::BadUrl(config.proxy_url.clone()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DiscordError::BadUrl(config.proxy_url.clone()));
        }
        // serenity skips the proxy whenever its ratelimiter is on; see the module docs.
        builder = builder
            .proxy(config.proxy_url.clone())
            .ratelimiter_disabled(true);
        config.proxy_url.clone()
    };
    let http = builder.build();
    match http.get_current_user().await {
        Ok(me) => info!(bot = %me.name, "Discord token accepted"),
        Err(e) => {
            let why = redactor.chain(&e);
            return Err(match net::discord_code(&e) {
                Some((401, _)) => DiscordError::Unauthorized(why),
                _ => DiscordError::Unreachable { url: api, why },
            });
        }
    }
    let app = Arc::new(App {
        engine,
        guild_id: config.guild_id,
        pacing: config.pacing,
        gate: EditGate::new(config.edit_spacing),
        redactor: redactor.clone(),
        ready: Notify::new(),
        followers: Mutex::new(JoinSet::new()),
    });
    let running = match config.endpoint {
        Some((listen, public_key)) => start_endpoint(app, http, &listen, &public_key).await?,
        None => start_gateway(app, http).await?,
    };
    info!("Discord bot started");
    Ok(running)
}

/// HTTP interactions: the application id comes from the API (there is no READY), the
/// configured public key must be the application's, then commands are registered and the
/// endpoint listens.
async fn start_endpoint(
    app: Arc<App>,
    http: Http,
    listen: &str,
    public_key: &str,
) -> Result<Running, DiscordError> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| DiscordError::BadListen(listen.to_string()))?;
    let verifier = endpoint::verifier(public_key)?;
    let info = http.get_current_application_info().await.map_err(|e| {
        DiscordError::Endpoint(format!(
            "reading the application failed: {}",
            app.redactor.chain(&e)
        ))
    })?;
    if !info.verify_key.is_empty() && !info.verify_key.eq_ignore_ascii_case(public_key.trim()) {
        return Err(DiscordError::Endpoint(
            "discord.public_key is not this application's public key (see General Information in the developer portal)".into(),
        ));
    }
    http.set_application_id(info.id);
    let http = Arc::new(http);
    // Listening before registering: a command used the moment it appears finds the port open.
    let stop = CancellationToken::new();
    let (bound, server) =
        endpoint::listen(addr, app.clone(), http.clone(), verifier, stop.clone()).await?;
    register(&app, &http).await;
    Ok(Running {
        app,
        intake: Intake::Endpoint { stop, server },
        endpoint: Some(bound),
    })
}

/// The gateway: connect, wait for READY (which registers the commands).
async fn start_gateway(app: Arc<App>, http: Http) -> Result<Running, DiscordError> {
    let redactor = app.redactor.clone();
    // Interactions need no intents: Discord always sends INTERACTION_CREATE.
    let mut client = ClientBuilder::new_with_http(http, GatewayIntents::empty())
        .event_handler(Handler { app: app.clone() })
        .await
        .map_err(|e| DiscordError::Gateway(redactor.chain(&e)))?;
    let shards = client.shard_manager.clone();
    let waiter = app.clone();
    let ready = waiter.ready.notified();
    tokio::pin!(ready);
    // Registered before the client starts, so a READY that comes at once still wakes us.
    ready.as_mut().enable();
    let task_redactor = redactor.clone();
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<String>();
    let task = tokio::spawn(async move {
        if let Err(e) = client.start().await {
            let why = task_redactor.chain(&e);
            warn!(error = %why, "the Discord gateway stopped");
            let _ = ended_tx.send(why);
        }
    });
    tokio::select! {
        _ = &mut ready => {}
        ended = ended_rx => {
            let why = ended.unwrap_or_else(|_| "the gateway closed".to_string());
            return Err(DiscordError::Gateway(why));
        }
        _ = tokio::time::sleep(READY_TIMEOUT) => {
            // serenity keeps reconnecting on its own; interactions arrive once it is through.
            warn!("no READY from the Discord gateway yet; carrying on");
        }
    }
    Ok(Running {
        app,
        intake: Intake::Gateway {
            shards,
            client: task,
        },
        endpoint: None,
    })
}
