//! Finding the ONNX Runtime shared library.
//!
//! `ort` is built with `load-dynamic`, so nothing links ONNX Runtime at build time: the library is
//! opened at run time from wherever this search finds it. The search is an ordered list of places;
//! every place looked at becomes a [`Candidate`] with a [`Status`] that says why it was used or
//! skipped, so `loopsmith doctor` can show the whole story rather than just "not found".
//!
//! Order: the configured path (`local.onnxruntime`), `ORT_DYLIB_PATH`, the project-local folder the
//! set-up fills (`<root>/.loopsmith/onnxruntime/`), an importable `onnxruntime` Python package,
//! then `ldconfig -p` and the usual system folders.
//!
//! An explicit path (the configured one or `ORT_DYLIB_PATH`) that is unusable is an error, not a
//! skip: the user named that file, and silently running some other copy (say, a CPU-only one
//! instead of their GPU build) would be harder to diagnose than a clear refusal.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::external::{ldconfig_libraries, python_package_dir};
use crate::ModelError;

/// The ONNX Runtime minor version `ort` 2.0.0-rc.15 is written against (its `api-31` feature).
/// Older libraries lack functions ort calls; newer ones are untested with this ort release.
pub const REQUIRED_MINOR: u32 = ort::MINOR_VERSION;

/// The file name prefix every ONNX Runtime shared library on Linux has.
pub(super) const LIBRARY_PREFIX: &str = "libonnxruntime.so";

/// Where the project's set-up (`cargo xtask setup`) puts the library, under a project root.
pub const PROJECT_LIBRARY_DIR: &str = ".loopsmith/onnxruntime";

/// System folders searched last, after `ldconfig -p`.
pub const SYSTEM_DIRS: &[&str] = &["/usr/lib", "/usr/local/lib", "/usr/lib/x86_64-linux-gnu"];

/// How to ask Python where its `onnxruntime` package lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PythonSearch {
    /// Don't run Python.
    Skip,
    /// Run `program -c "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))"`,
    /// giving up after `timeout` (importing a GPU build can be slow; a hung interpreter must not
    /// hang start-up).
    Interpreter { program: PathBuf, timeout: Duration },
}

/// What to search. [`DiscoveryOptions::standard`] fills in the usual places; tests build their
/// own so they never depend on the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryOptions {
    /// `local.onnxruntime` from the config, when set.
    pub configured: Option<PathBuf>,
    /// The value of `ORT_DYLIB_PATH`, when set and not empty.
    pub env_path: Option<PathBuf>,
    /// Folders that may hold `.loopsmith/onnxruntime/`: typically the current directory and the
    /// executable's ancestors (see [`default_project_roots`]).
    pub project_roots: Vec<PathBuf>,
    pub python: PythonSearch,
    /// Run `ldconfig -p` and use the libraries it lists.
    pub ldconfig: bool,
    pub system_dirs: Vec<PathBuf>,
    /// Keep looking after the first usable library, so a report lists every copy on the machine
    /// (for `doctor`). Start-up leaves this off: it saves running Python and `ldconfig`.
    pub list_all: bool,
}

impl DiscoveryOptions {
    /// Searches nowhere; set the fields you want.
    pub fn none() -> DiscoveryOptions {
        DiscoveryOptions {
            configured: None,
            env_path: None,
            project_roots: Vec::new(),
            python: PythonSearch::Skip,
            ldconfig: false,
            system_dirs: Vec::new(),
            list_all: false,
        }
    }

    /// The full search: the configured path, `ORT_DYLIB_PATH` from the environment, the given
    /// project roots, `python3` (3 s limit), `ldconfig -p` and [`SYSTEM_DIRS`].
    pub fn standard(configured: Option<PathBuf>, project_roots: Vec<PathBuf>) -> DiscoveryOptions {
        let env_path = std::env::var_os("ORT_DYLIB_PATH")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        DiscoveryOptions {
            configured: configured.filter(|path| !path.as_os_str().is_empty()),
            env_path,
            project_roots,
            python: PythonSearch::Interpreter {
                program: PathBuf::from("python3"),
                timeout: Duration::from_secs(3),
            },
            ldconfig: true,
            system_dirs: SYSTEM_DIRS.iter().map(PathBuf::from).collect(),
            list_all: false,
        }
    }
}

/// The current directory and every ancestor of the running executable, without duplicates: a
/// binary in `<root>/target/debug/` finds `<root>/.loopsmith/` this way.
pub fn default_project_roots() -> Vec<PathBuf> {
    project_roots(
        std::env::current_dir().ok().as_deref(),
        std::env::current_exe().ok().as_deref(),
    )
}

