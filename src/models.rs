//! `loopsmith models list | info | verify`.

use std::path::{Path, PathBuf};

use loopsmith_config::{Device as ConfigDevice, Settings};
use loopsmith_models::bundle::{self, Bundle};
use loopsmith_models::runtime::{self, Device, Discovery, DiscoveryOptions, Runtime};

use crate::cli::ModelsCommand;
use crate::{Failure, error_chain};

pub fn run(settings: &Settings, command: ModelsCommand) -> Result<(), Failure> {
    match command {
        ModelsCommand::List { dirs } => {
            let dirs = if dirs.is_empty() {
                default_dirs(settings)
            } else {
                dirs
            };
            if settings.local.model == "embedded" {
                match local_model_dir(settings) {
                    Ok(dir) => println!("embedded    {}", dir.display()),
                    Err(why) => println!("embedded    {why}"),
                }
            }
            let found = bundle::list(&dirs);
            if found.is_empty() {
                let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
                println!("no model bundles in {}", shown.join(", "));
            }
            for (path, summary) in found {
                match summary {
                    Ok(summary) => println!("{}    {summary}", path.display()),
                    Err(e) => println!("{}    unusable: {}", path.display(), error_chain(&e)),
                }
            }
            Ok(())
        }
        ModelsCommand::Info { bundle } => {
            let bundle = open(&bundle)?;
            println!("{}", bundle.info());
            Ok(())
        }
        ModelsCommand::Verify { bundle } => {
            let bundle = open(&bundle)?;
            let runtime = runtime(settings)?;
            println!(
                "ONNX Runtime {} from {} ({})",
                runtime.library().version(),
                runtime.library().path().display(),
                runtime.provider()
            );
            let report = bundle.verify_with(&runtime, &mut |check| println!("{check}"));
            if report.passed() {
                println!("{} is ready", bundle.dir().display());
                Ok(())
            } else {
                Err(Failure::Input(format!(
                    "{} check(s) failed",
                    report.failures().count()
                )))
            }
        }
    }
}

/// Where bundles are looked for by default: the configured model (when it is a folder) and
/// `<data_dir>/models`.
fn default_dirs(settings: &Settings) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(dir) = local_model_dir(settings) {
        dirs.push(dir);
    }
    dirs.push(settings.storage.data_dir.join("models"));
    dirs
}

/// The bundle folder `local.model` names; for `embedded`, where the model that ships with
/// loopsmith is installed, or why it cannot be found.
pub fn local_model_dir(settings: &Settings) -> Result<PathBuf, String> {
    if settings.local.model != "embedded" {
        return Ok(PathBuf::from(&settings.local.model));
    }
    let candidates = embedded_candidates();
    candidates
        .iter()
        .find(|dir| dir.join("model.toml").is_file())
        .cloned()
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
            format!(
                "the embedded model is not installed (looked in {}); point local.model at a model bundle folder",
                looked.join(", ")
            )
        })
}

/// Where the embedded model may be: beside an installed binary, the container image's folder,
/// and the checkout this binary was built from (so `cargo run` works with no set-up).
fn embedded_candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.join("../share/loopsmith/models/tiny/bundle"));
    }
    dirs.push(PathBuf::from("/opt/loopsmith/models/tiny/bundle"));
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny/bundle"));
    dirs
}

fn open(dir: &Path) -> Result<Bundle, Failure> {
    Bundle::open(dir).map_err(|e| Failure::Input(error_chain(&e)))
}

/// Finds ONNX Runtime as the settings and environment say, with every candidate reported.
pub fn discovery(settings: &Settings, list_all: bool) -> Discovery {
    let configured = (!settings.local.onnxruntime.is_empty())
        .then(|| PathBuf::from(&settings.local.onnxruntime));
    let mut options = DiscoveryOptions::standard(configured, runtime::default_project_roots());
    options.list_all = list_all;
    runtime::discover(&options)
}

pub fn runtime(settings: &Settings) -> Result<Runtime, Failure> {
    let discovery = discovery(settings, false);
    let library = discovery
        .library()
        .map_err(|e| Failure::Unavailable(format!("{}\n{discovery}", error_chain(&e))))?;
    let device = match settings.local.device {
        ConfigDevice::Auto => Device::Auto,
        ConfigDevice::Cpu => Device::Cpu,
        ConfigDevice::Cuda(n) => Device::Cuda(n),
    };
    let threads = (settings.local.threads > 0).then_some(settings.local.threads as usize);
    Runtime::new(&library, device, threads).map_err(|e| Failure::Unavailable(error_chain(&e)))
}
