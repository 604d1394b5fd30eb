//! `loopsmith generate`: one sticker from the command line, through the same engine the bots use.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use loopsmith_config::{Secrets, Settings};
use loopsmith_engine::media::MediaEncoder;
use loopsmith_engine::protocol::{
    BackendChoice, Fit, Job, JobState, OutputKind, Overrides, ParamDefaults, Platform, Timing,
    UserKey, UserStyle,
};
use loopsmith_engine::style::StyleCatalog;
use loopsmith_engine::{CancellationToken, Engine, GenerationRequest, SledStore, Store};

use crate::backends::{self, Plan, Wanted};
use crate::cli::{BackendArg, FitArg, GenerateArgs, TimingArg};
use crate::{Failure, error_chain};

pub fn run(settings: &Settings, args: GenerateArgs) -> Result<(), Failure> {
    let output = output_kind(&args.out)?;
    let catalog =
        StyleCatalog::new(&settings.styles).map_err(|e| Failure::Input(error_chain(&e)))?;
    let overrides = Overrides {
        params: ParamDefaults {
            duration_secs: args.duration,
            ..ParamDefaults::default()
        },
        seed: args.seed,
        style: args.style.clone(),
        outputs: Some(vec![output]),
        backend: Some(match args.backend {
            BackendArg::Auto => BackendChoice::Auto,
            BackendArg::Local => BackendChoice::Local,
            BackendArg::Pika => BackendChoice::Pika,
        }),
        fit: Some(match args.fit {
            FitArg::Pad => Fit::Pad,
            FitArg::Crop => Fit::Crop,
        }),
        timing: Some(match args.timing {
            TimingArg::Trim => Timing::Trim,
            TimingArg::SpeedUp => Timing::SpeedUp,
        }),
        seamless_loop: Some(!args.no_crossfade),
    };
    // Check the request first, so a typo is reported before any model loads.
    catalog
        .resolve(&args.prompt, &overrides, &UserStyle::default(), 0)
        .map_err(|e| Failure::Input(e.to_string()))?;

    let secrets = Secrets::load(settings, loopsmith_config::process_env())
        .map_err(|e| Failure::Input(error_chain(&e)))?;
    let wanted = match args.backend {
        BackendArg::Auto => Wanted::All,
        BackendArg::Local => Wanted::Local,
        BackendArg::Pika => Wanted::Pika,
    };
    let plan = backends::plan(settings, secrets, wanted)?;
    if plan.is_empty() {
        return Err(Failure::Unavailable(format!(
            "no render backend is available: {}. Nothing was rendered.",
            plan.missing()
        )));
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(e.into()))?;
    runtime.block_on(render(settings, plan, args, overrides, output))
}

