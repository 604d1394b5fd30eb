//! System packages, installed with apt on Debian-based machines.

use std::io;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{capture, probe, run};

/// Needed to build the workspace (`pkg-config` finds libvpx for the WebM encoder).
pub const BUILD: &[&str] = &["pkg-config", "libvpx-dev"];

/// Needed on top of [`BUILD`] to run the test suite: independent checkers of our outputs
/// (ffmpeg for video, libsixel's `sixel2png` for the console's sixel pictures).
pub const TEST: &[&str] = &["ffmpeg", "libsixel-bin"];

/// Makes sure the [`BUILD`] packages (and [`TEST`] ones when `with_test`) are installed.
pub fn ensure_packages(apt: &mut Apt, with_test: bool) -> Result<()> {
    let mut wanted: Vec<&str> = BUILD.to_vec();
    if with_test {
        wanted.extend(TEST.iter().filter(|p| !BUILD.contains(p)));
    }
    let mut missing = Vec::new();
    for &package in &wanted {
        match is_installed(package) {
            Ok(true) => {}
            Ok(false) => missing.push(package),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                eprintln!(
                    "xtask: warning: dpkg-query not found (not a Debian-based system?); \
                     make sure these are installed with your package manager: {}",
                    wanted.join(" ")
                );
                return Ok(());
            }
            Err(err) => return Err(err).context("could not run dpkg-query"),
        }
    }
    if missing.is_empty() {
        eprintln!("xtask: system packages present: {}", wanted.join(" "));
        return Ok(());
    }
    eprintln!("xtask: missing system packages: {}", missing.join(" "));
    apt.install(&missing)
}

fn is_installed(package: &str) -> io::Result<bool> {
    let output = probe(Command::new("dpkg-query").args(["-W", "-f", "${Status}", package]))?;
    // An unknown package is a non-zero exit; a removed one is known but in another state.
    Ok(output.status.success() && is_installed_status(&String::from_utf8_lossy(&output.stdout)))
}

fn is_installed_status(status: &str) -> bool {
    status.trim() == "install ok installed"
}

/// apt-get, run at most one `apt-get update` per xtask run.
#[derive(Debug, Default)]
pub struct Apt {
    updated: bool,
}

impl Apt {
    pub fn install(&mut self, packages: &[&str]) -> Result<()> {
        let list = packages.join(" ");
        if !is_root()? {
            bail!(
                "installing {list} needs root; run:\n    \
                 sudo apt-get install -y --no-install-recommends {list}"
            );
        }
        if !self.updated {
            run(Command::new("apt-get").arg("update")).context("apt-get update failed")?;
            self.updated = true;
        }
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages))
        .with_context(|| format!("could not install {list}"))
    }
}

// `id -u` rather than libc's getuid: xtask stays free of native dependencies and unsafe code.
fn is_root() -> Result<bool> {
    let uid = capture(Command::new("id").arg("-u"))?;
    Ok(uid.trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fully_installed_counts() {
        assert!(is_installed_status("install ok installed"));
        assert!(is_installed_status("install ok installed\n"));
        assert!(!is_installed_status("deinstall ok config-files"));
        assert!(!is_installed_status("unknown ok not-installed"));
        assert!(!is_installed_status(""));
    }
}
