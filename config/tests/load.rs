//! The loader against fixture files and environments: what loads, and what each mistake says.

use std::path::{Path, PathBuf};

use loopsmith_config::{BackendName, ConfigError, Device, Origin, Settings, example_config};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Error text with the machine-specific fixture folder replaced, for snapshots.
fn message(err: &ConfigError) -> String {
    err.to_string()
        .replace(&fixture("").display().to_string(), "<fixtures>/")
}

#[test]
fn no_file_and_no_environment_gives_the_defaults() {
    let settings = Settings::load(None, []).expect("defaults load");
    assert_eq!(settings, Settings::default());
    assert_eq!(settings.local.model, "embedded");
    assert_eq!(settings.pika.base_url, "https://queue.fal.run");
    assert!(!settings.pika.enabled && !settings.telegram.enabled && !settings.discord.enabled);
}

#[test]
fn valid_fixtures_load() {
    let empty = Settings::load(Some(&fixture("valid/empty.toml")), []).expect("empty loads");
    assert_eq!(empty, Settings::default());

    let s = Settings::load(Some(&fixture("valid/community.toml")), []).expect("community loads");
    assert_eq!(s.engine.workers, 2);
    assert_eq!(s.local.device, Device::Cuda(1));
    assert_eq!(s.storage.data_dir, PathBuf::from("/var/lib/loopsmith"));
    assert_eq!(s.telegram.api_url, "http://127.0.0.1:8081");
    assert_eq!(s.telegram.allowed_chats, vec![-1001234567890, 42]);
    assert_eq!(
        s.styles.duration_secs, 5.0,
        "an integer is accepted for a float key"
    );
    assert_eq!(s.styles.custom["neon"].motion, 3);
    assert_eq!(s.admins.telegram, vec![1234, 5678]);
    // Keys the file leaves out keep their defaults.
    assert_eq!(s.discord, Settings::default().discord);
    assert_eq!(s.limits.burst, Settings::default().limits.burst);
}

#[test]
fn environment_overrides_the_file_and_lists_are_comma_separated() {
    let vars = env(&[
        ("LOOPSMITH_TELEGRAM__API_URL", "http://127.0.0.1:9999"),
        ("LOOPSMITH_ENGINE__BACKEND_ORDER", "pika, local"),
        ("LOOPSMITH_ADMINS__DISCORD", "1,2,3"),
        ("LOOPSMITH_PIKA__ENABLED", "false"),
        ("LOOPSMITH_STORAGE__DATA_DIR", "/tmp/ls"),
        ("LOOPSMITH_LOCAL__DEVICE", "cpu"),
        ("LOOPSMITH_PIKA__MEDIA_HOSTS", "127.0.0.1,v3.fal.media"),
        // Not settings: read by the binary itself, or belonging to someone else.
        ("LOOPSMITH_CONFIG", "/etc/loopsmith.toml"),
        ("LOOPSMITH_LOG", "debug"),
        ("PATH", "/usr/bin"),
    ]);
    let s = Settings::load(Some(&fixture("valid/community.toml")), vars).expect("loads");
    assert_eq!(s.telegram.api_url, "http://127.0.0.1:9999");
    assert_eq!(
        s.engine.backend_order,
        vec![BackendName::Pika, BackendName::Local]
    );
    assert_eq!(s.admins.discord, vec![1, 2, 3]);
    assert!(!s.pika.enabled);
    assert_eq!(s.storage.data_dir, PathBuf::from("/tmp/ls"));
    assert_eq!(s.local.device, Device::Cpu);
    assert_eq!(s.pika.media_hosts, vec!["127.0.0.1", "v3.fal.media"]);
    assert_eq!(
        s.engine.workers, 2,
        "file values the environment leaves alone stay"
    );
    let cleared = Settings::load(None, env(&[("LOOPSMITH_ADMINS__TELEGRAM", "")])).expect("loads");
    assert!(cleared.admins.telegram.is_empty());
}

#[test]
fn every_invalid_fixture_names_the_key_the_file_and_what_is_allowed() {
    let cases: &[(&str, &[&str])] = &[
        (
            "unknown_key",
            &[
                "unknown key `storage.data_dr`",
                "data_dir, keep_artifacts_days",
            ],
        ),
        (
            "metrics_public",
            &[
                "`metrics.listen`",
                "0.0.0.0:9464 is not a loopback address",
                "127.0.0.1:9464",
            ],
        ),
        (
            "unknown_section",
            &["unknown section `[slack]`", "engine, storage, local"],
        ),
        (
            "bad_device",
            &[
                "`local.device`",
                "`gpu` is not a device",
                "auto, cpu or cuda:N",
            ],
        ),
        (
            "wrong_type",
            &[
                "`engine.workers`",
                "invalid type: string \"two\"",
                "a whole number",
            ],
        ),
        (
            "secret_in_file",
            &[
                "`telegram.token`",
                "looks like a secret",
                "TELEGRAM_BOT_TOKEN",
            ],
        ),
        ("syntax", &["is not valid TOML", "line 1"]),
        (
            "fps_out_of_range",
            &["`styles.fps`", "60 is out of range", "8 to 30"],
        ),
        (
            "bad_choice",
            &["`engine.backend_order", "runway", "one of local, pika"],
        ),
        (
            "preset_unknown_field",
            &["unknown key `styles.custom.neon.colour`", "prefix, suffix"],
        ),
        (
            "http_webhook",
            &["`telegram.webhook_url`", "only posts to https"],
        ),
        (
            "section_as_value",
            &["`local` must be a section", "keys enabled, model"],
        ),
        ("bad_aspect", &["`styles.aspect`", "`7:3`", "1:1, 16:9"]),
        (
            "unverified_interactions",
            &[
                "`discord.interactions_listen`",
                "discord.public_key",
                "64 hex characters",
            ],
        ),
    ];
    let mut all = String::new();
    for (name, expected) in cases {
        let path = fixture(&format!("invalid/{name}.toml"));
        let err = Settings::load(Some(&path), []).expect_err(name);
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()),
            "{name}: the message must name the file: {msg}"
        );
        for part in *expected {
            assert!(msg.contains(part), "{name}: expected `{part}` in: {msg}");
        }
        assert!(
            !msg.contains("AAAAAAAAAAAA"),
            "{name}: never echo a secret: {msg}"
        );
        all.push_str(&format!("{name}: {}\n", message(&err)));
    }
    // Every fixture in the folder is covered by a case above.
    let on_disk = std::fs::read_dir(fixture("invalid"))
        .expect("fixtures")
        .count();
    assert_eq!(on_disk, cases.len());
    insta::assert_snapshot!(all);
}