/// [`default_project_roots`] with the two starting points given.
pub fn project_roots(current_dir: Option<&Path>, executable: Option<&Path>) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(dir) = current_dir {
        roots.push(dir.to_path_buf());
    }
    if let Some(exe) = executable {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    let mut seen = HashSet::new();
    roots.retain(|root| !root.as_os_str().is_empty() && seen.insert(root.clone()));
    roots
}

/// Which search step produced a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `local.onnxruntime` in the config.
    Configured,
    /// The `ORT_DYLIB_PATH` environment variable.
    EnvVar,
    /// `<root>/.loopsmith/onnxruntime/`.
    Project { root: PathBuf },
    /// The `capi/` folder of an importable `onnxruntime` (or `onnxruntime-gpu`) Python package.
    Python,
    /// Listed by `ldconfig -p`.
    Ldconfig,
    /// One of the system folders.
    SystemDir,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Configured => f.write_str("config local.onnxruntime"),
            Source::EnvVar => f.write_str("ORT_DYLIB_PATH"),
            Source::Project { root } => write!(f, "project folder under {}", root.display()),
            Source::Python => f.write_str("Python package"),
            Source::Ldconfig => f.write_str("ldconfig"),
            Source::SystemDir => f.write_str("system folder"),
        }
    }
}

/// What happened to one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// This is the library to use.
    Chosen { version: String },
    /// Usable, but an earlier candidate was chosen (only with `list_all`).
    Usable { version: String },
    /// Nothing there.
    Missing,
    /// The path exists but is a folder or something else that is not a file.
    NotAFile,
    /// The search step itself found nothing to try (Python without the package, `ldconfig`
    /// without an entry); the text says why.
    Unavailable(String),
    /// ONNX Runtime, but not 1.[`REQUIRED_MINOR`].x.
    WrongVersion { found: String },
    /// The dynamic loader refused it, or it is not ONNX Runtime.
    LoadFailed(String),
    /// Not examined; the text says why.
    NotTried(String),
}

impl Status {
    /// True for [`Status::Chosen`].
    pub fn is_chosen(&self) -> bool {
        matches!(self, Status::Chosen { .. })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Chosen { version } => write!(f, "used: ONNX Runtime {version}"),
            Status::Usable { version } => {
                write!(
                    f,
                    "usable (ONNX Runtime {version}), but an earlier one is used"
                )
            }
            Status::Missing => f.write_str("skipped: missing"),
            Status::NotAFile => f.write_str("skipped: not a file"),
            Status::Unavailable(why) => write!(f, "skipped: {why}"),
            Status::WrongVersion { found } => write!(
                f,
                "skipped: wrong version (ONNX Runtime {found}; loopsmith needs 1.{REQUIRED_MINOR}.x)"
            ),
            Status::LoadFailed(why) => write!(f, "skipped: failed to load ({why})"),
            Status::NotTried(why) => write!(f, "not tried: {why}"),
        }
    }
}

/// One place the search looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub source: Source,
    /// The file (or, for a folder with no library in it, `<folder>/libonnxruntime.so*`); `None`
    /// when the search step had no path to offer (e.g. Python has no `onnxruntime`).
    pub path: Option<PathBuf>,
    pub status: Status,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{} ({}): {}", path.display(), self.source, self.status),
            None => write!(f, "({}): {}", self.source, self.status),
        }
    }
}

/// A library that passed the version check, ready for [`Runtime::new`](super::Runtime::new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    path: PathBuf,
    version: String,
    source: Source,
}

impl Library {
    /// Checks one file directly (loads it, reads its version), bypassing the search.
    pub fn probe(path: &Path) -> Result<Library, ModelError> {
        let absolute = absolute(path);
        match check_file(&absolute, &mut probe_library) {
            Status::Chosen { version } => Ok(Library {
                path: absolute,
                version,
                source: Source::Configured,
            }),
            other => Err(ModelError::LibraryNotFound(format!(
                "{}: {other}",
                absolute.display()
            ))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `1.31.1` when the file name carries the patch level, else `1.31`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn source(&self) -> &Source {
        &self.source
    }
}

impl fmt::Display for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ONNX Runtime {} at {} (from {})",
            self.version,
            self.path.display(),
            self.source
        )
    }
}

/// Why a file could not be used, from a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    LoadFailed(String),
    /// ONNX Runtime of another version: `1.<minor>`.
    WrongVersion(String),
}

/// Loads `path`, reads its version through ONNX Runtime's `GetVersionString` (via
/// `ort::util::probe`, which unloads it again), and requires 1.[`REQUIRED_MINOR`]. Returns the
/// version, with the patch level taken from the file name when it has one.
pub fn probe_library(path: &Path) -> Result<String, ProbeError> {
    match ort::util::probe(path) {
        None => Err(ProbeError::LoadFailed(
            "the dynamic loader refused it, or it is not ONNX Runtime 1.x".to_string(),
        )),
        Some(minor) if minor == REQUIRED_MINOR => Ok(version_from_name(path, minor)),
        Some(minor) => Err(ProbeError::WrongVersion(format!("1.{minor}"))),
    }
}

