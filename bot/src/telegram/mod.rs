//! The Telegram bot: teloxide 0.17 long polling over the Throttle adaptor, the shared command
//! layer for everything it says, and the engine for everything it makes.
//!
//! [`start`] checks the token with `getMe`, registers the command menu and starts
//! dispatching; the returned [`Running`] stops intake and then lets jobs that are being
//! delivered finish.

mod chat;
mod handlers;
mod net;
mod packs;
mod picture;
mod resume;
mod webhook;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loopsmith_config::TelegramSettings;
use loopsmith_engine::Engine;
use secrecy::{ExposeSecret, SecretString};
use teloxide::adaptors::Throttle;
use teloxide::adaptors::throttle::Limits;
use teloxide::dispatching::{DefaultKey, Dispatcher, UpdateFilterExt};
use teloxide::prelude::*;
use teloxide::types::{BotCommand, UserId};
use teloxide::update_listeners::{Polling, UpdateListener};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::command::{Pacing, texts};

pub use net::{MAX_RETRY_WAIT, Redactor, retrying};

/// The requester every handler uses: sends are queued within Telegram's limits.
pub type Tg = Throttle<Bot>;

/// Telegram's published limits (Bot FAQ): one message a second per chat, 20 a minute in a
/// group, 30 a second overall. teloxide's defaults allow supergroups only 10 a minute.
const LIMITS: Limits = Limits {
    messages_per_sec_chat: 1,
    messages_per_min_chat: 20,
    messages_per_min_channel_or_supergroup: 20,
    messages_per_sec_overall: 30,
};

/// Why the bot could not start. Texts never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("telegram.api_url `{0}` is not a URL")]
    BadUrl(String),
    #[error("Telegram refused the bot token (TELEGRAM_BOT_TOKEN): {0}")]
    Unauthorized(String),
    #[error("cannot reach the Telegram Bot API at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("telegram.webhook_listen `{0}` is not an address like 127.0.0.1:8443")]
    BadListen(String),
    #[error("webhook mode: {0}")]
    Webhook(String),
}

/// What the bot needs beyond the engine.
pub struct Config {
    pub api_url: String,
    pub token: SecretString,
    /// Chats that may use the bot; with `allowed_users`, both empty means everyone.
    pub allowed_chats: Vec<i64>,
    pub allowed_users: Vec<u64>,
    /// How long one `getUpdates` waits for news.
    pub poll_timeout: Duration,
    /// Webhook mode when set: the public URL and the local address to listen on.
    pub webhook: Option<(String, String)>,
    pub pacing: Pacing,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("api_url", &self.api_url)
            .field("allowed_chats", &self.allowed_chats)
            .field("allowed_users", &self.allowed_users)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn new(settings: &TelegramSettings, token: SecretString) -> Config {
        Config {
            api_url: settings.api_url.clone(),
            token,
            allowed_chats: settings.allowed_chats.clone(),
            allowed_users: settings.allowed_users.clone(),
            poll_timeout: Duration::from_secs(10),
            webhook: (!settings.webhook_url.is_empty()).then(|| {
                (
                    settings.webhook_url.clone(),
                    settings.webhook_listen.clone(),
                )
            }),
            pacing: Pacing::TELEGRAM,
        }
    }
}

/// Everything a handler needs; shared by all of them.
pub(crate) struct App {
    pub bot: Tg,
    pub engine: Engine,
    /// The bot's @username, without the `@`.
    pub username: String,
    pub allowed_chats: Vec<i64>,
    pub allowed_users: Vec<u64>,
    pub pacing: Pacing,
    pub redactor: Redactor,
    /// Tasks following jobs to delivery; they outlive the update that started them.
    followers: Mutex<JoinSet<()>>,
}

impl std::fmt::Debug for App {
    // `Bot`'s own Debug prints the token, so it is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Whether a chat or user may use the bot. Admins always may.
    pub fn allowed(&self, chat: Option<ChatId>, user: UserId) -> bool {
        (self.allowed_chats.is_empty() && self.allowed_users.is_empty())
            || chat.is_some_and(|c| self.allowed_chats.contains(&c.0))
            || self.allowed_users.contains(&user.0)
            || self.engine.is_admin(&handlers::user_key(user))
    }

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

/// The running bot.
pub struct Running {
    app: Arc<App>,
    stop: CancellationToken,
    dispatcher: JoinHandle<()>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("username", &self.app.username)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The bot's @username.
    pub fn username(&self) -> &str {
        &self.app.username
    }

