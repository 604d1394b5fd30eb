//! `loopsmith serve`: the engine, the control socket the operator console attaches to, the
//! Telegram and Discord bots when they are enabled, and the metrics endpoint when it is
//! enabled — until SIGINT or SIGTERM.
//!
//! Shutdown order: intake stops (no new updates), paid remote requests are told to survive,
//! running jobs get `engine.shutdown_grace_secs`, finished stickers get a moment to reach their
//! chats, then the control socket and the metrics endpoint close and the store is flushed by
//! the engine's shutdown. Unfinished jobs stay queued for the next start.

use std::sync::Arc;
use std::time::Duration;

use loopsmith_bot::{discord, telegram};
use loopsmith_config::{Secrets, Settings};
use loopsmith_engine::control::{self, Control, LogTap, TOKEN_ENV};
use loopsmith_engine::media::MediaEncoder;
use loopsmith_engine::metrics::{self, Gauges};
use loopsmith_engine::protocol::control::{Spend, Token};
use loopsmith_engine::{CancellationToken, Engine, Router, SledStore, Store};

use crate::backends::{self, Wanted};
use crate::{Failure, error_chain};

/// Time given to finished stickers to reach their chats after the engine stopped.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

pub fn run(settings: &Settings, tap: LogTap) -> Result<(), Failure> {
    let secrets =
        Secrets::load(settings, std::env::vars()).map_err(|e| Failure::Input(error_chain(&e)))?;
    let telegram_token = match (
        settings.telegram.enabled,
        secrets.telegram_bot_token.clone(),
    ) {
        (false, _) => None,
        (true, Some(token)) => Some(token),
        (true, None) => {
            return Err(Failure::Input(
                "telegram.enabled is true but TELEGRAM_BOT_TOKEN is not set (environment or \
                 engine.secrets_file)."
                    .into(),
            ));
        }
    };
    let discord_token = match (settings.discord.enabled, secrets.discord_token.clone()) {
        (false, _) => None,
        (true, Some(token)) => Some(token),
        (true, None) => {
            return Err(Failure::Input(
                "discord.enabled is true but DISCORD_TOKEN is not set (environment or \
                 engine.secrets_file)."
                    .into(),
            ));
        }
    };
    let control_token = std::env::var(TOKEN_ENV).ok().map(Token::new);
    if !settings.control.tcp.is_empty() && control_token.is_none() {
        return Err(Failure::Input(format!(
            "control.tcp is set, so {TOKEN_ENV} must hold the token consoles will send"
        )));
    }
    let plan = backends::plan(settings, secrets, Wanted::All)?;
    if plan.is_empty() {
        return Err(Failure::Unavailable(format!(
            "no render backend is available: {}. Nothing was started.",
            plan.missing()
        )));
    }
    if !plan.missing().is_empty() {
        tracing::warn!(missing = %plan.missing(), "serving without some backends");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;
    runtime.block_on(async {
        let store = SledStore::open(&settings.storage.data_dir.join("db")).map_err(|e| {
            Failure::Runtime(anyhow::anyhow!(
                "{} (is another `loopsmith serve` using this data dir?)",
                error_chain(&e)
            ))
        })?;
        let store: Arc<dyn Store> = Arc::new(store);
        let stopping = CancellationToken::new();
        let built = plan.into_router(settings, store.clone(), stopping.clone())?;
        let router = built.router.clone();
        let engine = Engine::start(
            settings,
            store.clone(),
            built.router,
            Arc::new(MediaEncoder),
        )
        .map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
        let closing = CancellationToken::new();

        let spend = spend_source(settings, store.clone());
        let control = Control::new(engine.clone(), built.backends, tap).with_spend({
            let spend = spend.clone();
            move || Some(spend())
        });
        let control_task = {
            let settings = settings.control.clone();
            let closing = closing.clone();
            tokio::spawn(async move {
                if let Err(e) = control::serve(control, &settings, control_token, closing).await {
                    tracing::error!(error = %error_chain(&e), "the control socket stopped");
                }
            })
        };
        let metrics_task = if settings.metrics.enabled {
            let gauges = gauge_source(router.clone(), spend);
            match metrics::serve(
                settings.metrics.listen,
                engine.clone(),
                gauges,
                closing.clone(),
            )
            .await
            {
                Ok((addr, task)) => {
                    eprintln!("metrics at http://{addr}/metrics");
                    Some(task)
                }
                Err(e) => {
                    stop(&engine, &closing, Duration::ZERO).await;
                    return Err(Failure::Input(error_chain(&e)));
                }
            }
        } else {
            None
        };

        let mut bot = match telegram_token {
            Some(token) => {
                let config = telegram::Config::new(&settings.telegram, token);
                match telegram::start(engine.clone(), config).await {
                    Ok(bot) => {
                        eprintln!("Telegram bot @{} is answering", bot.username());
                        Some(bot)
                    }
                    Err(e) => {
                        stop(&engine, &closing, Duration::ZERO).await;
                        return Err(Failure::Runtime(anyhow::anyhow!(e)));
                    }
                }
            }
            None => None,
        };
        let mut discord_bot = match discord_token {
            Some(token) => {
                let config = discord::Config::new(&settings.discord, token);
                match discord::start(engine.clone(), config).await {
                    Ok(bot) => {
                        match bot.endpoint() {
                            Some(addr) => eprintln!(
                                "Discord bot is answering interactions posted to http://{addr}"
                            ),
                            None => eprintln!("Discord bot is answering on the gateway"),
                        }
                        Some(bot)
                    }
                    Err(e) => {
                        if let Some(mut bot) = bot {
                            bot.stop_intake().await;
                        }
                        stop(&engine, &closing, Duration::ZERO).await;
                        return Err(Failure::Runtime(anyhow::anyhow!(e)));
                    }
                }
            }
            None => None,
        };
        eprintln!(
            "loopsmith is serving; the console attaches at {}",
            settings.control.socket.display()
        );

        let signal = stop_signal().await;
        eprintln!(
            "{signal}: stopping (running jobs get {} s)",
            settings.engine.shutdown_grace_secs
        );
        if let Some(bot) = bot.as_mut() {
            bot.stop_intake().await;
        }
        if let Some(bot) = discord_bot.as_mut() {
            bot.stop_intake().await;
        }
        // Before the engine interrupts anything: a paid request must survive for the next start.
        stopping.cancel();
        let grace = Duration::from_secs(settings.engine.shutdown_grace_secs);
        let stopped = engine.shutdown(grace).await;
        // Both bots deliver at once, within the same grace.
        let telegram_done = async {
            if let Some(bot) = bot {
                bot.finish(DELIVERY_GRACE).await;
            }
        };
        let discord_done = async {
            if let Some(bot) = discord_bot {
                bot.finish(DELIVERY_GRACE).await;
            }
        };
        tokio::join!(telegram_done, discord_done);
        closing.cancel();
        let _ = control_task.await;
        if let Some(task) = metrics_task {
            let _ = task.await;
        }
        stopped.map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
        eprintln!("stopped");
        Ok(())
    })
}

/// Ends the engine and the listeners after a failed start.
async fn stop(engine: &Engine, closing: &CancellationToken, grace: Duration) {
    closing.cancel();
    let _ = engine.shutdown(grace).await;
}

/// Today's paid spend against the global cap, read from the store's ledger.
fn spend_source(
    settings: &Settings,
    store: Arc<dyn Store>,
) -> Arc<dyn Fn() -> Spend + Send + Sync> {
    let cap_usd = settings.pika.daily_budget_usd;
    Arc::new(move || {
        let day = loopsmith_engine::now_ms() / 86_400_000;
        let micro = store.spent(day, None).unwrap_or(0);
        Spend {
            today_usd: micro as f64 / 1e6,
            cap_usd,
        }
    })
}

fn gauge_source(
    router: Arc<Router>,
    spend: Arc<dyn Fn() -> Spend + Send + Sync>,
) -> metrics::GaugeSource {
    Arc::new(move || {
        let today = spend();
        Gauges {
            queue_depth: 0,
            breakers: router.breaker_states(),
            spend_today_usd: today.today_usd,
            budget_today_usd: Some(today.cap_usd),
        }
    })
}

/// Waits for SIGINT or SIGTERM and names it.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
