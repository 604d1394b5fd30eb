//! The checks that look outside the configuration: the execution provider and GPU, the model
//! bundle, libvpx, remote endpoints and disk space.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use loopsmith_config::{Device as ConfigDevice, Settings};
use loopsmith_models::bundle::Bundle;
use loopsmith_models::runtime::Runtime;

use super::{Report, Status};
use crate::error_chain;

/// Below this much free space in the data folder, renders and the database are at risk.
const MIN_FREE_BYTES: u64 = 1 << 30;
/// How long one endpoint may take to accept a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The provider sessions would use, and what the NVIDIA driver says about the GPUs.
pub fn provider(report: &mut Report, runtime: Result<&Runtime, String>, settings: &Settings) {
    let wants_cuda = matches!(settings.local.device, ConfigDevice::Cuda(_));
    match runtime {
        Ok(runtime) if runtime.provider().is_cuda() => {
            report.line(Status::Ok, "execution provider", runtime.provider().to_string());
        }
        Ok(runtime) => report.line(
            Status::Note,
            "execution provider",
            format!(
                "{} — for a GPU, install onnxruntime-gpu and its CUDA 13 libraries (deploy/Dockerfile.cuda)",
                runtime.provider()
            ),
        ),
        Err(why) if wants_cuda => report.line(
            Status::Fail,
            "execution provider",
            format!("{why} — set local.device = \"auto\" or \"cpu\", or fix the GPU set-up"),
        ),
        Err(why) => report.line(Status::Fail, "execution provider", why),
    }
    match nvidia_smi() {
        Some(gpus) if !gpus.is_empty() => {
            for gpu in gpus {
                report.line(Status::Ok, "GPU", gpu);
            }
        }
        Some(_) => report.line(Status::Note, "GPU", "nvidia-smi lists no GPU"),
        None => report.line(
            Status::Note,
            "GPU",
            "no NVIDIA driver found (nvidia-smi is not on PATH); rendering runs on the CPU",
        ),
    }
}

/// `name, driver, free/total memory` per GPU, or `None` without a driver.
fn nvidia_smi() -> Option<Vec<String>> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,driver_version,memory.free,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return Some(Vec::new());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(',').map(str::trim).collect();
                (f.len() == 5).then(|| {
                    format!(
                        "cuda:{} {} (driver {}), {} MiB free of {} MiB",
                        f[0], f[1], f[2], f[3], f[4]
                    )
                })
            })
            .collect(),
    )
}

/// The configured local model: its bundle opened and verified (hashes, graphs load with the
/// declared inputs and outputs).
pub fn model(report: &mut Report, runtime: Option<&Runtime>, settings: &Settings) {
    if !settings.local.enabled {
        report.line(Status::Note, "local model", "local.enabled = false");
        return;
    }
    let dir = match crate::models::local_model_dir(settings) {
        Ok(dir) => dir,
        Err(why) => {
            report.line(Status::Fail, "local model", why);
            return;
        }
    };
    let bundle = match Bundle::open(&dir) {
        Ok(bundle) => bundle,
        Err(e) => {
            report.line(
                Status::Fail,
                "local model",
                format!(
                    "{} — point local.model at a bundle folder (`loopsmith models list`)",
                    error_chain(&e)
                ),
            );
            return;
        }
    };
    let Some(runtime) = runtime else {
        report.line(
            Status::Fail,
            "local model",
            format!("{} cannot be checked without ONNX Runtime", dir.display()),
        );
        return;
    };
    let result = bundle.verify_with(runtime, &mut |_| {});
    if result.passed() {
        report.line(
            Status::Ok,
            "local model",
            format!("{} verified", bundle.dir().display()),
        );
    } else {
        report.line(
            Status::Fail,
            "local model",
            format!(
                "{} failed verification — re-export or re-copy it",
                bundle.dir().display()
            ),
        );
        for check in result.failures() {
            report.detail(&check.to_string());
        }
    }
}

pub fn libvpx(report: &mut Report) {
    report.line(
        Status::Ok,
        "libvpx",
        format!(
            "{} (VP9 encoder for stickers)",
            loopsmith_engine::media::libvpx_version()
        ),
    );
}

/// Every remote endpoint an enabled surface or backend needs: can a TCP connection be made?
pub fn endpoints(report: &mut Report, settings: &Settings) {
    let discord = if settings.discord.proxy_url.is_empty() {
        "https://discord.com/api".to_string()
    } else {
        settings.discord.proxy_url.clone()
    };
    let wanted = [
        (
            "Telegram API",
            settings.telegram.enabled,
            settings.telegram.api_url.clone(),
            "telegram",
        ),
        ("Discord API", settings.discord.enabled, discord, "discord"),
        (
            "fal queue",
            settings.pika.enabled,
            settings.pika.base_url.clone(),
            "pika",
        ),
    ];
    for (name, enabled, url, section) in wanted {
        if !enabled {
            report.line(
                Status::Note,
                name,
                format!("not checked; {section}.enabled = false"),
            );
            continue;
        }
        match connect(&url) {
            Ok(at) => report.line(Status::Ok, name, format!("{url} reachable ({at})")),
            Err(why) => report.line(
                Status::Fail,
                name,
                format!("{url}: {why} — check the URL, the network, or a firewall"),
            ),
        }
    }
}

fn connect(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url
        .port_or_known_default()
        .ok_or("the URL has no port and no known default")?;
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host} ({e})"))?
        .collect();
    let mut last = format!("{host} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(format!("{host}:{port}")),
            Err(e) => last = format!("cannot connect to {addr} ({e})"),
        }
    }
    Err(last)
}

pub fn disk(report: &mut Report, data_dir: &Path) {
    match rustix::fs::statvfs(data_dir) {
        Ok(stat) => {
            let free = stat.f_bavail.saturating_mul(stat.f_frsize);
            let shown = format!("{:.1} GiB free in {}", gib(free), data_dir.display());
            if free < MIN_FREE_BYTES {
                report.line(
                    Status::Fail,
                    "disk space",
                    format!(
                        "only {shown} — free some space or move storage.data_dir (at least 1 GiB)"
                    ),
                );
            } else {
                report.line(Status::Ok, "disk space", shown);
            }
        }
        Err(e) => report.line(
            Status::Fail,
            "disk space",
            format!("cannot read free space of {} ({e})", data_dir.display()),
        ),
    }
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}
