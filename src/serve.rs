//! `loopsmith serve`: the engine plus every enabled surface, until SIGINT or SIGTERM.
//!
//! Today that is the Telegram bot. On a signal, intake stops first (no new updates), then the
//! engine gets its shutdown grace for running jobs, then stickers already made get a moment
//! to be delivered.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loopsmith_bot::telegram;
use loopsmith_config::{Secrets, Settings};
use loopsmith_engine::media::MediaEncoder;
use loopsmith_engine::{Backend, Engine, LocalBackend, Router, SledStore};
use loopsmith_models::bundle::Bundle;
use loopsmith_models::pipeline::Pipeline;

use crate::{Failure, error_chain};

/// Time given to finished stickers to reach their chats after the engine stopped.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

pub fn run(settings: &Settings) -> Result<(), Failure> {
    let secrets =
        Secrets::load(settings, std::env::vars()).map_err(|e| Failure::Input(error_chain(&e)))?;
    let telegram = &settings.telegram;
    if !telegram.enabled {
        return Err(Failure::Unavailable(
            "nothing to serve: the Telegram bot is disabled (telegram.enabled = false), and the \
             Discord bot and the control socket are not part of this build yet."
                .into(),
        ));
    }
    let Some(token) = secrets.telegram_bot_token else {
        return Err(Failure::Input(
            "telegram.enabled is true but TELEGRAM_BOT_TOKEN is not set (environment or \
             engine.secrets_file)."
                .into(),
        ));
    };
    let backends = backends(settings)?;
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
        let router = Router::new(backends, settings.engine.fallback);
        let engine = Engine::start(
            settings,
            Arc::new(store),
            Arc::new(router),
            Arc::new(MediaEncoder),
        )
        .map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
        let mut bot =
            match telegram::start(engine.clone(), telegram::Config::new(telegram, token)).await {
                Ok(bot) => bot,
                Err(e) => {
                    let _ = engine.shutdown(Duration::ZERO).await;
                    return Err(Failure::Runtime(anyhow::anyhow!(e)));
                }
            };
        eprintln!("loopsmith is serving: Telegram bot @{}", bot.username());
        let signal = stop_signal().await;
        eprintln!(
            "{signal}: stopping (running jobs get {} s)",
            settings.engine.shutdown_grace_secs
        );
        bot.stop_intake().await;
        let grace = Duration::from_secs(settings.engine.shutdown_grace_secs);
        let stopped = engine.shutdown(grace).await;
        bot.finish(DELIVERY_GRACE).await;
        stopped.map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
        eprintln!("stopped");
        Ok(())
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

/// The render backends this build has, in `engine.backend_order`. Backend construction is
/// moving to one shared place; until then this mirrors `generate`.
fn backends(settings: &Settings) -> Result<Vec<Arc<dyn Backend>>, Failure> {
    let mut why_not = Vec::new();
    let mut local: Option<Arc<dyn Backend>> = None;
    if !settings.local.enabled {
        why_not.push("the local backend is disabled (local.enabled = false)".to_string());
    } else if settings.local.model == "embedded" {
        why_not.push(
            "the embedded default model is not part of this build yet (point local.model at a \
             model bundle folder)"
                .to_string(),
        );
    } else {
        let bundle = Bundle::open(Path::new(&settings.local.model))
            .map_err(|e| Failure::Input(format!("local.model: {}", error_chain(&e))))?;
        let runtime = crate::models::runtime(settings)?;
        let provider = runtime.provider().to_string();
        let pipeline = Pipeline::load(&bundle, runtime)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
        local = Some(Arc::new(LocalBackend::new(
            pipeline,
            provider,
            settings.local.capacity as usize,
        )));
    }
    if settings.pika.enabled {
        why_not.push("the Pika backend is not part of this build yet".to_string());
    }
    let mut ordered: Vec<Arc<dyn Backend>> = Vec::new();
    for name in &settings.engine.backend_order {
        if name.as_str() == "local"
            && let Some(local) = local.take()
        {
            ordered.push(local);
        }
    }
    if ordered.is_empty() {
        if local.is_some() {
            why_not.push("engine.backend_order does not list local".to_string());
        }
        return Err(Failure::Unavailable(format!(
            "no render backend is available: {}. Nothing was started.",
            why_not.join(", and ")
        )));
    }
    Ok(ordered)
}
