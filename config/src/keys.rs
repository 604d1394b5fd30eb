//! The catalogue of every settings key, read from the settings' JSON schema so that the
//! example file, environment overrides and error messages can never disagree with the types.

use std::sync::OnceLock;

use schemars::Schema;
use serde_json::Value as Json;

use crate::Settings;

/// What values a key takes.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyKind {
    Text,
    /// A string from a fixed set.
    Choice(Vec<String>),
    Integer {
        min: Option<i64>,
    },
    Number,
    Bool,
    List(Box<KeyKind>),
    /// A table of named entries (e.g. `styles.custom.NAME`), each with these keys.
    Map(Vec<Key>),
}

impl KeyKind {
    /// What is allowed, in words, for error messages.
    pub fn allowed(&self) -> String {
        match self {
            KeyKind::Text => "a string".to_string(),
            KeyKind::Choice(values) => format!("one of {}", values.join(", ")),
            KeyKind::Integer { min: Some(0) } => "a whole number, 0 or more".to_string(),
            KeyKind::Integer { .. } => "a whole number".to_string(),
            KeyKind::Number => "a number".to_string(),
            KeyKind::Bool => "true or false".to_string(),
            KeyKind::List(item) => format!("a list, each item {}", item.allowed()),
            KeyKind::Map(keys) => format!(
                "a table of named entries, each with keys {}",
                keys.iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// One key of a section.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub description: String,
    pub kind: KeyKind,
}

/// One `[section]` of the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub name: String,
    pub description: String,
    pub keys: Vec<Key>,
}

impl Section {
    pub fn key(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name)
    }

    pub fn key_names(&self) -> String {
        self.keys
            .iter()
            .map(|k| k.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every section and key, in declaration order.
pub fn sections() -> &'static [Section] {
    static SECTIONS: OnceLock<Vec<Section>> = OnceLock::new();
    SECTIONS.get_or_init(|| {
        let schema = schemars::schema_for!(Settings);
        read_sections(&schema)
    })
}

pub fn section(name: &str) -> Option<&'static Section> {
    sections().iter().find(|s| s.name == name)
}

pub fn section_names() -> String {
    sections()
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_sections(schema: &Schema) -> Vec<Section> {
    let root = schema.as_value();
    let defs = root.get("$defs").cloned().unwrap_or(Json::Null);
    properties(root)
        .into_iter()
        .map(|(name, prop)| {
            let description = text(&prop, "description");
            let body = resolve(&prop, &defs);
            Section {
                name,
                description,
                keys: keys_of(&body, &defs),
            }
        })
        .collect()
}

fn keys_of(object: &Json, defs: &Json) -> Vec<Key> {
    properties(object)
        .into_iter()
        .map(|(name, prop)| Key {
            name,
            description: text(&prop, "description"),
            kind: kind_of(&prop, defs),
        })
        .collect()
}

fn kind_of(prop: &Json, defs: &Json) -> KeyKind {
    let body = resolve(prop, defs);
    if let Some(values) = body.get("enum").and_then(Json::as_array) {
        return KeyKind::Choice(
            values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        );
    }
    match body.get("type").and_then(Json::as_str) {
        Some("boolean") => KeyKind::Bool,
        Some("integer") => KeyKind::Integer {
            min: body.get("minimum").and_then(Json::as_i64),
        },
        Some("number") => KeyKind::Number,
        Some("array") => {
            let item = body.get("items").cloned().unwrap_or(Json::Null);
            KeyKind::List(Box::new(kind_of(&item, defs)))
        }
        Some("object") => {
            let entry = body
                .get("additionalProperties")
                .map(|e| resolve(e, defs))
                .unwrap_or(Json::Null);
            KeyKind::Map(keys_of(&entry, defs))
        }
        _ => KeyKind::Text,
    }
}

/// Follows a `$ref` into `$defs`, keeping the referring schema's own description.
fn resolve(prop: &Json, defs: &Json) -> Json {
    match prop.get("$ref").and_then(Json::as_str) {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            defs.get(name).cloned().unwrap_or(Json::Null)
        }
        None => prop.clone(),
    }
}

fn properties(object: &Json) -> Vec<(String, Json)> {
    object
        .get("properties")
        .and_then(Json::as_object)
        .map(|map| map.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn text(value: &Json, field: &str) -> String {
    value
        .get(field)
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_the_issue_names_is_there() {
        let names: Vec<_> = sections().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "engine", "storage", "local", "pika", "telegram", "discord", "control", "limits",
                "styles", "admins", "metrics"
            ]
        );
    }

    #[test]
    fn every_key_is_documented() {
        for section in sections() {
            assert!(!section.description.is_empty(), "[{}]", section.name);
            for key in &section.keys {
                assert!(
                    !key.description.is_empty(),
                    "{}.{} has no doc comment",
                    section.name,
                    key.name
                );
            }
        }
    }

    #[test]
    fn kinds_come_from_the_types() {
        let engine = section("engine").expect("engine section");
        assert_eq!(
            engine.key("backend_order").map(|k| &k.kind),
            Some(&KeyKind::List(Box::new(KeyKind::Choice(vec![
                "local".into(),
                "pika".into()
            ]))))
        );
        assert_eq!(
            engine.key("fallback").map(|k| &k.kind),
            Some(&KeyKind::Bool)
        );
        let local = section("local").expect("local section");
        assert_eq!(local.key("device").map(|k| &k.kind), Some(&KeyKind::Text));
        let styles = section("styles").expect("styles section");
        match &styles.key("custom").expect("styles.custom").kind {
            KeyKind::Map(keys) => assert!(keys.iter().any(|k| k.name == "prefix")),
            other => panic!("styles.custom should be a map, got {other:?}"),
        }
    }
}
