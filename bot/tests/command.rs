//! The shared command layer: prompts with options, refusals, and every text the bots send.

use std::time::Duration;

use loopsmith_bot::command::{parse, texts};
use loopsmith_engine::protocol::{Aspect, Fit, JobState, Timing};

#[test]
fn options_anywhere_after_words_become_overrides() {
    let p = parse("a red fox running -ar 9:16 -motion 3 -fps 24 -seed 42 -neg \"blurry, text\" -style Pixel-Art -duration 5 -gs 7.5 -fit crop -speedup")
        .expect("parses");
    assert_eq!(p.prompt, "a red fox running");
    let o = &p.overrides;
    assert_eq!(o.params.aspect, Some(Aspect::Tall));
    assert_eq!(o.params.motion, Some(3));
    assert_eq!(o.params.fps, Some(24));
    assert_eq!(o.seed, Some(42));
    assert_eq!(o.params.negative_prompt.as_deref(), Some("blurry, text"));
    assert_eq!(o.style.as_deref(), Some("pixel-art"));
    assert_eq!(o.params.duration_secs, Some(5.0));
    assert_eq!(o.params.guidance, Some(7.5));
    assert_eq!(o.fit, Some(Fit::Crop));
    assert_eq!(o.timing, Some(Timing::SpeedUp));
}

#[test]
fn phrases_quotes_and_dashes_in_text() {
    let p = parse("a cat -neg text, watermark -seed 7 waving").expect("parses");
    assert_eq!(
        p.overrides.params.negative_prompt.as_deref(),
        Some("text, watermark")
    );
    assert_eq!(
        p.prompt, "a cat waving",
        "words after a one-word option's value are prompt again"
    );
    let p = parse("“-ar is just words” on a sign -ar 1:1").expect("parses");
    assert_eq!(p.prompt, "-ar is just words on a sign");
    let p = parse("it is -5°C and a well-known cat -- waves").expect("parses");
    assert_eq!(p.prompt, "it is -5°C and a well-known cat -- waves");
    let p = parse("a dog --seed 3 --AR 16:9").expect("double dashes and any case");
    assert_eq!(
        (p.overrides.seed, p.overrides.params.aspect),
        (Some(3), Some(Aspect::Wide))
    );
}

#[test]
fn every_mistake_gets_one_clear_sentence() {
    let cases = [
        (
            "a cat -colour red",
            "I don't know the option -colour; the options are -ar, -motion, -fps, -duration, -seed, -neg, -style, -gs, -fit.",
        ),
        ("a cat -fps", "-fps needs a value, like -fps 24."),
        (
            "a cat -seed 1 -seed 2",
            "You gave -seed twice; give it once.",
        ),
        (
            "a cat -fps fast",
            "-fps must be a number; \"fast\" isn't one.",
        ),
        (
            "a cat -fps 60",
            "Frame rate must be between 8 and 30 fps; you asked for 60.",
        ),
        (
            "a cat -ar 7:3",
            "Aspect ratio must be one of 1:1, 16:9, 9:16, 4:5, 5:4, 3:2 or 2:3; you asked for 7:3.",
        ),
        (
            "a cat -motion 9",
            "Motion must be between 0 and 4; you asked for 9.",
        ),
        (
            "a cat -duration 12",
            "Duration must be between 3 and 10 seconds; you asked for 12.",
        ),
        (
            "a cat -gs 50",
            "Guidance must be between 0 and 20; you asked for 50.",
        ),
        (
            "a cat -seed -4",
            "Seed must be a whole number from 0 to 4294967295; you gave -4.",
        ),
        ("a cat -neg", "-neg needs a value, like -neg blurry, text."),
        (
            "a cat -fit stretch",
            "-fit must be pad or crop; you gave \"stretch\".",
        ),
        (
            "a cat \"never closed",
            "A quote is opened but never closed.",
        ),
        (
            "-ar 1:1 -seed 3",
            "Please describe the sticker you want; the prompt is empty.",
        ),
        (
            "",
            "Please describe the sticker you want; the prompt is empty.",
        ),
    ];
    for (input, expected) in cases {
        let err = parse(input).expect_err(input);
        assert_eq!(err.to_string(), expected, "for {input:?}");
    }
}

