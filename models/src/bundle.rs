//! Model bundles: a folder with `model.toml` (format in `BUNDLE.md`), the graphs and the
//! tokenizer it names. [`Bundle::open`] parses and checks that the files are there;
//! [`Bundle::verify`] hashes them and loads every graph; [`list`] finds bundles in folders.

mod manifest;
mod verify;

use std::fmt;
use std::path::{Path, PathBuf};

pub use manifest::{
    Defaults, FORMAT, Family, Files, Latent, Manifest, Tensors, Text, Video,
    parse as parse_manifest,
};
pub use verify::{Check, VerifyReport, sha256_file};

use crate::ModelError;
use crate::runtime::{Runtime, SessionSpec};

/// The manifest's file name in a bundle folder.
pub const MANIFEST: &str = "model.toml";

/// The graphs of a bundle, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GraphRole {
    TextEncoder,
    Denoiser,
    VaeDecoder,
}

impl GraphRole {
    /// The `[files]` key, also used as the session name.
    pub fn name(self) -> &'static str {
        match self {
            GraphRole::TextEncoder => "text_encoder",
            GraphRole::Denoiser => "denoiser",
            GraphRole::VaeDecoder => "vae_decoder",
        }
    }
}

impl fmt::Display for GraphRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An opened bundle: the manifest is valid and every file it names exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
}

impl Bundle {
    /// Reads and checks `<dir>/model.toml`, then checks that every file under `[files]` and
    /// `[sha256]` is there. Hashes are left to [`Bundle::verify`]: reading gigabytes on every
    /// start would be slow.
    pub fn open(dir: &Path) -> Result<Bundle, ModelError> {
        let manifest_path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&manifest_path).map_err(|source| ModelError::Io {
            path: manifest_path.display().to_string(),
            source,
        })?;
        let manifest = manifest::parse(&text).map_err(|message| ModelError::Bundle {
            path: manifest_path.display().to_string(),
            message,
        })?;
        let missing = |file: &str, listed: String| ModelError::Bundle {
            path: dir.display().to_string(),
            message: format!("{file} (listed {listed}) is missing"),
        };
        for (key, file) in manifest.files.named() {
            if !dir.join(file).is_file() {
                return Err(missing(file, format!("as files.{key}")));
            }
        }
        for file in manifest.sha256.keys() {
            if !dir.join(file).is_file() {
                return Err(missing(file, "under [sha256]".to_string()));
            }
        }
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The graph file for `role`; `None` for the VAE of a pixel-space model.
    pub fn graph_path(&self, role: GraphRole) -> Option<PathBuf> {
        let files = &self.manifest.files;
        let file = match role {
            GraphRole::TextEncoder => Some(&files.text_encoder),
            GraphRole::Denoiser => Some(&files.denoiser),
            GraphRole::VaeDecoder => files.vae_decoder.as_ref(),
        };
        file.map(|f| self.dir.join(f))
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.files.tokenizer)
    }

    /// One session per graph, named by [`GraphRole::name`], default options.
    pub fn session_specs(&self) -> Vec<(GraphRole, SessionSpec)> {
        [
            GraphRole::TextEncoder,
            GraphRole::Denoiser,
            GraphRole::VaeDecoder,
        ]
        .into_iter()
        .filter_map(|role| {
            self.graph_path(role)
                .map(|path| (role, SessionSpec::new(role.name(), path)))
        })
        .collect()
    }

    /// Hashes every file under `[sha256]`, loads the tokenizer and every graph, and checks each
    /// graph's inputs and outputs against `[tensors]`, `[text]` and `[latent]`.
    pub fn verify(&self, runtime: &Runtime) -> VerifyReport {
        verify::verify(self, runtime, &mut |_| {})
    }

    /// [`Bundle::verify`], calling `on_check` as each check finishes (hashing gigabytes takes
    /// a while; a CLI can print as it goes).
    pub fn verify_with(&self, runtime: &Runtime, on_check: &mut dyn FnMut(&Check)) -> VerifyReport {
        verify::verify(self, runtime, on_check)
    }

    /// Everything worth showing about the bundle.
    pub fn info(&self) -> BundleInfo {
        let m = &self.manifest;
        let mut files: Vec<FileInfo> = Vec::new();
        for (key, file) in m.files.named() {
            files.push(self.file_info(key, file));
        }
        for file in m.sha256.keys() {
            if !files.iter().any(|f| &f.file == file) {
                files.push(self.file_info("data", file));
            }
        }
        BundleInfo {
            dir: self.dir.clone(),
            name: m.name.clone(),
            family: m.family,
            description: m.description.clone(),
            licence: m.licence.clone(),
            video: m.video,
            steps: m.defaults.steps,
            guidance: m.defaults.guidance,
            files,
        }
    }

    fn file_info(&self, role: &str, file: &str) -> FileInfo {
        FileInfo {
            role: role.to_string(),
            file: file.to_string(),
            size: std::fs::metadata(self.dir.join(file)).ok().map(|m| m.len()),
        }
    }

    /// The one-line form [`list`] gives.
    pub fn summary(&self) -> BundleSummary {
        let info = self.info();
        BundleSummary {
            size: info.total_size(),
            name: info.name,
            family: info.family,
            description: info.description,
            licence: info.licence,
            video: info.video,
            steps: info.steps,
            guidance: info.guidance,
        }
    }
}

