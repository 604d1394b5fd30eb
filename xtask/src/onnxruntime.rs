//! ONNX Runtime's shared library, taken from the PyPI wheel and kept in
//! `<workspace>/.loopsmith/onnxruntime/` (the `ort` crate opens it at run time via
//! `ORT_DYLIB_PATH`).

mod manifest;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};

use crate::process::{capture, probe, run};
use crate::system::Apt;
use manifest::Manifest;

pub const VERSION: &str = "1.31.1";

/// Anything smaller is a stub or a truncated file, not the runtime.
const MIN_LIBRARY_BYTES: u64 = 1024 * 1024;

/// The stable name for tools that look for plain `libonnxruntime.so`.
const UNVERSIONED: &str = "libonnxruntime.so";

/// Copies `onnxruntime/capi/libonnxruntime*` out of the wheel (a zip) and prints their names.
const EXTRACT_PY: &str = r#"import os, shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        folder, _, name = info.filename.rpartition("/")
        if folder == "onnxruntime/capi" and name.startswith("libonnxruntime"):
            target = os.path.join(dest, name)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            os.chmod(target, 0o755)
            print(name)
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Cpu,
    Gpu,
}

impl Variant {
    pub fn package(self) -> &'static str {
        match self {
            Self::Cpu => "onnxruntime",
            Self::Gpu => "onnxruntime-gpu",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
        }
    }
}

/// What the user asked for on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VariantChoice {
    #[default]
    Auto,
    Cpu,
    Gpu,
}

/// `--cpu` / `--gpu` win; otherwise the GPU build only when an NVIDIA GPU is there.
/// `gpu_present` is only called for [`VariantChoice::Auto`].
pub fn choose_variant(choice: VariantChoice, gpu_present: impl FnOnce() -> bool) -> Variant {
    match choice {
        VariantChoice::Cpu => Variant::Cpu,
        VariantChoice::Gpu => Variant::Gpu,
        VariantChoice::Auto => {
            if gpu_present() {
                Variant::Gpu
            } else {
                Variant::Cpu
            }
        }
    }
}

fn nvidia_gpu_present() -> bool {
    Path::new("/dev/nvidia0").exists()
        || probe(Command::new("nvidia-smi").arg("-L")).is_ok_and(|out| out.status.success())
}

pub fn install_dir(root: &Path) -> PathBuf {
    root.join(".loopsmith").join("onnxruntime")
}

/// What `ORT_DYLIB_PATH` should point at.
pub fn library_path(root: &Path) -> PathBuf {
    // Both variants ship the library under the same name.
    install_dir(root).join(Manifest::new(Variant::Cpu, VERSION).library)
}

/// Installs the library unless the same wheel's library is already there.
pub fn ensure_installed(root: &Path, choice: VariantChoice, apt: &mut Apt) -> Result<()> {
    let variant = choose_variant(choice, nvidia_gpu_present);
    let wanted = Manifest::new(variant, VERSION);
    let dir = install_dir(root);
    let library = dir.join(&wanted.library);

    if let Some(found) = read_manifest(&dir)
        && found.same_wheel(&wanted)
        && verify(&library).is_ok()
    {
        link_unversioned(&dir, &wanted.library)?;
        eprintln!(
            "xtask: ONNX Runtime {VERSION} ({}) already in {}",
            variant.name(),
            dir.display()
        );
        return Ok(());
    }

    eprintln!(
        "xtask: installing ONNX Runtime {VERSION} ({}) from the PyPI wheel `{}`",
        variant.name(),
        wanted.package
    );
    ensure_pip(apt)?;
    let download = TempDir::create()?;
    let wheel = download_wheel(&wanted, download.path())?;

    // Unpack next to the final folder and swap it in at the end, so an interrupted run
    // never leaves a folder that looks complete.
    let staging = dir.with_file_name("onnxruntime.partial");
    remove_dir_if_present(&staging)?;
    fs::create_dir_all(&staging)
        .with_context(|| format!("could not create {}", staging.display()))?;
    extract_libraries(&wheel, &staging, download.path(), &wanted.library)?;
    link_unversioned(&staging, &wanted.library)?;
    let manifest_path = staging.join("MANIFEST");
    fs::write(&manifest_path, wanted.render())
        .with_context(|| format!("could not write {}", manifest_path.display()))?;
    remove_dir_if_present(&dir)?;
    fs::rename(&staging, &dir)
        .with_context(|| format!("could not move {} to {}", staging.display(), dir.display()))?;

    verify(&library)?;
    eprintln!("xtask: ONNX Runtime ready: {}", library.display());
    Ok(())
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let path = dir.join("MANIFEST");
    let text = fs::read_to_string(&path).ok()?;
    match Manifest::parse(&text) {
        Ok(manifest) => Some(manifest),
        Err(err) => {
            eprintln!(
                "xtask: warning: ignoring {}: {err:#}; installing again",
                path.display()
            );
            None
        }
    }
}

