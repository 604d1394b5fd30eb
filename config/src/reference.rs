//! The configuration reference for README, generated from the same schema as everything else
//! so that it cannot drift from the code (a test compares README's copy with this).

use std::fmt::Write as _;

use crate::Settings;
use crate::keys::{KeyKind, sections};

/// Markdown: one table per section with each key's default, environment variable and meaning.
pub fn reference_markdown() -> String {
    let defaults = toml::Value::try_from(Settings::default()).ok();
    let mut out = String::new();
    for section in sections() {
        let _ = writeln!(out, "#### `[{}]` — {}\n", section.name, section.description);
        let _ = writeln!(out, "| key | default | environment variable | meaning |");
        let _ = writeln!(out, "| --- | --- | --- | --- |");
        for key in &section.keys {
            let default = defaults
                .as_ref()
                .and_then(|d| d.get(&section.name)?.get(&key.name))
                .map_or_else(|| "—".to_string(), shown);
            let env = match key.kind {
                KeyKind::Map(_) => "—".to_string(),
                _ => format!(
                    "`{}{}__{}`",
                    crate::ENV_PREFIX,
                    section.name.to_uppercase(),
                    key.name.to_uppercase()
                ),
            };
            let _ = writeln!(
                out,
                "| `{}` | {default} | {env} | {} ({}) |",
                key.name,
                key.description.replace('|', "\\|"),
                key.kind.allowed().replace('|', "\\|")
            );
        }
        out.push('\n');
    }
    out
}

fn shown(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(t) if t.is_empty() => "—".to_string(),
        toml::Value::Array(a) if a.is_empty() => "`[]`".to_string(),
        other => format!("`{}`", other.to_string().replace('|', "\\|")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_appears_once_with_its_default_and_variable() {
        let text = reference_markdown();
        assert!(text.contains("#### `[telegram]`"), "{text}");
        assert!(
            text.contains(
                "| `api_url` | `\"https://api.telegram.org\"` | `LOOPSMITH_TELEGRAM__API_URL` |"
            ),
            "{text}"
        );
        assert!(text.contains("| `workers` | `1` | `LOOPSMITH_ENGINE__WORKERS` |"));
        let rows = text.lines().filter(|l| l.starts_with("| `")).count();
        let keys: usize = sections().iter().map(|s| s.keys.len()).sum();
        assert_eq!(rows, keys);
    }
}
