//! The Discord bot end to end: the real `loopsmith serve` binary, a real model bundle (the
//! tiny random-weight AnimateDiff fixture, on CPU), and the fake Discord REST API and gateway
//! from `loopsmith-fakes`. The test plays the users by injecting interactions on the gateway
//! and reads back every REST call the bot made.
//!
//! `endpoint` covers the HTTP interactions endpoint instead of the gateway.

mod animate;
mod endpoint;
mod support;

use std::process::Command;
use std::time::Duration;

use loopsmith_engine::media::discord::{MAX_BYTES, MAX_SECS, SIDE};
use loopsmith_engine::media::inspect::{Container, inspect};
use loopsmith_fakes::discord::{
    APPLICATION_ID, AttachmentMeta, CHANNEL_ID, CREATE_GUILD_EXPRESSIONS, Call, CommandOption,
    Failure, FakeDiscord, Member, STICKER_SLOTS,
};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_discord_bot_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeDiscord::new(&token());
    let servers = fake.serve().await.expect("fake Discord");
    let rest = servers.rest_url();
    let mut serve = Serve::start(dir.path(), &rest, &[]);

    // Ready: token checked, gateway identified, commands registered in the guild.
    fake.wait_ready(QUICK)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", serve.log()));
    let commands_path = format!("/applications/{APPLICATION_ID}/guilds/{GUILD}/commands");
    let calls = fake
        .wait_for(QUICK, |calls| {
            calls.iter().any(|c| c.is("PUT", &commands_path, ""))
        })
        .await
        .unwrap_or_else(|e| panic!("commands never registered: {e}\n{}", serve.log()));
    assert!(calls[0].is("GET", "/users/@me", ""), "{:?}", calls[0].path);
    assert!(calls.iter().any(|c| c.is("GET", "/gateway", "")));
    assert!(fake.gateway_ops().contains(&2), "IDENTIFY was sent");
    let registered = calls
        .iter()
        .find(|c| c.is("PUT", &commands_path, ""))
        .expect("found");
    let names: Vec<&str> = registered
        .body
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in [
        "sticker",
        "animate",
        "style",
        "styles",
        "suffix",
        "character",
        "seed",
        "history",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }

    let alice = Member::new(ALICE, "alice");
    let bob = Member::new(BOB, "bob");

    // A bad attachment for /animate: refused with what is wrong, nothing deferred.
    let pdf = AttachmentMeta {
        id: 9001,
        filename: "notes.pdf".into(),
        content_type: Some("application/pdf".into()),
        size: 2048,
        width: None,
        height: None,
        url: fake.host_attachment(&rest, "notes.pdf", "%PDF-1.4".into()),
    };
    let token = fake.command(
        GUILD,
        &alice,
        "animate",
        &[
            CommandOption::attachment("image", pdf),
            CommandOption::string("prompt", "make it dance"),
        ],
    );
    let text = private_answer(&fake, &serve, &token).await;
    assert_eq!(
        text,
        "I take PNG, JPEG or WebP pictures; that file is application/pdf."
    );

    // Options typed apart from the prompt are checked like inline ones.
    let token = fake.command(
        GUILD,
        &alice,
        "sticker",
        &[
            CommandOption::string("prompt", "a cat -seed 1"),
            CommandOption::integer("seed", 2),
        ],
    );
    assert_eq!(
        private_answer(&fake, &serve, &token).await,
        "You gave -seed twice; give it once."
    );

    // Style autocomplete offers the presets that match.
    let token = fake.autocomplete(
        GUILD,
        &alice,
        "sticker",
        &[
            CommandOption::string("prompt", "a cat"),
            CommandOption::focused("style", "an"),
        ],
    );
    let call = fake
        .wait_for_token(&token, QUICK, |c| callback_type(c) == Some(8))
        .await
        .unwrap_or_else(|e| panic!("no autocomplete: {e}\n{}", serve.log()));
    assert_eq!(
        call.body["data"]["choices"][0]["value"], "anime",
        "{}",
        call.body
    );

    // /style through the shared layer, in the Telegram bot's words.
    let token = fake.command(GUILD, &alice, "style", &[]);
    assert_eq!(
        private_answer(&fake, &serve, &token).await,
        "You have no default style. Pick one with /style NAME; /styles lists them."
    );

    // /settings, and a tap on one of its buttons updates the same message.
    let token = fake.command(GUILD, &alice, "settings", &[]);
    let settings = fake
        .wait_for_token(&token, QUICK, |c| callback_type(c) == Some(4))
        .await
        .unwrap_or_else(|e| panic!("no settings: {e}\n{}", serve.log()));
    let buttons = settings.body["data"]["components"].to_string();
    assert!(
        buttons.contains("\"custom_id\":\"set:ar:9:16\""),
        "{buttons}"
    );
    let press = fake.press(GUILD, &alice, &token, "set:ar:9:16");
    let updated = fake
        .wait_for_token(&press, QUICK, |c| callback_type(c) == Some(7))
        .await
        .unwrap_or_else(|e| panic!("settings not updated: {e}\n{}", serve.log()));
    let text = updated.body["data"]["content"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("Aspect is now 9:16.\n\nYour defaults:\nStyle: default\nAspect: 9:16"),
        "{text}"
    );

    // /sticker: deferred at once, progress edits, then the MP4 with its buttons. Discord's
    // first answer to an edit is a 429, which is waited out.
    fake.fail_next(
        "/messages/@original",
        Failure {
            status: 429,
            code: 0,
            message: "You are being rate limited.".into(),
        },
    );
    let token = fake.command(
        GUILD,
        &alice,
        "sticker",
        &[
            CommandOption::string("prompt", "a red ball bouncing"),
            CommandOption::integer("seed", 42),
            CommandOption::integer("duration", 4),
        ],
    );
    let deferred = fake
        .wait_for_token(&token, QUICK, |c| callback_type(c).is_some())
        .await
        .unwrap_or_else(|e| panic!("not deferred: {e}\n{}", serve.log()));
    assert_eq!(callback_type(&deferred), Some(5));
    edit_saying(&fake, &serve, &token, "Got it").await;
    let (clip, flow) = delivery(&fake, &serve, &token).await;
    let job = check_clip(&clip);
    assert!(
        clip.content()
            .is_some_and(|t| t.contains("a red ball bouncing · seed 42")),
        "{:?}",
        clip.content()
    );
    let mut texts: Vec<&Call> = flow
        .iter()
        .filter(|c| c.method == "PATCH" && c.files.is_empty())
        .collect();
    let queued: Vec<&Call> = texts
        .iter()
        .copied()
        .filter(|c| c.content().is_some_and(|t| t.starts_with("Got it")))
        .collect();
    assert_eq!(queued.len(), 2, "refused once, then sent again");
    assert!(queued[1].at.duration_since(queued[0].at) >= Duration::from_millis(900));
    // Status edits keep to the pacing: 1.5 s apart per job (the retried one counted once).
    let refused = queued[0];
    texts.retain(|c| !std::ptr::eq(*c, refused));
    assert!(texts.len() >= 2, "the queued text, then the final status");
    for pair in texts.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(1400), "edits {gap:?} apart");
    }
    let last = texts.last().and_then(|c| c.content()).unwrap_or_default();
    assert!(
        last.contains("a red ball bouncing · seed 42"),
        "the caption stays: {last}"
    );

    // Buttons: only the requester or an admin may press them.
    let press = fake.press(GUILD, &bob, &token, &format!("rr:{job}"));
    assert_eq!(
        private_answer(&fake, &serve, &press).await,
        "That button belongs to someone else's sticker."
    );
    let press = fake.press(GUILD, &alice, &token, "rr:not-a-job");
    assert_eq!(
        private_answer(&fake, &serve, &press).await,
        "That button no longer works; make a new sticker."
    );

    // Add as server sticker: refused for a member without Create Expressions, and when the
    // bot lacks it; then made, as an APNG within Discord's limits.
    let no_rights = Member::new(ALICE, "alice").with_permissions(0);
    let press = fake.press(GUILD, &no_rights, &token, &format!("pk:{job}"));
    assert_eq!(
        private_answer(&fake, &serve, &press).await,
        "You need the Create Expressions permission in this server to add stickers."
    );
    let bot_without = Member::new(ALICE, "alice")
        .with_app_permissions(!CREATE_GUILD_EXPRESSIONS & ((1 << 50) - 1));
    let press = fake.press(GUILD, &bot_without, &token, &format!("pk:{job}"));
    assert!(
        private_answer(&fake, &serve, &press)
            .await
            .starts_with("I don't have the Create Expressions permission")
    );
    let press = fake.press(GUILD, &alice, &token, &format!("pk:{job}"));
    edit_saying(&fake, &serve, &press, "to this server's stickers").await;
    let stickers = fake.stickers(GUILD);
    assert_eq!(stickers.len(), 1);
    assert_eq!(stickers[0].name, "a red ball bouncing");
    assert_eq!(stickers[0].tags, "red");
    let info = inspect(&stickers[0].bytes).expect("readable sticker");
    assert_eq!(info.container, Container::Png);
    assert_eq!((info.width, info.height), (SIDE, SIDE));
    assert!(
        info.bytes <= MAX_BYTES && info.duration_secs <= MAX_SECS,
        "{info:?}"
    );
    assert!(info.frames > 1, "animated");
    // Slots full: Discord's refusal is told apart.
    fake.fill_stickers(GUILD, STICKER_SLOTS - 1);
    let press = fake.press(GUILD, &alice, &token, &format!("pk:{job}"));
    edit_saying(&fake, &serve, &press, "sticker slots are full").await;
    // The bot lost the permission since the interaction was sent: Discord's 403 says so.
    fake.set_bot_permissions(GUILD, 0);
    let press = fake.press(GUILD, &alice, &token, &format!("pk:{job}"));
    edit_saying(
        &fake,
        &serve,
        &press,
        "I don't have the Create Expressions permission",
    )
    .await;
    fake.set_bot_permissions(GUILD, !0);
    // A file Discord refuses is reported as such.
    fake.fail_next(
        "/stickers",
        Failure {
            status: 400,
            code: 50045,
            message: "File uploaded exceeds the maximum size".into(),
        },
    );
    let press = fake.press(GUILD, &alice, &token, &format!("pk:{job}"));
    edit_saying(&fake, &serve, &press, "Discord refused this sticker's file").await;

    // Full clip, pressed by an admin: the clip again, as a new message.
    let admin = Member::new(ADMIN, "admin");
    let press = fake.press(GUILD, &admin, &token, &format!("fc:{job}"));
    let again = fake
        .wait_for_token(&press, QUICK, |c| {
            c.method == "PATCH" && !c.files.is_empty()
        })
        .await
        .unwrap_or_else(|e| panic!("no full clip: {e}\n{}", serve.log()));
    assert_eq!(check_clip(&again), job);

    // Re-roll: a new job with a new seed, followed on the press's own response.
    let press = fake.press(GUILD, &alice, &token, &format!("rr:{job}"));
    let (clip, _) = delivery(&fake, &serve, &press).await;
    let rerolled = check_clip(&clip);
    assert_ne!(rerolled, job);
    assert!(
        !clip.content().unwrap_or_default().contains("· seed 42\n"),
        "{:?}",
        clip.content()
    );

    // A job that outlived its interaction token (15 minutes in a queue): the clip is posted
    // in the channel instead, mentioning only the person who asked.
    let (late, token_of_late) = fake.command_payload(
        GUILD,
        &alice,
        "sticker",
        &[CommandOption::string(
            "prompt",
            "a kite in the wind -duration 4",
        )],
    );
    fake.expire_token(&token_of_late);
    fake.dispatch(late);
    let posted = fake
        .wait_for(RENDER, |calls| {
            calls.iter().any(|c| {
                c.is("POST", &format!("/channels/{CHANNEL_ID}/messages"), "") && !c.files.is_empty()
            })
        })
        .await
        .unwrap_or_else(|e| panic!("no message in the channel: {e}\n{}", serve.log()))
        .into_iter()
        .find(|c| c.path.starts_with("/channels/") && !c.files.is_empty())
        .expect("found above");
    check_clip(&posted);
    let text = posted.content().unwrap_or_default();
    assert!(
        text.starts_with(&format!("<@{ALICE}> a kite in the wind")),
        "{text}"
    );
    assert_eq!(
        posted.body["allowed_mentions"]["users"],
        serde_json::json!([ALICE.to_string()])
    );

    // Two people at once: each job is followed on its own response, and edits from both
    // keep apart from each other (one shared gate, at most four edits a second).
    let mark = fake.calls().len();
    let first = fake.command(
        GUILD,
        &alice,
        "sticker",
        &[CommandOption::string(
            "prompt",
            "rain on a window -duration 3",
        )],
    );
    let second = fake.command(
        GUILD,
        &bob,
        "sticker",
        &[CommandOption::string(
            "prompt",
            "snow on a roof -duration 3",
        )],
    );
    delivery(&fake, &serve, &first).await;
    delivery(&fake, &serve, &second).await;
    let edits: Vec<Call> = fake.calls()[mark..]
        .iter()
        .filter(|c| c.method == "PATCH")
        .cloned()
        .collect();
    assert!(
        edits
            .iter()
            .any(|c| c.interaction_token() == Some(first.as_str()))
    );
    assert!(
        edits
            .iter()
            .any(|c| c.interaction_token() == Some(second.as_str()))
    );
    // The fake sees when a request arrives, not when it was sent: an upload arrives late,
    // so only gaps after a small JSON edit (which arrives at once) show the spacing.
    let mut checked = 0;
    for pair in edits.windows(2).filter(|pair| pair[0].files.is_empty()) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(200), "edits {gap:?} apart");
        checked += 1;
    }
    assert!(checked >= 3, "{checked} gaps checked");

    // The gateway drops the connection: the bot resumes and goes on answering.
    let sessions = fake.sessions();
    fake.disconnect();
    fake.wait_sessions(sessions, QUICK)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", serve.log()));
    assert!(fake.gateway_ops().contains(&6), "RESUME was sent");

    // /history lists both, with buttons to get them again.
    let token = fake.command(GUILD, &alice, "history", &[]);
    let call = fake
        .wait_for_token(&token, QUICK, |c| callback_type(c) == Some(4))
        .await
        .unwrap_or_else(|e| panic!("no history: {e}\n{}", serve.log()));
    let text = call.body["data"]["content"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("Your recent stickers:\n1. rain on a window\n2. a kite in the wind\n3. a red ball bouncing\n4. a red ball bouncing"),
        "{text}"
    );

    let log = serve.stop().await;
    assert!(
        !log.contains(&token_secret()),
        "the bot token leaked:\n{log}"
    );
    assert!(
        !log.contains("itoken-"),
        "an interaction token leaked:\n{log}"
    );
    assert!(log.contains("slash commands registered"), "{log}");
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_serve_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The fake expects another token, so it answers 401 as Discord does.
    let fake = FakeDiscord::new("some-other-token");
    let servers = fake.serve().await.expect("fake Discord");
    let serve = Serve::start(dir.path(), &servers.rest_url(), &[]);
    let (code, log) = exited(serve).await;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("error: Discord refused the bot token (DISCORD_TOKEN)"),
        "{log}"
    );
    assert!(!log.contains(&token_secret()), "the token leaked:\n{log}");
    assert!(!fake.ready(), "no gateway session with a refused token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_loopsmith"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("LOOPSMITH_CONFIG")
        .env_remove("DISCORD_TOKEN")
        .env("LOOPSMITH_DISCORD__ENABLED", "true")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("discord.enabled is true but DISCORD_TOKEN is not set"),
        "{stderr}"
    );
}