/// `ort` only reports the minor version; the file the set-up and the wheels install is named
/// `libonnxruntime.so.1.31.1`, so the patch level comes from the name (after following links).
fn version_from_name(path: &Path, minor: u32) -> String {
    let prefix = format!("1.{minor}.");
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    resolved
        .file_name()
        .and_then(OsStr::to_str)
        .and_then(|name| name.strip_prefix(LIBRARY_PREFIX))
        .and_then(|rest| rest.strip_prefix('.'))
        .filter(|version| {
            version.starts_with(&prefix)
                && version.split('.').all(|part| part.parse::<u32>().is_ok())
        })
        .map_or_else(|| format!("1.{minor}"), str::to_string)
}

/// The outcome of a search: every candidate in order, at most one chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    candidates: Vec<Candidate>,
    /// When the search stopped at the first usable library without looking further.
    stopped_early: bool,
}

impl Discovery {
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    pub fn chosen(&self) -> Option<&Candidate> {
        self.candidates.iter().find(|c| c.status.is_chosen())
    }

    /// The chosen library, or [`ModelError::LibraryNotFound`] summarising every candidate.
    pub fn library(&self) -> Result<Library, ModelError> {
        self.candidates
            .iter()
            .find_map(|candidate| match (&candidate.status, &candidate.path) {
                (Status::Chosen { version }, Some(path)) => Some(Library {
                    path: path.clone(),
                    version: version.clone(),
                    source: candidate.source.clone(),
                }),
                _ => None,
            })
            .ok_or_else(|| {
                let mut message = String::from("looked at:");
                for candidate in &self.candidates {
                    message.push_str("\n  ");
                    message.push_str(&candidate.to_string());
                }
                if self.candidates.is_empty() {
                    message.push_str(" nothing (no place to search was given)");
                }
                message.push_str(
                    "\nrun `cargo xtask setup`, or set local.onnxruntime to a libonnxruntime.so.1.",
                );
                message.push_str(&REQUIRED_MINOR.to_string());
                message.push_str(".x");
                ModelError::LibraryNotFound(message)
            })
    }
}

impl fmt::Display for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ONNX Runtime library search:")?;
        for candidate in &self.candidates {
            let mark = if candidate.status.is_chosen() {
                "*"
            } else {
                "-"
            };
            writeln!(f, "  {mark} {candidate}")?;
        }
        if self.stopped_early {
            writeln!(f, "  (stopped at the first usable library)")?;
        }
        Ok(())
    }
}

/// Runs the search, loading each file to check its version.
pub fn discover(options: &DiscoveryOptions) -> Discovery {
    discover_with(options, probe_library)
}

/// [`discover`] with the version check supplied by the caller: tests use fake files and a fake
/// probe to check order and reporting without loading anything.
pub fn discover_with(
    options: &DiscoveryOptions,
    mut probe: impl FnMut(&Path) -> Result<String, ProbeError>,
) -> Discovery {
    let mut search = Search {
        candidates: Vec::new(),
        seen: HashSet::new(),
        state: State::Searching,
        list_all: options.list_all,
        stopped_early: false,
        probe: &mut probe,
    };

    if let Some(path) = &options.configured {
        search.explicit(Source::Configured, path);
    }
    if let Some(path) = &options.env_path {
        search.explicit(Source::EnvVar, path);
    }
    for root in &options.project_roots {
        if search.stop() {
            break;
        }
        let dir = root.join(PROJECT_LIBRARY_DIR);
        search.folder(Source::Project { root: root.clone() }, &dir);
    }
    if let PythonSearch::Interpreter { program, timeout } = &options.python
        && !search.stop()
    {
        match python_package_dir(program, *timeout) {
            Ok(package) => search.folder(Source::Python, &package.join("capi")),
            Err(why) => search.push(Source::Python, None, Status::Unavailable(why)),
        }
    }
    if options.ldconfig && !search.stop() {
        match ldconfig_libraries() {
            Ok(paths) if paths.is_empty() => search.push(
                Source::Ldconfig,
                None,
                Status::Unavailable("`ldconfig -p` lists no libonnxruntime".to_string()),
            ),
            Ok(paths) => {
                for path in paths {
                    search.file(Source::Ldconfig, &path, false);
                }
            }
            Err(why) => search.push(Source::Ldconfig, None, Status::Unavailable(why)),
        }
    }
    for dir in &options.system_dirs {
        if search.stop() {
            break;
        }
        search.folder(Source::SystemDir, dir);
    }
    Discovery {
        candidates: search.candidates,
        stopped_early: search.stopped_early,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Searching,
    Chosen,
    /// An explicit path failed: nothing later may be chosen.
    ExplicitFailed,
}

struct Search<'p, P: FnMut(&Path) -> Result<String, ProbeError>> {
    candidates: Vec<Candidate>,
    /// Canonical paths already listed: the set-up's `libonnxruntime.so` link and the versioned
    /// file it points at are one library, not two.
    seen: HashSet<PathBuf>,
    state: State,
    list_all: bool,
    stopped_early: bool,
    probe: &'p mut P,
}

