//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "loopsmith",
    version,
    about = "Self-hosted video-sticker generator: prompts become short looping stickers.",
    after_help = "Settings come from built-in defaults, then --config FILE, then LOOPSMITH_<SECTION>__<KEY> \
environment variables; `loopsmith gen-config` prints every key.\n\n\
Exit codes: 0 success, 1 failure while running, 2 bad input or configuration, \
3 the capability is not available on this build or set-up."
)]
pub struct Cli {
    /// TOML config file.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "LOOPSMITH_CONFIG",
        hide_env_values = true
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make one sticker from a prompt and write it to a file.
    Generate(GenerateArgs),
    /// Run the engine with every enabled surface (Telegram, Discord, control socket).
    Serve,
    /// Open the operator console.
    Console(ConsoleArgs),
    /// Check the set-up and explain what to fix.
    Doctor,
    /// List, inspect and verify model bundles.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Print an example config file with every key and its default.
    GenConfig,
}

#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// Run an engine inside the console instead of attaching to `loopsmith serve`.
    #[arg(long, conflicts_with_all = ["socket", "connect"])]
    pub embedded: bool,
    /// The control socket to attach to (default: control.socket from the config).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Attach over loopback TCP instead, e.g. 127.0.0.1:7878; the token comes from
    /// LOOPSMITH_CONTROL_TOKEN.
    #[arg(long, value_name = "ADDR", conflicts_with = "socket")]
    pub connect: Option<String>,
    /// Leave the mouse to the terminal (text selection) instead of clicking tabs and rows and
    /// scrolling lists with the wheel.
    #[arg(long)]
    pub no_mouse: bool,
    /// How clips are drawn in Preview and Generate: kitty graphics, sixel, or half-blocks
    /// (two pixels a cell, any true-colour terminal). auto goes by the environment, then asks
    /// the terminal; half-blocks inside tmux or screen and whenever unsure.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = GraphicsArg::Auto)]
    pub graphics: GraphicsArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphicsArg {
    Auto,
    Kitty,
    Sixel,
    Halfblocks,
}

impl From<GraphicsArg> for loopsmith_console::graphics::Choice {
    fn from(arg: GraphicsArg) -> Self {
        use loopsmith_console::graphics::Choice;
        match arg {
            GraphicsArg::Auto => Choice::Auto,
            GraphicsArg::Kitty => Choice::Kitty,
            GraphicsArg::Sixel => Choice::Sixel,
            GraphicsArg::Halfblocks => Choice::HalfBlocks,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// What the sticker shows.
    pub prompt: String,
    /// Where to write the sticker; the extension picks the format (.webm, .mp4, .png, .gif).
    #[arg(long, short, default_value = "sticker.webm")]
    pub out: PathBuf,
    /// Seed for a reproducible result (random when absent).
    #[arg(long)]
    pub seed: Option<u32>,
    /// Clip length in seconds, 3 to 10.
    #[arg(long)]
    pub duration: Option<f32>,
    /// Style preset, e.g. anime or pixel-art.
    #[arg(long)]
    pub style: Option<String>,
    /// Which backend renders it.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    pub backend: BackendArg,
    /// How a clip of another shape goes into the sticker's box.
    #[arg(long, value_enum, default_value_t = FitArg::Pad)]
    pub fit: FitArg,
    /// What happens to a clip longer than the sticker allows.
    #[arg(long, value_enum, default_value_t = TimingArg::Trim)]
    pub timing: TimingArg,
    /// Keep the clip's end as rendered instead of cross-fading it into the start.
    #[arg(long)]
    pub no_crossfade: bool,
    /// Print a JSON summary (path, bytes, seed, backend, timings) instead of progress.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendArg {
    /// Local model first, Pika as fallback.
    Auto,
    Local,
    Pika,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FitArg {
    /// Show the whole picture (letterboxed where the box is square).
    Pad,
    /// Fill the box and cut the overflow.
    Crop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimingArg {
    /// Keep the beginning.
    Trim,
    /// Keep everything, played faster.
    SpeedUp,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Model bundles in the given folders (default: local.model and <data_dir>/models).
    List {
        /// Folders holding a bundle, or bundles as subfolders.
        dirs: Vec<PathBuf>,
    },
    /// What a bundle is: family, sizes, frames, steps, files.
    Info {
        /// The bundle's folder.
        bundle: PathBuf,
    },
    /// Check every file's sha256 and that every graph loads with the expected inputs and outputs.
    Verify {
        /// The bundle's folder.
        bundle: PathBuf,
    },
}