#[test]
fn environment_errors_name_the_variable() {
    /// (environment, parts the message must contain)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case<'_>] = &[
        (
            &[("LOOPSMITH_LIMITS__BURST", "lots")],
            &[
                "LOOPSMITH_LIMITS__BURST",
                "`lots` is not a whole number",
                "a whole number",
            ],
        ),
        (
            &[("LOOPSMITH_TELEGRAM__ENABLED", "maybe")],
            &["LOOPSMITH_TELEGRAM__ENABLED", "true or false"],
        ),
        (
            &[("LOOPSMITH_TELEGRAM__APIURL", "x")],
            &["unknown key `telegram.apiurl`", "api_url"],
        ),
        (
            &[("LOOPSMITH_TELEGRAM_API_URL", "x")],
            &[
                "LOOPSMITH_TELEGRAM_API_URL does not name a setting",
                "LOOPSMITH_<SECTION>__<KEY>",
            ],
        ),
        (
            &[("LOOPSMITH_SLACK__TOKEN", "x")],
            &[
                "unknown section `[slack]`",
                "environment variable LOOPSMITH_SLACK__TOKEN",
            ],
        ),
        (
            &[("LOOPSMITH_PIKA__KEY", "secret-value")],
            &["`pika.key`", "looks like a secret", "FAL_KEY"],
        ),
        (
            &[("LOOPSMITH_LOCAL__DEVICE", "tpu")],
            &[
                "environment variable LOOPSMITH_LOCAL__DEVICE",
                "`tpu` is not a device",
            ],
        ),
        (
            &[("LOOPSMITH_STYLES__CUSTOM", "x")],
            &["cannot be set from the environment"],
        ),
        (
            &[("LOOPSMITH_ENGINE__WORKERS", "0")],
            &[
                "environment variable LOOPSMITH_ENGINE__WORKERS",
                "1 or more",
            ],
        ),
        (
            &[("LOOPSMITH_PIKA__BASE_URL", "queue.fal.run")],
            &["`pika.base_url`", "not an http(s) URL"],
        ),
    ];
    for (vars, expected) in cases {
        let err = Settings::load(None, env(vars)).expect_err("must be refused");
        let msg = err.to_string();
        for part in *expected {
            assert!(msg.contains(part), "expected `{part}` in: {msg}");
        }
        assert!(!msg.contains("secret-value"), "never echo a secret: {msg}");
    }
}

#[test]
fn a_missing_file_is_named() {
    let err =
        Settings::load(Some(Path::new("/nonexistent/loopsmith.toml")), []).expect_err("missing");
    assert!(
        matches!(&err, ConfigError::Read { path, .. } if path == Path::new("/nonexistent/loopsmith.toml"))
    );
    assert_eq!(
        err.to_string(),
        "cannot read config file /nonexistent/loopsmith.toml"
    );
}

#[test]
fn a_bad_value_set_in_the_environment_blames_the_environment_not_the_file() {
    let err = Settings::load(
        Some(&fixture("valid/community.toml")),
        env(&[("LOOPSMITH_STYLES__ASPECT", "7:3")]),
    )
    .expect_err("bad aspect");
    match err {
        ConfigError::BadValue { origin, key, .. } => {
            assert_eq!(origin, Origin::Env("LOOPSMITH_STYLES__ASPECT".into()));
            assert_eq!(key, "styles.aspect");
        }
        other => panic!("expected BadValue, got {other}"),
    }
}

#[test]
fn the_example_file_is_what_gen_config_prints_and_it_loads_to_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("loopsmith.example.toml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == example_config(),
        "config/loopsmith.example.toml has drifted from the settings; regenerate it with \
         `cargo run -- gen-config > config/loopsmith.example.toml`"
    );
    let loaded = Settings::load(Some(&path), []).expect("the example loads");
    assert_eq!(loaded, Settings::default());
}

#[test]
fn the_control_port_must_be_loopback() {
    let ok = Settings::load(None, env(&[("LOOPSMITH_CONTROL__TCP", "127.0.0.1:7878")]))
        .expect("loopback loads");
    assert_eq!(ok.control.tcp, "127.0.0.1:7878");
    Settings::load(None, env(&[("LOOPSMITH_CONTROL__TCP", "[::1]:7878")])).expect("::1 loads");
    for (value, problem) in [
        ("0.0.0.0:7878", "reachable from other machines"),
        ("192.168.1.5:7878", "reachable from other machines"),
        ("localhost", "not an address with a port"),
    ] {
        let err = Settings::load(None, env(&[("LOOPSMITH_CONTROL__TCP", value)]))
            .expect_err(value)
            .to_string();
        assert!(err.contains("control.tcp"), "{value}: {err}");
        assert!(err.contains(problem), "{value}: {err}");
    }
}
