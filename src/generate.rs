//! `loopsmith generate`: one sticker from the command line.

use std::path::Path;

use loopsmith_config::Settings;
use loopsmith_engine::protocol::{
    BackendChoice, Fit, OutputKind, Overrides, ParamDefaults, Timing, UserStyle,
};
use loopsmith_engine::style::StyleCatalog;

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
        style: args.style,
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
    // Check the request first, so a typo is reported before anything else.
    catalog
        .resolve(&args.prompt, &overrides, &UserStyle::default(), 0)
        .map_err(|e| Failure::Input(e.to_string()))?;
    let pika = if settings.pika.enabled {
        "the Pika backend is not part of this build yet"
    } else {
        "Pika is disabled (pika.enabled = false) and not part of this build yet"
    };
    let local = format!(
        "the local ONNX backend (local.model = \"{}\") is not part of this build yet",
        settings.local.model
    );
    let reason = match args.backend {
        BackendArg::Auto => format!("no render backend is available: {local}, and {pika}."),
        BackendArg::Local => format!("{local}."),
        BackendArg::Pika => format!("{pika}."),
    };
    Err(Failure::Unavailable(format!(
        "{reason} Nothing was rendered."
    )))
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
