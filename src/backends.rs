//! The render backends a command builds from settings and secrets, in `engine.backend_order`,
//! behind the fallback router: `generate`, `serve` and `console --embedded` all build them here.
//!
//! Building is in two steps because they need different things: [`plan`] loads the local
//! model (slow, and it reports a bad model path before anything else happens) and checks that
//! Pika can run; [`Plan::into_router`] adds Pika, which needs the store for its spend ledger
//! and its resumable requests.

use std::sync::Arc;

use loopsmith_config::{PikaSettings, Secrets, Settings};
use loopsmith_engine::control::{BackendInfo, ControlledBackend};
use loopsmith_engine::pika::{PikaBackend, PikaOptions, TokioClock};
use loopsmith_engine::{Backend, CancellationToken, LocalBackend, Router, RouterPolicy, Store};
use loopsmith_models::bundle::Bundle;
use loopsmith_models::pipeline::Pipeline;

use crate::{Failure, error_chain};

/// Which backends a command wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// Every configured backend, in `engine.backend_order`.
    All,
    Local,
    Pika,
}

/// What could be built, and why the rest could not.
#[derive(Debug)]
pub struct Plan {
    /// The local backend and its execution provider (e.g. `cpu (CUDA unavailable: …)`).
    local: Option<(LocalBackend, String)>,
    pika: Option<PikaSetup>,
    /// One reason per missing backend, for the user.
    missing: Vec<String>,
}

/// Pika's options, and the secrets holding its key (their Debug shows no values).
#[derive(Debug)]
struct PikaSetup {
    options: PikaOptions,
    secrets: Secrets,
}

/// Loads what `wanted` asks for. Outer errors are bad settings (a model path that does not
/// open, settings Pika cannot use); a backend that is merely off or unconfigured is noted in
/// the plan instead.
pub fn plan(settings: &Settings, secrets: Secrets, wanted: Wanted) -> Result<Plan, Failure> {
    let mut plan = Plan {
        local: None,
        pika: None,
        missing: Vec::new(),
    };
    if wanted != Wanted::Pika {
        match local_backend(settings)? {
            Ok(local) => plan.local = Some(local),
            Err(why) => plan.missing.push(why),
        }
    }
    if wanted != Wanted::Local {
        match pika_setup(&settings.pika, secrets)? {
            Ok(pika) => plan.pika = Some(pika),
            Err(why) => plan.missing.push(why),
        }
    }
    Ok(plan)
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.local.is_none() && self.pika.is_none()
    }

    /// Why backends are missing, joined for one message.
    pub fn missing(&self) -> String {
        self.missing.join(", and ")
    }

    /// The router over the built backends, in `engine.backend_order`; backends the order
    /// leaves out are not used. Each backend is wrapped so the operator console can pause it.
    /// Cancel `stopping` before the engine's shutdown interrupts running jobs, so a Pika job
    /// keeps its paid request for the next start to resume.
    pub fn into_router(
        self,
        settings: &Settings,
        store: Arc<dyn Store>,
        stopping: CancellationToken,
    ) -> Result<Built, Failure> {
        let mut built: Vec<Arc<ControlledBackend>> = Vec::new();
        if let Some((local, provider)) = self.local {
            let device = if provider.starts_with("cuda") {
                "gpu"
            } else {
                "cpu"
            };
            built.push(ControlledBackend::new(
                Arc::new(local),
                BackendInfo {
                    model: settings.local.model.clone(),
                    device: device.to_string(),
                    provider,
                    capacity: settings.local.capacity.max(1),
                },
            ));
        }
        if let Some(pika) = self.pika {
            let backend = PikaBackend::new(
                pika.options,
                pika.secrets.fal_key,
                store,
                Arc::new(TokioClock::new()),
            )
            .map_err(|e| Failure::Input(error_chain(&e)))?
            .with_stopping(stopping);
            built.push(ControlledBackend::new(
                Arc::new(backend),
                BackendInfo {
                    model: "Pika v2.2 on fal".to_string(),
                    provider: "fal".to_string(),
                    device: "remote".to_string(),
                    capacity: settings.engine.workers.max(1),
                },
            ));
        }
        let names: Vec<String> = built.iter().map(|b| b.name().to_string()).collect();
        let mut ordered = Vec::with_capacity(built.len());
        for name in &settings.engine.backend_order {
            if let Some(i) = built.iter().position(|b| b.name() == name.as_str()) {
                ordered.push(built.swap_remove(i));
            }
        }
        if ordered.is_empty() {
            let mut message = format!(
                "engine.backend_order lists none of the backends this build has ({})",
                names.join(", ")
            );
            if !self.missing.is_empty() {
                message.push_str(&format!("; {}", self.missing.join("; ")));
            }
            return Err(Failure::Input(message));
        }
        let router = Router::with_policy(
            ordered
                .iter()
                .map(|b| b.clone() as Arc<dyn Backend>)
                .collect(),
            RouterPolicy::from_settings(&settings.engine),
        );
        Ok(Built {
            router: Arc::new(router),
            backends: ordered,
        })
    }
}

/// The router and the backends behind it, as the control server shows them.
#[derive(Debug)]
pub struct Built {
    pub router: Arc<Router>,
    pub backends: Vec<Arc<ControlledBackend>>,
}

/// The local backend from `local.model`, or why there is none.
fn local_backend(settings: &Settings) -> Result<Result<(LocalBackend, String), String>, Failure> {
    if !settings.local.enabled {
        return Ok(Err(
            "the local backend is disabled (local.enabled = false)".into()
        ));
    }
    let dir = match crate::models::local_model_dir(settings) {
        Ok(dir) => dir,
        Err(why) => return Ok(Err(why)),
    };
    let bundle = Bundle::open(&dir)
        .map_err(|e| Failure::Input(format!("local.model: {}", error_chain(&e))))?;
    let runtime = crate::models::runtime(settings)?;
    let provider = runtime.provider().to_string();
    let pipeline = Pipeline::load(&bundle, runtime)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
    let backend = LocalBackend::new(pipeline, provider.clone(), settings.local.capacity as usize);
    Ok(Ok((backend, provider)))
}

/// Pika's options and key, or why it cannot run.
fn pika_setup(
    settings: &PikaSettings,
    secrets: Secrets,
) -> Result<Result<PikaSetup, String>, Failure> {
    if !settings.enabled {
        return Ok(Err("Pika is disabled (pika.enabled = false)".into()));
    }
    if secrets.fal_key.is_none() {
        return Ok(Err(
            "Pika is enabled but FAL_KEY is not set (set it in the environment or in engine.secrets_file)".into(),
        ));
    };
    let options =
        PikaOptions::from_settings(settings).map_err(|e| Failure::Input(error_chain(&e)))?;
    Ok(Ok(PikaSetup { options, secrets }))
}
