//! `loopsmith doctor`: one line per check, each failure with what to do about it. Exit code 2
//! when anything required is missing or broken.

mod checks;

use std::path::Path;

use loopsmith_config::{Secrets, Settings};
use loopsmith_engine::{SledStore, Store};

use crate::{Failure, error_chain};

pub(crate) enum Status {
    Ok,
    Fail,
    /// Not a problem of the set-up; information.
    Note,
}

pub(crate) struct Report {
    failures: usize,
}

impl Report {
    fn line(&mut self, status: Status, what: &str, detail: impl AsRef<str>) {
        let mark = match status {
            Status::Ok => "ok  ",
            Status::Fail => {
                self.failures += 1;
                "FAIL"
            }
            Status::Note => "--  ",
        };
        println!("{mark}  {what:<22} {}", detail.as_ref());
    }

    /// An indented line under the previous check.
    fn detail(&mut self, text: &str) {
        println!("      {text}");
    }
}

pub fn run(config: Option<&Path>) -> Result<(), Failure> {
    let mut report = Report { failures: 0 };
    let env = loopsmith_config::process_env();
    let settings = match Settings::load(config, env.clone()) {
        Ok(s) => {
            let source = config.map_or("built-in defaults and environment".to_string(), |p| {
                p.display().to_string()
            });
            report.line(Status::Ok, "config", source);
            s
        }
        Err(e) => {
            report.line(
                Status::Fail,
                "config",
                format!("{} — fix the file or variable it names", error_chain(&e)),
            );
            return Err(Failure::Input("the configuration is invalid".into()));
        }
    };

    match Secrets::load(&settings, env) {
        Ok(secrets) => {
            let needed = [
                settings.telegram.enabled,
                settings.discord.enabled,
                settings.pika.enabled,
            ];
            let surfaces = ["telegram.enabled", "discord.enabled", "pika.enabled"];
            for (((name, present), needed), switch) in
                secrets.presence().into_iter().zip(needed).zip(surfaces)
            {
                match (present, needed) {
                    (true, _) => report.line(Status::Ok, name, "set (value not shown)"),
                    (false, true) => report.line(
                        Status::Fail,
                        name,
                        format!("missing, but {switch} = true — set it in the environment or in engine.secrets_file"),
                    ),
                    (false, false) => report.line(Status::Note, name, format!("not set; not needed while {switch} = false")),
                }
            }
        }
        Err(e) => report.line(Status::Fail, "secrets file", error_chain(&e)),
    }

    let data_dir = &settings.storage.data_dir;
    let probe = data_dir.join(".doctor-write-test");
    match std::fs::create_dir_all(data_dir).and_then(|()| std::fs::write(&probe, b"ok")) {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            report.line(
                Status::Ok,
                "data dir",
                format!("{} is writable", data_dir.display()),
            );
            match SledStore::open(&data_dir.join("db")).and_then(|s| s.jobs()) {
                Ok(jobs) => report.line(
                    Status::Ok,
                    "database",
                    format!("opens; {} recorded", plural(jobs.len(), "job")),
                ),
                Err(e) => report.line(
                    Status::Fail,
                    "database",
                    format!(
                        "{} — is another loopsmith process using it?",
                        error_chain(&e)
                    ),
                ),
            }
        }
        Err(e) => report.line(
            Status::Fail,
            "data dir",
            format!(
                "{} is not writable ({e}) — set storage.data_dir to a folder this user owns",
                data_dir.display()
            ),
        ),
    }

    if data_dir.is_dir() {
        checks::disk(&mut report, data_dir);
    }

    let discovery = crate::models::discovery(&settings, true);
    let library = discovery.library();
    match &library {
        Ok(library) => report.line(
            Status::Ok,
            "ONNX Runtime",
            format!("{} from {}", library.version(), library.path().display()),
        ),
        Err(_) => report.line(
            Status::Fail,
            "ONNX Runtime",
            "not found — run `cargo xtask setup`, or set local.onnxruntime or ORT_DYLIB_PATH",
        ),
    }
    for line in discovery.to_string().lines() {
        report.detail(line);
    }
    let runtime = match &library {
        Ok(_) => crate::models::runtime(&settings).map_err(|e| match e {
            Failure::Input(m) | Failure::Unavailable(m) => m,
            Failure::Runtime(e) => format!("{e:#}"),
        }),
        Err(_) => Err("no ONNX Runtime library to load".to_string()),
    };
    checks::provider(
        &mut report,
        runtime.as_ref().map_err(Clone::clone),
        &settings,
    );
    checks::model(&mut report, runtime.as_ref().ok(), &settings);
    checks::libvpx(&mut report);
    checks::endpoints(&mut report, &settings);

    if report.failures > 0 {
        return Err(Failure::Input(format!(
            "{} check(s) failed",
            report.failures
        )));
    }
    Ok(())
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