/// A file of a bundle, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The `[files]` key, or `data` for other files (external weights).
    pub role: String,
    pub file: String,
    /// `None` when it could not be read.
    pub size: Option<u64>,
}

/// What `loopsmith models info` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleInfo {
    pub dir: PathBuf,
    pub name: String,
    pub family: Family,
    pub description: String,
    pub licence: String,
    pub video: Video,
    pub steps: u32,
    pub guidance: f32,
    pub files: Vec<FileInfo>,
}

impl BundleInfo {
    pub fn total_size(&self) -> u64 {
        self.files.iter().filter_map(|f| f.size).sum()
    }
}

impl fmt::Display for BundleInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({})", self.name, self.dir.display())?;
        if !self.description.is_empty() {
            writeln!(f, "  {}", self.description)?;
        }
        writeln!(f, "  family:   {}", self.family)?;
        writeln!(f, "  licence:  {}", self.licence)?;
        writeln!(
            f,
            "  video:    {}×{}, {} frames at {} fps",
            self.video.width, self.video.height, self.video.frames, self.video.fps
        )?;
        writeln!(
            f,
            "  defaults: {} steps, guidance {}",
            self.steps, self.guidance
        )?;
        writeln!(f, "  files:    {} in all", human_size(self.total_size()))?;
        for file in &self.files {
            let size = file
                .size
                .map_or_else(|| "unreadable".to_string(), human_size);
            writeln!(f, "    {:<13} {:<28} {size}", file.role, file.file)?;
        }
        Ok(())
    }
}

/// One line of `loopsmith models list`.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleSummary {
    pub name: String,
    pub family: Family,
    pub description: String,
    pub licence: String,
    pub video: Video,
    pub steps: u32,
    pub guidance: f32,
    /// Bytes, all files together.
    pub size: u64,
}

impl fmt::Display for BundleSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  {}  {}×{}, {} frames at {} fps, {} steps  {}  {}",
            self.name,
            self.family,
            self.video.width,
            self.video.height,
            self.video.frames,
            self.video.fps,
            self.steps,
            human_size(self.size),
            self.licence
        )
    }
}

/// `123 B`, `4.5 KB`, `1.2 GB` (decimal units, as download sizes are usually given).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Bundles in `dirs`: each folder that has a `model.toml` is one, and so is each of its
/// immediate subfolders that has one. Folders that don't exist are passed over (a default
/// models folder need not exist yet). Sorted by path; a bundle that fails to open is listed with
/// its error, so a broken one is seen rather than silently missing.
pub fn list<P: AsRef<Path>>(dirs: &[P]) -> Vec<(PathBuf, Result<BundleSummary, ModelError>)> {
    let mut found: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let dir = dir.as_ref();
        if dir.join(MANIFEST).is_file() {
            found.push(dir.to_path_buf());
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        found.extend(
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_dir() && path.join(MANIFEST).is_file()),
        );
    }
    found.sort();
    found.dedup();
    found
        .into_iter()
        .map(|dir| {
            let summary = Bundle::open(&dir).map(|bundle| bundle.summary());
            (dir, summary)
        })
        .collect()
}
