//! Asking other programs: Python for its `onnxruntime` package, `ldconfig` for the loader's
//! cache. Both run as child processes with a time limit.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::discovery::LIBRARY_PREFIX;

/// Asks Python where `onnxruntime` is installed (the GPU wheel installs the same module name).
pub(super) fn python_package_dir(program: &Path, timeout: Duration) -> Result<PathBuf, String> {
    let script = "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))";
    let output = run_with_timeout(Command::new(program).arg("-c").arg(script), timeout)
        .map_err(|why| format!("{}: {why}", program.display()))?;
    if !output.success {
        let last = output
            .stderr
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(if last.contains("No module named") {
            format!("{} has no onnxruntime package", program.display())
        } else {
            format!("{} could not import onnxruntime: {last}", program.display())
        });
    }
    let dir = output.stdout.trim();
    if dir.is_empty() {
        return Err(format!(
            "{} printed no onnxruntime folder",
            program.display()
        ));
    }
    Ok(PathBuf::from(dir))
}

/// Libraries named `libonnxruntime.so*` in the dynamic loader's cache.
pub(super) fn ldconfig_libraries() -> Result<Vec<PathBuf>, String> {
    let timeout = Duration::from_secs(2);
    // Debian keeps ldconfig in /sbin, which is not on every user's PATH.
    let mut last_error = String::from("ldconfig not found");
    for program in ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"] {
        match run_with_timeout(Command::new(program).arg("-p"), timeout) {
            Ok(output) if output.success => return Ok(parse_ldconfig(&output.stdout)),
            Ok(output) => {
                last_error = format!("`{program} -p` failed: {}", output.stderr.trim());
            }
            Err(why) => last_error = format!("{program}: {why}"),
        }
    }
    Err(last_error)
}

/// Lines look like `\tlibonnxruntime.so.1 (libc6,x86-64) => /usr/lib/libonnxruntime.so.1`.
fn parse_ldconfig(listing: &str) -> Vec<PathBuf> {
    listing
        .lines()
        .filter_map(|line| {
            let (name, path) = line.split_once("=>")?;
            name.trim()
                .starts_with(LIBRARY_PREFIX)
                .then(|| PathBuf::from(path.trim()))
        })
        .collect()
}

struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

/// `std::process` has no timeout: poll the child and kill it when time is up. Output is read on
/// helper threads so a chatty child (ldconfig prints hundreds of lines) cannot block on a full
/// pipe while we wait for it to exit.
fn run_with_timeout(command: &mut Command, timeout: Duration) -> Result<Output, String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().map(reader_thread);
    let stderr = child.stderr.take().map(reader_thread);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                // Only this child, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let collect = |handle: Option<std::thread::JoinHandle<String>>| {
        handle.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    let stdout = collect(stdout);
    let stderr = collect(stderr);
    match status {
        None => Err(format!("gave up after {} ms", timeout.as_millis())),
        Some(status) => Ok(Output {
            success: status.success(),
            stdout,
            stderr,
        }),
    }
}

fn reader_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldconfig_lines() {
        let listing = "1234 libs found in cache `/etc/ld.so.cache'\n\
            \tlibonnxruntime.so.1 (libc6,x86-64) => /usr/lib/libonnxruntime.so.1\n\
            \tlibonnxruntime_providers_shared.so (libc6,x86-64) => /usr/lib/x.so\n\
            \tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n";
        assert_eq!(
            parse_ldconfig(listing),
            vec![PathBuf::from("/usr/lib/libonnxruntime.so.1")]
        );
    }
}