#[test]
fn texts() {
    let mut all = String::new();
    all.push_str(&format!("queued 1: {}\n", texts::queued(Some(1))));
    all.push_str(&format!("queued 4: {}\n", texts::queued(Some(4))));
    let eta = Some(Duration::from_secs(75));
    let states = [
        (JobState::Queued, Some(3)),
        (
            JobState::Running {
                backend: "local".into(),
                progress: 0.37,
            },
            None,
        ),
        (
            JobState::Encoding {
                backend: "local".into(),
            },
            None,
        ),
        (JobState::Done { artifacts: vec![] }, None),
    ];
    for (state, position) in &states {
        all.push_str(&format!(
            "progress {}: {}\n",
            state.name(),
            texts::progress(state, *position, eta)
        ));
    }
    all.push_str(&format!(
        "failed retryable: {}\n",
        texts::failed("Rendering failed on our side.", true)
    ));
    all.push_str(&format!(
        "failed final: {}\n",
        texts::failed("That prompt isn't allowed here.", false)
    ));
    for secs in [0, 12, 60, 61, 3725] {
        all.push_str(&format!(
            "human {secs}: {}\n",
            texts::human(Duration::from_secs(secs))
        ));
    }
    all.push_str(&format!(
        "\nhelp:\n{}\n",
        texts::help(&["none", "anime", "pixel-art"])
    ));
    insta::assert_snapshot!(all);
}

/// Every other text the bots send, from commands, buttons, packs and admin tools.
#[test]
fn command_and_button_texts() {
    use loopsmith_bot::command::texts::{PackProblem, TextSetting};
    let styles = ["none", "anime"];
    let mut lines: Vec<(String, String)> = vec![
        ("start".into(), texts::start("Ann", &styles)),
        ("delivered".into(), texts::delivered()),
        ("undelivered".into(), texts::undelivered()),
        ("cancelled".into(), texts::cancelled()),
        (
            "styles".into(),
            texts::styles(
                &[("none", ""), ("anime", "anime style, … cel shading")],
                Some("anime"),
            ),
        ),
        ("style none".into(), texts::style_current(None)),
        ("style anime".into(), texts::style_current(Some("anime"))),
        ("style set".into(), texts::style_set(Some("anime"))),
        ("style cleared".into(), texts::style_set(None)),
        ("seed usage".into(), texts::seed_usage(Some(42))),
        ("seed usage unlocked".into(), texts::seed_usage(None)),
        ("seed locked".into(), texts::seed_locked(42)),
        ("seed unlocked".into(), texts::seed_unlocked()),
        ("seed nothing".into(), texts::seed_nothing_to_lock()),
        (
            "settings".into(),
            texts::settings(&[("Style", "anime".into()), ("Aspect", "default".into())]),
        ),
        (
            "setting changed".into(),
            texts::setting_changed("Aspect", "9:16"),
        ),
        (
            "history".into(),
            texts::history(&[(3, "a red ball".into()), (2, "x".repeat(80))]),
        ),
        ("history empty".into(), texts::history(&[])),
        ("nothing to cancel".into(), texts::nothing_to_cancel()),
        ("cancelling".into(), texts::cancelling(12)),
        (
            "pack link".into(),
            texts::pack_link(Some("https://t.me/addstickers/u1_by_b")),
        ),
        ("pack none".into(), texts::pack_link(None)),
        (
            "pack created".into(),
            texts::pack_created("https://t.me/addstickers/u1_by_b"),
        ),
        (
            "pack added".into(),
            texts::pack_added("https://t.me/addstickers/u1_by_b"),
        ),
        ("gone".into(), texts::gone()),
        ("not yours".into(), texts::not_yours()),
        ("button expired".into(), texts::button_expired()),
        ("not allowed".into(), texts::not_allowed_here()),
        ("admins only".into(), texts::admins_only()),
        (
            "unknown command".into(),
            texts::unknown_command("frobnicate"),
        ),
        ("sticker usage".into(), texts::sticker_usage()),
        (
            "picture without caption".into(),
            texts::picture_needs_caption(),
        ),
        ("picture unreachable".into(), texts::picture_unreachable()),
        ("not text".into(), texts::not_text()),
        ("inline button".into(), texts::inline_button()),
        (
            "stats".into(),
            texts::stats(2, "Ready", &[("done", 5), ("failed", 1)]),
        ),
        ("stats empty".into(), texts::stats(0, "Ready", &[])),
        ("ban usage".into(), texts::ban_usage("ban")),
        ("banned".into(), texts::banned("99", true)),
        ("unbanned".into(), texts::banned("99", false)),
        ("budget".into(), texts::budget_unavailable()),
        ("budget spent".into(), texts::budget(0.6, 0.2, 5.0)),
        ("full clip".into(), texts::full_clip_caption(5.0)),
    ];
    for which in [TextSetting::Suffix, TextSetting::Character] {
        lines.push((format!("{which:?} none"), texts::text_setting(which, None)));
        lines.push((
            format!("{which:?} some"),
            texts::text_setting(which, Some("pastel")),
        ));
        lines.push((
            format!("{which:?} set"),
            texts::text_setting_set(which, Some("pastel")),
        ));
        lines.push((
            format!("{which:?} cleared"),
            texts::text_setting_set(which, None),
        ));
    }
    for problem in [
        PackProblem::Full(120),
        PackProblem::NameTaken,
        PackProblem::StickerRejected,
        PackProblem::NeedsPrivateChat,
        PackProblem::Gone,
        PackProblem::Other,
    ] {
        lines.push((format!("pack {problem:?}"), texts::pack_problem(problem)));
    }
    let all: Vec<String> = lines
        .into_iter()
        .map(|(name, text)| format!("{name}:\n{text}\n"))
        .collect();
    insta::assert_snapshot!(all.join("\n"));
}

