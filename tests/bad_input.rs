//! The bad-input corpus (issue #11, part 4): hundreds of hostile or broken inputs — prompts
//! with options, commands, unicode tricks, markup, huge and empty text, pictures that are not
//! what they claim, and broken config files — each run through the same code a user's input
//! takes. Every case must end in a clear answer (or be accepted where it is fine), and none may
//! panic. The test prints the tally: `cargo xtask test -- --nocapture bad_input`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use loopsmith_bot::command::{self, Read, input};
use loopsmith_config::{Settings, StylesSettings};
use loopsmith_engine::error_chain;
use loopsmith_engine::image_input;
use loopsmith_engine::protocol::UserStyle;
use loopsmith_engine::style::StyleCatalog;

#[path = "bad_input/corpus.rs"]
mod corpus;
#[path = "common/media.rs"]
mod media;

use corpus::{Case, Expect, Kind};

/// What one case came to.
#[derive(Debug)]
enum Outcome {
    Accepted,
    Refused(String),
}

/// A chat answer is clear when it is one short sentence or two, in words, with nothing of the
/// program's insides (no debug braces, type names or backtraces).
fn clear_chat_answer(text: &str) -> Result<(), String> {
    let problems = [
        (text.trim().is_empty(), "empty"),
        (text.chars().count() > 300, "longer than 300 characters"),
        (text.contains('\n'), "more than one line"),
        (
            // A usage line may end in its example ("Tell me what to make: /sticker a cat").
            !text.ends_with(['.', '?', '!']) && !text.contains(": /"),
            "does not end a sentence",
        ),
        (
            // Answers about an option start with its name ("-fps needs a value, like …").
            !text
                .chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || c == '-'),
            "does not start a sentence",
        ),
        (
            ["Error(", "Err(", "Some(", "panicked", "::", "{ "]
                .iter()
                .any(|s| text.contains(s)),
            "shows the program's insides",
        ),
    ];
    match problems.iter().find(|(bad, _)| *bad) {
        Some((_, why)) => Err(format!("{why}: {text:?}")),
        None => Ok(()),
    }
}

/// A config error is clear when it names the file and stays a readable size.
fn clear_config_answer(text: &str, file: &str) -> Result<(), String> {
    if !text.contains(file) {
        return Err(format!("does not name the file: {text:?}"));
    }
    if text.len() > 2000 || text.contains("panicked") {
        return Err(format!("unreadable: {text:?}"));
    }
    Ok(())
}

fn run_case(case: &Case, dir: &std::path::Path, catalog: &StyleCatalog) -> Outcome {
    match &case.kind {
        Kind::Prompt(text) => match command::parse(text) {
            Err(e) => Outcome::Refused(e.to_string()),
            // What the engine does with it next (the same checks `submit` makes).
            Ok(parsed) => {
                match catalog.resolve(&parsed.prompt, &parsed.overrides, &UserStyle::default(), 7) {
                    Ok(_) => Outcome::Accepted,
                    Err(e) => Outcome::Refused(e.to_string()),
                }
            }
        },
        Kind::Command(text) => match input::read(text, "loopsmith_bot") {
            None | Some(Read::ForAnotherBot) => Outcome::Accepted,
            Some(Read::Command(command::Command::Unknown(name))) => {
                Outcome::Refused(command::texts::unknown_command(&name))
            }
            Some(Read::Command(command::Command::Sticker(args))) if args.trim().is_empty() => {
                Outcome::Refused(command::texts::sticker_usage())
            }
            Some(Read::Command(command::Command::Sticker(args))) => match command::parse(&args) {
                Ok(_) => Outcome::Accepted,
                Err(e) => Outcome::Refused(e.to_string()),
            },
            Some(Read::Command(_)) => Outcome::Accepted,
        },
        Kind::Picture(bytes) => match image_input::inspect(bytes.clone()) {
            Ok(_) => Outcome::Accepted,
            Err(e) => Outcome::Refused(e.to_string()),
        },
        Kind::Config(bytes) => {
            let path = dir.join(format!("{}.toml", case.name.replace(['/', ' '], "_")));
            std::fs::write(&path, bytes).expect("write the config case");
            match Settings::load(Some(&path), Vec::<(String, String)>::new()) {
                // What `serve` checks next, before anything starts: the style presets.
                Ok(settings) => match StyleCatalog::new(&settings.styles) {
                    Ok(_) => Outcome::Accepted,
                    Err(e) => Outcome::Refused(format!("{}: {}", path.display(), error_chain(&e))),
                },
                Err(e) => Outcome::Refused(error_chain(&e)),
            }
        }
    }
}

#[test]
fn every_bad_input_gets_a_clear_answer_and_nothing_panics() {
    let cases = corpus::all();
    assert!(cases.len() >= 300, "the corpus has {} cases", cases.len());
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = StyleCatalog::new(&StylesSettings::default()).expect("the built-in styles");
    // Panics are caught per case and counted; the default hook would print each one.
    std::panic::set_hook(Box::new(|_| {}));

    let (mut accepted, mut refused, mut panics) = (0, 0, Vec::new());
    let mut failures = Vec::new();
    let mut by_kind: std::collections::BTreeMap<&str, usize> = Default::default();
    for case in &cases {
        *by_kind.entry(case.kind.name()).or_default() += 1;
        let outcome = match catch_unwind(AssertUnwindSafe(|| run_case(case, dir.path(), &catalog)))
        {
            Ok(outcome) => outcome,
            Err(_) => {
                panics.push(case.name.clone());
                continue;
            }
        };
        let clear = |why: &str| match &case.kind {
            Kind::Config(_) => clear_config_answer(why, ".toml"),
            _ => clear_chat_answer(why),
        };
        let verdict = match (&case.expect, &outcome) {
            (Expect::Accepted | Expect::Either, Outcome::Accepted) => Ok(()),
            (Expect::Accepted, Outcome::Refused(why)) => Err(format!("refused: {why}")),
            (Expect::Refused(_), Outcome::Accepted) => Err("accepted".to_string()),
            (Expect::Either, Outcome::Refused(why)) => clear(why),
            (Expect::Refused(want), Outcome::Refused(why)) => {
                clear(why).and_then(|()| match want {
                    Some(want) if !why.contains(want.as_str()) => {
                        Err(format!("answer {why:?} does not say {want:?}"))
                    }
                    _ => Ok(()),
                })
            }
        };
        match (&outcome, verdict) {
            (_, Err(why)) => failures.push(format!("{}: {why}", case.name)),
            (Outcome::Accepted, Ok(())) => accepted += 1,
            (Outcome::Refused(_), Ok(())) => refused += 1,
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "bad-input corpus: {} cases ({by_kind:?}); {refused} refused with a clear answer, {accepted} accepted as fine, {} unclear or wrong, {} panics",
        cases.len(),
        failures.len(),
        panics.len()
    );
    assert!(panics.is_empty(), "panicked on: {panics:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