async fn render(
    settings: &Settings,
    plan: Plan,
    args: GenerateArgs,
    overrides: Overrides,
    output: OutputKind,
) -> Result<(), Failure> {
    let db = settings.storage.data_dir.join("db");
    let store = SledStore::open(&db).map_err(|e| {
        Failure::Runtime(anyhow::anyhow!(
            "{} (is `loopsmith serve` using this data dir?)",
            error_chain(&e)
        ))
    })?;
    let store: Arc<dyn Store> = Arc::new(store);
    // The command waits for its one job, and Ctrl-C ends the process outright (the next run
    // resumes a paid request), so nothing here ever signals "stopping".
    let built = plan.into_router(settings, store.clone(), CancellationToken::new())?;
    let engine = Engine::start(settings, store, built.router, Arc::new(MediaEncoder))
        .map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
    let user = UserKey::new(
        Platform::Cli,
        std::env::var("USER").unwrap_or_else(|_| "cli".into()),
    );
    let mut request = GenerationRequest::new(user, args.prompt.clone());
    request.overrides = overrides;
    let mut submitted = engine
        .submit(request)
        .await
        .map_err(|e| Failure::Input(e.to_string()))?;
    let show_progress = !args.json && std::io::stderr().is_terminal();
    let mut last = submitted.state.clone();
    while let Some(event) = submitted.events.next().await {
        if show_progress {
            draw(&event.state);
        }
        last = event.state;
    }
    if show_progress {
        eprintln!();
    }
    let job = engine
        .job(submitted.job)
        .await
        .map_err(|e| Failure::Runtime(anyhow::anyhow!(error_chain(&e))))?;
    let _ = engine.shutdown(Duration::from_secs(5)).await;
    match last {
        JobState::Done { artifacts } => {
            let artifact = artifacts
                .into_iter()
                .find(|a| a.kind == output)
                .ok_or_else(|| {
                    Failure::Runtime(anyhow::anyhow!("the job finished without a {output} file"))
                })?;
            std::fs::copy(&artifact.path, &args.out).map_err(|e| {
                Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", args.out.display()))
            })?;
            report(&args.out, artifact.bytes, job.as_ref(), args.json);
            Ok(())
        }
        JobState::Failed { reason, chain, .. } => {
            // The person at this terminal runs the server too: the causes follow the sentence,
            // as `reason: outer cause: …: root cause`.
            let error = chain
                .into_iter()
                .rev()
                .fold(None::<anyhow::Error>, |inner, cause| {
                    Some(match inner {
                        Some(inner) => inner.context(cause),
                        None => anyhow::anyhow!(cause),
                    })
                });
            Err(Failure::Runtime(match error {
                Some(causes) => causes.context(reason),
                None => anyhow::anyhow!(reason),
            }))
        }
        other => Err(Failure::Runtime(anyhow::anyhow!(
            "the job ended {}",
            other.name()
        ))),
    }
}

fn draw(state: &JobState) {
    let (fraction, label) = match state {
        JobState::Queued => (0.0, "queued".to_string()),
        JobState::Running { backend, progress } => (
            *progress,
            format!(
                "rendering on {}",
                if backend.is_empty() { "…" } else { backend }
            ),
        ),
        JobState::Encoding { .. } => (1.0, "encoding".to_string()),
        other => (1.0, other.name().to_string()),
    };
    let filled = (fraction.clamp(0.0, 1.0) * 30.0).round() as usize;
    eprint!(
        "\r[{}{}] {:>3}% {label:<24}",
        "#".repeat(filled),
        " ".repeat(30 - filled),
        (fraction * 100.0).round()
    );
    let _ = std::io::stderr().flush();
}

fn report(path: &PathBuf, bytes: u64, job: Option<&Job>, json: bool) {
    let (seed, backend, job_id) = job.map_or((0, "-".to_string(), 0), |j| {
        (j.params.seed, j.backend.clone().unwrap_or_default(), j.id.0)
    });
    let ms = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let t = job.map(|j| j.timings.clone()).unwrap_or_default();
    if json {
        let summary = serde_json::json!({
            "path": path,
            "bytes": bytes,
            "seed": seed,
            "backend": backend,
            "job": job_id,
            "timings_ms": {
                "queued": ms(Some(t.created_ms), t.started_ms),
                "render": ms(t.started_ms, t.rendered_ms),
                "encode": ms(t.rendered_ms, t.finished_ms),
                "total": ms(Some(t.created_ms), t.finished_ms),
            },
        });
        println!("{summary}");
    } else {
        let total = ms(Some(t.created_ms), t.finished_ms).unwrap_or(0);
        println!(
            "wrote {} ({bytes} bytes) in {:.1} s — seed {seed}, backend {backend}",
            path.display(),
            total as f64 / 1000.0
        );
    }
}

/// The sticker format a file name asks for.
fn output_kind(path: &Path) -> Result<OutputKind, Failure> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("webm") => Ok(OutputKind::WebmSticker),
        Some("mp4") => Ok(OutputKind::Mp4),
        Some("png") | Some("apng") => Ok(OutputKind::Apng),
        Some("gif") => Ok(OutputKind::Gif),
        _ => Err(Failure::Input(format!(
            "cannot tell the sticker format from `{}`; use a .webm, .mp4, .png or .gif file name",
            path.display()
        ))),
    }
}