impl<P: FnMut(&Path) -> Result<String, ProbeError>> Search<'_, P> {
    /// True when nothing more needs looking at.
    fn stop(&mut self) -> bool {
        let stop = self.state == State::Chosen && !self.list_all;
        if stop {
            self.stopped_early = true;
        }
        stop
    }

    fn push(&mut self, source: Source, path: Option<PathBuf>, status: Status) {
        self.candidates.push(Candidate {
            source,
            path,
            status,
        });
    }

    /// A path the user named: must work, or the search fails here.
    fn explicit(&mut self, source: Source, path: &Path) {
        let path = absolute(path);
        if self.state == State::ExplicitFailed {
            let why = "an earlier explicit path must work first".to_string();
            self.push(source, Some(path), Status::NotTried(why));
            return;
        }
        if self.state == State::Chosen {
            let why = "the configured path takes precedence".to_string();
            self.push(source, Some(path), Status::NotTried(why));
            return;
        }
        self.file(source, &path, true);
    }

    /// Every `libonnxruntime.so*` in a folder, versioned names first.
    fn folder(&mut self, source: Source, dir: &Path) {
        let pattern = dir.join(format!("{LIBRARY_PREFIX}*"));
        let Ok(entries) = std::fs::read_dir(dir) else {
            self.push(source, Some(pattern), Status::Missing);
            return;
        };
        let mut names: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(OsStr::to_str)
                    .is_some_and(|name| name.starts_with(LIBRARY_PREFIX))
            })
            .collect();
        if names.is_empty() {
            self.push(source, Some(pattern), Status::Missing);
            return;
        }
        // `libonnxruntime.so.1.31.1` before `libonnxruntime.so.1` before `libonnxruntime.so`:
        // the most specific name is the one whose version the file name tells.
        names.sort_by(|a, b| b.as_os_str().len().cmp(&a.as_os_str().len()).then(a.cmp(b)));
        for path in names {
            self.file(source.clone(), &path, false);
        }
    }

    fn file(&mut self, source: Source, path: &Path, explicit: bool) {
        if let Ok(canonical) = std::fs::canonicalize(path)
            && !self.seen.insert(canonical)
        {
            return;
        }
        let status = match self.state {
            State::ExplicitFailed => {
                Status::NotTried("an explicit path was given and must work first".to_string())
            }
            State::Chosen if !self.list_all => {
                Status::NotTried("an earlier candidate is used".to_string())
            }
            State::Chosen => match check_file(path, self.probe) {
                Status::Chosen { version } => Status::Usable { version },
                other => other,
            },
            State::Searching => check_file(path, self.probe),
        };
        if status.is_chosen() {
            self.state = State::Chosen;
        } else if explicit && self.state == State::Searching {
            self.state = State::ExplicitFailed;
        }
        self.push(source, Some(path.to_path_buf()), status);
    }
}

/// The cheap checks first (is there a file?), then the probe.
fn check_file(path: &Path, probe: &mut impl FnMut(&Path) -> Result<String, ProbeError>) -> Status {
    match std::fs::metadata(path) {
        Err(_) => Status::Missing,
        Ok(meta) if !meta.is_file() => Status::NotAFile,
        Ok(_) => match probe(path) {
            Ok(version) => Status::Chosen { version },
            Err(ProbeError::LoadFailed(why)) => Status::LoadFailed(why),
            Err(ProbeError::WrongVersion(found)) => Status::WrongVersion { found },
        },
    }
}

/// `ort` resolves a relative path against the executable's folder, which would surprise a user
/// who wrote a path relative to where they ran loopsmith; make it absolute against the current
/// directory first.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_file_name() {
        let dir = std::env::temp_dir();
        assert_eq!(
            version_from_name(&dir.join("libonnxruntime.so.1.31.1"), 31),
            "1.31.1"
        );
        assert_eq!(
            version_from_name(&dir.join("libonnxruntime.so"), 31),
            "1.31"
        );
        assert_eq!(
            version_from_name(&dir.join("libonnxruntime.so.1.30.0"), 31),
            "1.31"
        );
    }

    #[test]
    fn roots_deduplicated() {
        let roots = project_roots(Some(Path::new("/a/b")), Some(Path::new("/a/b/c/exe")));
        assert_eq!(
            roots,
            vec![
                PathBuf::from("/a/b"),
                PathBuf::from("/a/b/c"),
                PathBuf::from("/a"),
                PathBuf::from("/"),
            ]
        );
    }
}
