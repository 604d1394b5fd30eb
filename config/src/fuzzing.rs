//! The entry point of the `config` cargo-fuzz target (fuzz/fuzz_targets/config.rs), shared with
//! the test below that replays the committed seeds on stable. Built only for tests or with the
//! `fuzzing` feature.

use std::path::Path;

use crate::{ConfigError, Settings};

/// Loads `data` as a config file's contents, as [`Settings::load`] does after reading the file.
/// Bytes that are not UTF-8 are converted lossily (the file loader refuses them before parsing,
/// which would leave the parser unexercised). After the first NUL byte, which TOML text cannot
/// contain, each NUL-separated `NAME=value` part is an environment variable, so the
/// environment layer is fuzzed too.
///
/// Panics only on a bug: a panic inside the loader, or an error with an empty message.
pub fn config_file(data: &[u8]) -> Result<Settings, ConfigError> {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let file = parts.next().unwrap_or_default();
    let env: Vec<(String, String)> = parts
        .map(|var| match var.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (var.to_string(), String::new()),
        })
        .collect();
    let result = Settings::from_toml(file, Path::new("fuzz.toml"), env);
    if let Err(e) = &result {
        assert!(
            !e.to_string().is_empty(),
            "an error without a message: {e:?}"
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of the fuzz target loads without a panic; `ok-*` seeds load, `err-*` seeds are
    /// refused. Crashes the fuzzer found are kept here as seeds, so they stay fixed on stable.
    #[test]
    fn fuzz_seeds_load_or_are_refused() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/config");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("the seed folder") {
            let path = entry.expect("a seed").path();
            let name = path
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .to_string();
            let data = std::fs::read(&path).expect("a readable seed");
            let result = config_file(&data);
            match name.split('-').next() {
                Some("ok") => assert!(result.is_ok(), "{name}: {:?}", result.err()),
                Some("err") => assert!(result.is_err(), "{name} loaded"),
                _ => panic!("{name}: seed names start with ok- or err-"),
            }
            seen += 1;
        }
        assert!(seen > 0, "no seeds in {}", dir.display());
    }
}