    /// Stops taking updates; handlers already running finish.
    pub async fn stop_intake(&mut self) {
        self.stop.cancel();
        if let Err(e) = (&mut self.dispatcher).await {
            warn!(error = %e, "the Telegram dispatcher ended abnormally");
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
            warn!(
                left = set.len(),
                "stopping with stickers still being followed"
            );
        }
        set.abort_all();
    }
}

/// Checks the token, then starts the bot.
pub async fn start(engine: Engine, config: Config) -> Result<Running, TelegramError> {
    let started_ms = loopsmith_engine::now_ms();
    let redactor = Redactor::new(&config.token);
    let url = reqwest::Url::parse(&config.api_url)
        .map_err(|_| TelegramError::BadUrl(config.api_url.clone()))?;
    let webhook = match &config.webhook {
        None => None,
        Some((public, listen)) => Some((
            reqwest::Url::parse(public).map_err(|_| TelegramError::BadUrl(public.clone()))?,
            listen
                .parse::<std::net::SocketAddr>()
                .map_err(|_| TelegramError::BadListen(listen.clone()))?,
        )),
    };
    let bot = Bot::new(config.token.expose_secret()).set_api_url(url);
    let me = retrying("getMe", || bot.get_me().send())
        .await
        .map_err(|e| match &e {
            teloxide::RequestError::Api(teloxide::ApiError::InvalidToken) => {
                TelegramError::Unauthorized(redactor.chain(&e))
            }
            _ => TelegramError::Unreachable {
                url: config.api_url.clone(),
                why: redactor.chain(&e),
            },
        })?;
    let username = me.username().to_string();

    // getUpdates is refused while a webhook is set; an earlier webhook deployment may have
    // left one behind.
    if webhook.is_none() {
        match retrying("getWebhookInfo", || bot.get_webhook_info().send()).await {
            Ok(info) if info.url.is_some() => {
                if let Err(e) = retrying("deleteWebhook", || bot.delete_webhook().send()).await {
                    warn!(error = %redactor.chain(&e), "could not remove the old webhook");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(error = %redactor.chain(&e), "getWebhookInfo failed"),
        }
    }
    let commands: Vec<BotCommand> = texts::COMMANDS
        .iter()
        .map(|(name, what)| BotCommand::new(*name, *what))
        .collect();
    if let Err(e) = retrying("setMyCommands", || {
        bot.set_my_commands(commands.clone()).send()
    })
    .await
    {
        warn!(error = %redactor.chain(&e), "could not register the command menu");
    }

    let tg = bot.throttle(LIMITS);
    let app = Arc::new(App {
        bot: tg.clone(),
        engine,
        username: username.clone(),
        allowed_chats: config.allowed_chats,
        allowed_users: config.allowed_users,
        pacing: config.pacing,
        redactor: redactor.clone(),
        followers: Mutex::new(JoinSet::new()),
    });
    let handler = dptree::entry()
        .branch(Update::filter_message().endpoint(handlers::message))
        .branch(Update::filter_callback_query().endpoint(handlers::callback))
        .branch(Update::filter_inline_query().endpoint(handlers::inline));
    let handler_redactor = redactor.clone();
    let dispatcher = Dispatcher::builder(tg.clone(), handler)
        .dependencies(dptree::deps![app.clone()])
        .default_handler(|_| async {})
        .error_handler(Arc::new(move |e: handlers::HandlerError| {
            let text = handler_redactor.clean(&e.to_string());
            async move { warn!(error = %text, "a Telegram update handler failed") }
        }))
        .build();
    let stop = CancellationToken::new();
    let task = match webhook {
        None => {
            let listener = Polling::builder(tg).timeout(config.poll_timeout).build();
            tokio::spawn(dispatch(dispatcher, listener, stop.clone(), redactor))
        }
        Some((public, listen)) => {
            let secret = webhook::secret_token(&config.token);
            let (listener, server) =
                webhook::listen(tg, public, listen, secret, redactor.clone()).await?;
            let stopped = stop.clone();
            tokio::spawn(async move {
                dispatch(dispatcher, listener, stopped, redactor).await;
                // The dispatcher's stop also ends the server (graceful shutdown).
                let _ = tokio::time::timeout(Duration::from_secs(3), server).await;
            })
        }
    };
    info!(bot = %username, "Telegram bot started");
    let resuming = app.clone();
    tokio::spawn(async move { resume::resume(&resuming, started_ms).await });
    Ok(Running {
        app,
        stop,
        dispatcher: task,
    })
}

/// Runs the dispatcher over a listener until `stop`.
async fn dispatch<L>(
    mut dispatcher: Dispatcher<Tg, handlers::HandlerError, DefaultKey>,
    listener: L,
    stop: CancellationToken,
    redactor: Redactor,
) where
    L: UpdateListener + Send,
    L::Err: std::error::Error + Send + Sync + 'static,
{
    let shutdown = dispatcher.shutdown_token();
    let on_listener_error = Arc::new(move |e: L::Err| {
        let text = redactor.chain(&e);
        async move { warn!(error = %text, "receiving updates failed; retrying with backoff") }
    });
    let run = dispatcher.try_dispatch_with_listener(listener, on_listener_error);
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => {
            if result.is_err() {
                warn!("the Telegram dispatcher could not start");
            }
        }
        _ = stop.cancelled() => {
            // The dispatcher stops after the current poll; a poll can last the whole poll
            // timeout, and unconfirmed updates are simply served again next start (the
            // engine refuses replays), so it is not waited for long.
            let _ = shutdown.shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(3), &mut run).await;
        }
    }
}
