//! `loopsmith gen-config`: the example config file, generated from the settings' types and
//! doc comments so it cannot drift from what the loader accepts.

use std::fmt::Write as _;

use toml::{Table, Value};

use crate::Settings;
use crate::keys::{self, KeyKind};
use crate::settings::PresetSettings;

const HEADER: &str = "\
# loopsmith configuration: every key, with its default value.
#
# Made by `loopsmith gen-config`. Every key is optional; delete what you do not change.
# Precedence: built-in defaults, then this file, then environment variables named
# LOOPSMITH_<SECTION>__<KEY>, e.g. LOOPSMITH_TELEGRAM__API_URL=http://127.0.0.1:8081
# (lists are comma-separated: LOOPSMITH_ADMINS__TELEGRAM=1234,5678).
# Secrets never go in this file: set TELEGRAM_BOT_TOKEN, DISCORD_TOKEN and FAL_KEY in the
# environment, or as NAME=value lines in the file named by engine.secrets_file.
";

const WIDTH: usize = 92;

/// The full example configuration, every key documented, with its default value.
pub fn example_config() -> String {
    let defaults = match Value::try_from(Settings::default()) {
        Ok(Value::Table(table)) => table,
        // Settings are plain data with string keys; serialising them cannot fail.
        _ => Table::new(),
    };
    let mut out = String::from(HEADER);
    for section in keys::sections() {
        out.push('\n');
        comment(&mut out, &section.description);
        let _ = writeln!(out, "[{}]", section.name);
        let values = defaults.get(&section.name).and_then(Value::as_table);
        let mut maps = Vec::new();
        for key in &section.keys {
            if let KeyKind::Map(_) = key.kind {
                maps.push(key);
                continue;
            }
            let value = values
                .and_then(|v| v.get(&key.name))
                .cloned()
                .unwrap_or(Value::Array(vec![]));
            out.push('\n');
            comment(&mut out, &key.description);
            let _ = writeln!(out, "{} = {}", key.name, value);
        }
        for key in maps {
            out.push('\n');
            comment(&mut out, &key.description);
            comment(&mut out, "For example:");
            let _ = writeln!(out, "# [{}.{}.neon]", section.name, key.name);
            for (field, value) in map_example() {
                let _ = writeln!(out, "# {field} = {value}");
            }
        }
    }
    out
}

/// A filled-in custom preset, shown commented out under `styles.custom`.
fn map_example() -> Table {
    let example = PresetSettings {
        prefix: "neon-lit, glowing outlines,".to_string(),
        suffix: "synthwave colours".to_string(),
        negative: "dull, washed out".to_string(),
        duration_secs: 0.0,
        fps: 0,
        aspect: String::new(),
        motion: 3,
        guidance: 0.0,
    };
    match Value::try_from(example) {
        Ok(Value::Table(table)) => table,
        _ => Table::new(),
    }
}

fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > WIDTH && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}