/// The texts only the Discord bot sends; the rest are shared with Telegram above.
#[test]
fn discord_texts() {
    use loopsmith_bot::command::texts::{PictureProblem, ServerStickerProblem};
    let mut lines: Vec<(String, String)> = vec![
        ("delivered".into(), texts::discord_delivered()),
        (
            "caption".into(),
            texts::clip_caption("a red ball bouncing", 42),
        ),
        ("too big".into(), texts::clip_too_big(10 * 1024 * 1024)),
        ("added".into(), texts::server_sticker_added("a red ball")),
    ];
    for problem in [
        ServerStickerProblem::NotInServer,
        ServerStickerProblem::MemberLacksPermission,
        ServerStickerProblem::BotLacksPermission,
        ServerStickerProblem::SlotsFull,
        ServerStickerProblem::TooBig,
        ServerStickerProblem::Gone,
        ServerStickerProblem::Other,
    ] {
        lines.push((
            format!("sticker {problem:?}"),
            texts::server_sticker_problem(problem),
        ));
    }
    for problem in [
        PictureProblem::NotAPicture(Some("application/pdf".into())),
        PictureProblem::NotAPicture(None),
        PictureProblem::TooLarge {
            bytes: 9 * 1024 * 1024,
            max: 8 * 1024 * 1024,
        },
        PictureProblem::BadSize {
            width: 20,
            height: 5000,
        },
    ] {
        lines.push((
            format!("picture {problem:?}"),
            texts::picture_problem(&problem),
        ));
    }
    let buttons: Vec<String> = loopsmith_bot::command::actions::discord_sticker_buttons(
        loopsmith_engine::protocol::JobId(7),
    )
    .concat()
    .into_iter()
    .map(|(label, action)| format!("{label} = {}", action.encode()))
    .collect();
    lines.push(("buttons".into(), buttons.join("\n")));
    let all: Vec<String> = lines
        .into_iter()
        .map(|(name, text)| format!("{name}:\n{text}\n"))
        .collect();
    insta::assert_snapshot!(all.join("\n"));
}
