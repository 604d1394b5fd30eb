//! The slash commands the bot registers, and reading an invocation's typed options back
//! into the shared layer's terms.

use loopsmith_engine::protocol::Aspect;
use loopsmith_engine::request;
use serenity::all::{
    Attachment, CommandData, CommandOptionType, CreateCommand, CreateCommandOption, ResolvedValue,
};

use crate::command::texts;

/// Longest prompt Discord lets a user type into the option (the engine checks its own limit).
const PROMPT_MAX: u16 = 500;

/// The command list, registered on READY.
pub fn all() -> Vec<CreateCommand> {
    let text =
        |name: &str, what: &str| CreateCommandOption::new(CommandOptionType::String, name, what);
    let describe = |name: &str| {
        texts::COMMANDS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(name.to_string(), |(_, what)| what.to_string())
    };
    let aspect = Aspect::ALL
        .into_iter()
        .fold(text("aspect", "frame shape"), |option, ratio| {
            option.add_string_choice(ratio.to_string(), ratio.to_string())
        });
    let sticker = CreateCommand::new("sticker")
        .description("make a looping video sticker from a description")
        .add_option(
            text("prompt", "what to make, with -options if you like")
                .required(true)
                .max_length(PROMPT_MAX),
        )
        .add_option(text("style", "a style preset").set_autocomplete(true))
        .add_option(
            CreateCommandOption::new(CommandOptionType::Integer, "duration", "seconds")
                .min_int_value(request::DURATION_SECS.0 as u64)
                .max_int_value(request::DURATION_SECS.1 as u64),
        )
        .add_option(aspect)
        .add_option(
            CreateCommandOption::new(
                CommandOptionType::Integer,
                "motion",
                "0 (still) to 4 (lively)",
            )
            .min_int_value(0)
            .max_int_value(u64::from(request::MAX_MOTION)),
        )
        .add_option(
            CreateCommandOption::new(
                CommandOptionType::Integer,
                "seed",
                "the same seed makes the same clip",
            )
            .min_int_value(0)
            .max_int_value(u64::from(u32::MAX)),
        )
        .add_option(text("negative", "what to keep out of the picture").max_length(PROMPT_MAX));
    let animate = CreateCommand::new("animate")
        .description("bring a picture to life")
        .add_option(
            CreateCommandOption::new(CommandOptionType::Attachment, "image", "PNG, JPEG or WebP")
                .required(true),
        )
        .add_option(
            text("prompt", "how it should move")
                .required(true)
                .max_length(PROMPT_MAX),
        );
    let seed = CreateCommand::new("seed")
        .description(describe("seed"))
        .add_option(
            text("action", "lock or unlock")
                .add_string_choice("lock", "lock")
                .add_string_choice("unlock", "unlock"),
        )
        .add_option(
            CreateCommandOption::new(CommandOptionType::Integer, "value", "the seed to lock to")
                .min_int_value(0)
                .max_int_value(u64::from(u32::MAX)),
        );
    vec![
        sticker,
        animate,
        CreateCommand::new("style")
            .description(describe("style"))
            .add_option(text("name", "a style, or none").set_autocomplete(true)),
        CreateCommand::new("styles").description(describe("styles")),
        CreateCommand::new("suffix")
            .description(describe("suffix"))
            .add_option(text("text", "the words, or off").max_length(200)),
        CreateCommand::new("character")
            .description(describe("character"))
            .add_option(text("text", "the subject, or off").max_length(200)),
        seed,
        CreateCommand::new("settings").description(describe("settings")),
        CreateCommand::new("history").description(describe("history")),
        CreateCommand::new("cancel").description(describe("cancel")),
        CreateCommand::new("help").description(describe("help")),
        CreateCommand::new("stats").description(describe("stats")),
        CreateCommand::new("budget").description(describe("budget")),
    ]
}

/// One typed option's value.
#[derive(Debug, Clone)]
pub enum Value {
    Text(String),
    Integer(i64),
    Attachment(Box<Attachment>),
}

/// An invocation's options by name.
#[derive(Debug, Clone, Default)]
pub struct Options(Vec<(String, Value)>);

impl Options {
    pub fn read(data: &CommandData) -> Options {
        Options(
            data.options()
                .into_iter()
                .filter_map(|o| {
                    let value = match o.value {
                        ResolvedValue::String(s) => Value::Text(s.to_string()),
                        ResolvedValue::Autocomplete { value, .. } => Value::Text(value.to_string()),
                        ResolvedValue::Integer(i) => Value::Integer(i),
                        ResolvedValue::Attachment(a) => Value::Attachment(Box::new(a.clone())),
                        _ => return None,
                    };
                    Some((o.name.to_string(), value))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A text option, or an integer one as text; empty when absent.
    pub fn text(&self, name: &str) -> String {
        match self.get(name) {
            Some(Value::Text(s)) => s.clone(),
            Some(Value::Integer(i)) => i.to_string(),
            _ => String::new(),
        }
    }

    pub fn attachment(&self, name: &str) -> Option<&Attachment> {
        match self.get(name) {
            Some(Value::Attachment(a)) => Some(a),
            _ => None,
        }
    }

    /// /sticker's typed options as the shared parser's (option, value) pairs.
    pub fn sticker_extras(&self) -> Vec<(&'static str, String)> {
        [
            ("style", "-style"),
            ("duration", "-duration"),
            ("aspect", "-ar"),
            ("motion", "-motion"),
            ("seed", "-seed"),
            ("negative", "-neg"),
        ]
        .into_iter()
        .filter_map(|(name, option)| {
            let value = self.text(name);
            (!value.trim().is_empty()).then_some((option, value))
        })
        .collect()
    }

    /// /seed's options as the argument the shared layer reads ("lock 42", "unlock", …).
    pub fn seed_argument(&self) -> String {
        let action = self.text("action");
        let value = self.text("value");
        match (action.as_str(), value.is_empty()) {
            ("", true) => String::new(),
            ("", false) => format!("lock {value}"),
            (action, _) => format!("{action} {value}").trim().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, Value)]) -> Options {
        Options(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn typed_options_become_parser_options() {
        let o = options(&[
            ("prompt", Value::Text("a fox".into())),
            ("seed", Value::Integer(42)),
            ("aspect", Value::Text("9:16".into())),
            ("negative", Value::Text("  ".into())),
        ]);
        assert_eq!(
            o.sticker_extras(),
            vec![("-ar", "9:16".to_string()), ("-seed", "42".to_string())]
        );
        assert_eq!(o.text("missing"), "");
    }

    #[test]
    fn seed_options_read_as_the_shared_argument() {
        assert_eq!(options(&[]).seed_argument(), "");
        assert_eq!(
            options(&[("value", Value::Integer(7))]).seed_argument(),
            "lock 7"
        );
        assert_eq!(
            options(&[("action", Value::Text("unlock".into()))]).seed_argument(),
            "unlock"
        );
        assert_eq!(
            options(&[
                ("action", Value::Text("lock".into())),
                ("value", Value::Integer(9))
            ])
            .seed_argument(),
            "lock 9"
        );
    }

    #[test]
    fn the_command_list_fits_discord() {
        let list = all();
        let json = serde_json::to_value(&list).expect("serializes");
        let names: Vec<&str> = json
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert!(names.contains(&"sticker") && names.contains(&"animate"));
        for command in json.as_array().into_iter().flatten() {
            let description = command["description"].as_str().unwrap_or_default();
            assert!(
                (1..=100).contains(&description.chars().count()),
                "{command}"
            );
            assert!(command["options"].as_array().map_or(0, Vec::len) <= 25);
        }
    }
}
