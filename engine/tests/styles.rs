//! The documented resolution order, layer by layer: request > user default > preset > global.

use loopsmith_config::{PresetSettings, StylesSettings};
use loopsmith_engine::protocol::{Aspect, Overrides, ParamDefaults, UserStyle};
use loopsmith_engine::style::StyleCatalog;

fn catalog() -> StyleCatalog {
    let mut settings = StylesSettings::default();
    settings.custom.insert(
        "slow".into(),
        PresetSettings {
            prefix: "slow motion,".into(),
            negative: "jitter".into(),
            duration_secs: 6.0,
            fps: 12,
            aspect: "4:5".into(),
            motion: 1,
            guidance: 5.0,
            ..PresetSettings::default()
        },
    );
    StyleCatalog::new(&settings).expect("catalog")
}

fn layer(duration: f32, fps: u32, aspect: Aspect, motion: u8, guidance: f32) -> ParamDefaults {
    ParamDefaults {
        negative_prompt: None,
        duration_secs: Some(duration),
        fps: Some(fps),
        aspect: Some(aspect),
        motion: Some(motion),
        guidance: Some(guidance),
    }
}

#[test]
fn each_layer_wins_over_the_ones_below_it() {
    let catalog = catalog();
    let none = Overrides::default();
    let plain = UserStyle::default();

    // Global defaults only (preset "none" sets nothing).
    let p = catalog.resolve("x", &none, &plain, 5).expect("resolves");
    assert_eq!(
        (p.duration_secs, p.fps, p.aspect, p.motion, p.guidance),
        (3.0, 24, Aspect::Square, 2, None)
    );
    assert_eq!((p.seed, p.style.as_str()), (5, "none"));

    // The preset beats the global defaults.
    let user_preset = UserStyle {
        preset: Some("slow".into()),
        ..UserStyle::default()
    };
    let p = catalog
        .resolve("x", &none, &user_preset, 5)
        .expect("resolves");
    assert_eq!(
        (p.duration_secs, p.fps, p.aspect, p.motion, p.guidance),
        (6.0, 12, Aspect::Portrait, 1, Some(5.0))
    );
    assert_eq!(p.style, "slow");

    // The user's defaults beat the preset.
    let user_defaults = UserStyle {
        preset: Some("slow".into()),
        defaults: layer(8.0, 16, Aspect::Tall, 3, 7.0),
        ..UserStyle::default()
    };
    let p = catalog
        .resolve("x", &none, &user_defaults, 5)
        .expect("resolves");
    assert_eq!(
        (p.duration_secs, p.fps, p.aspect, p.motion, p.guidance),
        (8.0, 16, Aspect::Tall, 3, Some(7.0))
    );

    // The request beats the user's defaults.
    let request = Overrides {
        params: layer(10.0, 30, Aspect::Wide, 4, 9.0),
        ..Overrides::default()
    };
    let p = catalog
        .resolve("x", &request, &user_defaults, 5)
        .expect("resolves");
    assert_eq!(
        (p.duration_secs, p.fps, p.aspect, p.motion, p.guidance),
        (10.0, 30, Aspect::Wide, 4, Some(9.0))
    );

    // Partial layers fall through field by field.
    let partial_request = Overrides {
        params: ParamDefaults {
            fps: Some(20),
            ..ParamDefaults::default()
        },
        ..Overrides::default()
    };
    let partial_user = UserStyle {
        preset: Some("slow".into()),
        defaults: ParamDefaults {
            motion: Some(0),
            ..ParamDefaults::default()
        },
        ..UserStyle::default()
    };
    let p = catalog
        .resolve("x", &partial_request, &partial_user, 5)
        .expect("resolves");
    assert_eq!(
        (p.fps, p.motion, p.duration_secs, p.aspect),
        (20, 0, 6.0, Aspect::Portrait)
    );
}

#[test]
fn the_preset_and_seed_follow_the_same_order() {
    let catalog = catalog();
    let user = UserStyle {
        preset: Some("anime".into()),
        seed_lock: Some(11),
        ..UserStyle::default()
    };
    let p = catalog
        .resolve("x", &Overrides::default(), &user, 5)
        .expect("resolves");
    assert_eq!((p.style.as_str(), p.seed), ("anime", 11));
    let request = Overrides {
        style: Some("pixel-art".into()),
        seed: Some(3),
        ..Overrides::default()
    };
    let p = catalog.resolve("x", &request, &user, 5).expect("resolves");
    assert_eq!((p.style.as_str(), p.seed, p.fps), ("pixel-art", 3, 12));
}

#[test]
fn prompts_and_negatives_are_composed_in_the_documented_order() {
    let catalog = catalog();
    let user = UserStyle {
        preset: Some("slow".into()),
        character: Some("  a  blue robot ".into()),
        suffix: Some("pastel".into()),
        defaults: ParamDefaults {
            negative_prompt: Some("text".into()),
            ..ParamDefaults::default()
        },
        ..UserStyle::default()
    };
    let p = catalog
        .resolve(" waves hello ", &Overrides::default(), &user, 5)
        .expect("resolves");
    assert_eq!(p.prompt, "a blue robot, slow motion, waves hello, pastel");
    assert_eq!(p.user_prompt, "waves hello");
    assert_eq!(p.negative_prompt, "text, jitter");
    let request = Overrides {
        params: ParamDefaults {
            negative_prompt: Some("blurry".into()),
            ..ParamDefaults::default()
        },
        ..Overrides::default()
    };
    let p = catalog
        .resolve("waves hello", &request, &user, 5)
        .expect("resolves");
    assert_eq!(
        p.negative_prompt, "blurry, jitter",
        "the request's negative replaces the user's"
    );
}

#[test]
fn built_in_presets_are_all_there_and_an_operator_can_replace_one() {
    let names = catalog().names().join(",");
    assert_eq!(
        names,
        "none,anime,pixel-art,claymation,watercolor,cinematic,sticker-outline,slow"
    );
    let mut settings = StylesSettings::default();
    settings.custom.insert(
        "anime".into(),
        PresetSettings {
            prefix: "house anime,".into(),
            motion: -1,
            ..PresetSettings::default()
        },
    );
    let catalog = StyleCatalog::new(&settings).expect("catalog");
    assert_eq!(
        catalog.get("anime").map(|p| p.prefix.as_str()),
        Some("house anime,")
    );
    assert_eq!(catalog.names().len(), 7);
}

#[test]
fn a_global_preset_that_does_not_exist_is_a_settings_error() {
    let settings = StylesSettings {
        preset: "vaporwave".into(),
        ..StylesSettings::default()
    };
    let err = StyleCatalog::new(&settings).expect_err("unknown preset");
    assert_eq!(
        err.to_string(),
        "invalid setting styles.preset: there is no preset called `vaporwave`; presets are: none, anime, pixel-art, claymation, watercolor, cinematic, sticker-outline"
    );
}