fn ensure_pip(apt: &mut Apt) -> Result<()> {
    let pip_works = || {
        probe(Command::new("python3").args(["-m", "pip", "--version"]))
            .is_ok_and(|out| out.status.success())
    };
    if pip_works() {
        return Ok(());
    }
    eprintln!("xtask: `python3 -m pip` is not available; it is needed to download the wheel");
    apt.install(&["python3-pip"])?;
    ensure!(
        pip_works(),
        "`python3 -m pip` still fails after installing python3-pip; \
         is the `python3` on PATH a different Python than the system one?"
    );
    Ok(())
}

fn download_wheel(wanted: &Manifest, dest: &Path) -> Result<PathBuf> {
    let started = Instant::now();
    run(Command::new("python3")
        .args(["-m", "pip", "download", "--disable-pip-version-check"])
        .args(["--no-deps", "--only-binary=:all:", "--dest"])
        .arg(dest)
        .arg(format!("{}=={}", wanted.package, wanted.version)))
    .context("could not download the ONNX Runtime wheel from PyPI")?;

    let wheel = find_wheel(dest)?;
    let size = fs::metadata(&wheel).map(|m| m.len()).unwrap_or_default();
    eprintln!(
        "xtask: downloaded {} ({:.1} MB) in {:.1}s",
        wheel.file_name().unwrap_or_default().to_string_lossy(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(wheel)
}

fn find_wheel(dir: &Path) -> Result<PathBuf> {
    let entries = fs::read_dir(dir).with_context(|| format!("could not list {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("could not list {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "whl") {
            return Ok(path);
        }
    }
    bail!("pip reported success but left no .whl in {}", dir.display())
}

fn extract_libraries(wheel: &Path, dest: &Path, scratch: &Path, library: &str) -> Result<()> {
    let started = Instant::now();
    // A script file rather than `python3 -c`, so the echoed command stays one readable line.
    let script = scratch.join("extract_onnxruntime.py");
    fs::write(&script, EXTRACT_PY)
        .with_context(|| format!("could not write {}", script.display()))?;
    let stdout = capture(Command::new("python3").arg(&script).arg(wheel).arg(dest))
        .context("could not extract the libraries from the wheel")?;
    let names: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    ensure!(
        names.contains(&library),
        "the wheel has no onnxruntime/capi/{library} (found: {})",
        if names.is_empty() {
            "nothing".to_owned()
        } else {
            names.join(", ")
        }
    );
    eprintln!(
        "xtask: extracted {} in {:.1}s",
        names.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn link_unversioned(dir: &Path, library: &str) -> Result<()> {
    let link = dir.join(UNVERSIONED);
    if fs::read_link(&link).is_ok_and(|target| target == Path::new(library)) {
        return Ok(());
    }
    if fs::symlink_metadata(&link).is_ok() {
        fs::remove_file(&link).with_context(|| format!("could not replace {}", link.display()))?;
    }
    symlink(library, &link)
        .with_context(|| format!("could not link {} -> {library}", link.display()))
}

#[cfg(unix)]
fn symlink(target: &str, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(target: &str, link: &Path) -> std::io::Result<()> {
    let dir = link.parent().unwrap_or(Path::new("."));
    fs::copy(dir.join(target), link).map(drop)
}

fn verify(library: &Path) -> Result<()> {
    let size = fs::metadata(library)
        .with_context(|| format!("ONNX Runtime library missing: {}", library.display()))?
        .len();
    ensure!(
        size > MIN_LIBRARY_BYTES,
        "{} is only {size} bytes; that is not the ONNX Runtime library",
        library.display()
    );
    Ok(())
}

fn remove_dir_if_present(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("could not remove {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// A scratch folder for the wheel, removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> Result<Self> {
        let path = std::env::temp_dir().join(format!("loopsmith-xtask-{}", std::process::id()));
        remove_dir_if_present(&path)?;
        fs::create_dir_all(&path)
            .with_context(|| format!("could not create {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover folder in the temp dir is harmless.
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_detection() {
        let detection_must_not_run = || panic!("GPU detection ran although a flag decided");
        assert_eq!(
            choose_variant(VariantChoice::Cpu, detection_must_not_run),
            Variant::Cpu
        );
        assert_eq!(
            choose_variant(VariantChoice::Gpu, detection_must_not_run),
            Variant::Gpu
        );
    }

    #[test]
    fn auto_follows_detection() {
        assert_eq!(choose_variant(VariantChoice::Auto, || true), Variant::Gpu);
        assert_eq!(choose_variant(VariantChoice::Auto, || false), Variant::Cpu);
    }

    #[test]
    fn library_path_is_project_local_and_versioned() {
        assert_eq!(
            library_path(Path::new("/repo")),
            Path::new("/repo/.loopsmith/onnxruntime/libonnxruntime.so.1.31.1")
        );
    }
}
