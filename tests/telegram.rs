//! The Telegram bot end to end: the real `loopsmith serve` binary, a real model bundle (the
//! tiny random-weight AnimateDiff fixture, on CPU), and the fake Bot API server from
//! `loopsmith-fakes`. The test plays the users by injecting updates and reads back every call
//! the bot made.

#[path = "telegram/gates.rs"]
mod gates;
#[path = "telegram/harness.rs"]
mod harness;
#[path = "common/media.rs"]
mod media;
#[path = "telegram/picture.rs"]
mod picture;
#[path = "telegram/restart.rs"]
mod restart;

use std::time::Duration;

use harness::*;
use loopsmith_engine::media::inspect::inspect;
use loopsmith_engine::media::sticker::{TELEGRAM_STICKER, check};
use loopsmith_fakes::telegram::{Call, Failure, FakeTelegram};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeTelegram::new(&token(), BOT);
    let server = fake.serve().await.expect("fake Bot API");
    let mut serve = Serve::start(dir.path(), &server.base_url(), &[]);

    // Ready: it checked the token, registered its commands and is polling.
    wait_until_polling(&fake, &serve, 0, "").await;
    let first = fake.calls();
    assert!(first[0].is("getMe"), "{:?}", first[0].method);
    assert!(first.iter().any(|c| c.is("setMyCommands")));

    // /start, answered through a 429 that the Throttle adaptor waits out.
    fake.fail_next("sendMessage", Failure::RetryAfter(1));
    let mark = fake.calls().len();
    fake.send_text(ALICE, ALICE, "/start");
    let calls = fake
        .wait_for(QUICK, |calls| {
            calls[mark..].iter().filter(|c| c.is("sendMessage")).count() >= 2
        })
        .await
        .unwrap_or_else(|e| panic!("/start was not sent again after the 429: {e}"));
    let tries: Vec<&Call> = calls[mark..]
        .iter()
        .filter(|c| c.is("sendMessage"))
        .collect();
    assert!(
        text_of(tries[1]).starts_with("Hi User42!"),
        "{}",
        text_of(tries[1])
    );
    assert!(
        text_of(tries[1]).contains("Styles: none, anime"),
        "{}",
        text_of(tries[1])
    );
    assert_eq!(tries.len(), 2, "refused once, then sent again");
    assert!(tries[1].at.duration_since(tries[0].at) >= Duration::from_millis(900));

    // Malformed input (from the admin's chat, to spread the per-chat rate): each gets one
    // short, specific answer.
    let mark = fake.calls().len();
    fake.send_text(ADMIN, ADMIN, "a cat -fps 99");
    reply(
        &fake,
        &serve,
        mark,
        ADMIN,
        "Frame rate must be between 8 and 30 fps; you asked for 99.",
    )
    .await;
    fake.send_text(ADMIN, ADMIN, "a cat \"unclosed");
    reply(
        &fake,
        &serve,
        mark,
        ADMIN,
        "A quote is opened but never closed.",
    )
    .await;
    fake.send_text(ADMIN, ADMIN, "/frobnicate");
    reply(&fake, &serve, mark, ADMIN, "I don't know /frobnicate.").await;
    fake.send_text(ADMIN, ADMIN, "/sticker");
    reply(&fake, &serve, mark, ADMIN, "Tell me what to make").await;
    // An update teloxide cannot read at all, then a photo while only the local model (which
    // takes no picture) is set up: the bot carries on, and says so without fetching it.
    fake.push_update(json!({"message": {"message_id": "x", "chat": 5}}));
    fake.send_photo(ADMIN, ADMIN, "make it dance", media::png(96, 96), (96, 96));
    reply(&fake, &serve, mark, ADMIN, "I can't animate pictures here").await;
    assert!(!fake.calls().iter().any(|c| c.is("getFile")));
    fake.press(ADMIN, ADMIN, 1, "zz:junk");
    answer(&fake, &serve, mark, "That button no longer works").await;

    // The allow-list: someone not on it gets a polite refusal and no job.
    fake.send_text(OUTSIDER, OUTSIDER, "a dancing cat");
    reply(&fake, &serve, mark, OUTSIDER, "this bot is private").await;

    // A prompt: queued reply, progress edits, the sticker with buttons, the full clip.
    let mark = fake.calls().len();
    fake.send_text(ALICE, ALICE, "a red ball bouncing -seed 42 -duration 4");
    let queued = reply(&fake, &serve, mark, ALICE, "Got it").await;
    let calls = fake
        .wait_for(RENDER, |calls| {
            calls[mark..].iter().any(|c| c.is("sendAnimation"))
                && calls[mark..]
                    .iter()
                    .any(|c| c.is("editMessageText") && text_of(c).starts_with("Here it is!"))
        })
        .await
        .unwrap_or_else(|e| panic!("no delivery: {e}\n{}", serve.log()));
    let flow = &calls[mark..];
    let sticker = flow
        .iter()
        .find(|c| c.is("sendSticker"))
        .expect("a sticker");
    let bytes = sticker
        .attached("sticker")
        .expect("uploaded as a file")
        .bytes
        .clone();
    check(&bytes, &TELEGRAM_STICKER).expect("a valid Telegram video sticker");
    assert_eq!(sticker.text("emoji").as_deref(), Some("🎬"));
    let keys = buttons(sticker);
    assert_eq!(keys.len(), 4, "{keys:?}");
    let job = keys[0]
        .strip_prefix("rr:")
        .expect("re-roll first")
        .to_string();
    assert_eq!(
        keys,
        [
            format!("rr:{job}"),
            format!("va:{job}"),
            format!("pk:{job}"),
            format!("fc:{job}")
        ]
    );
    let clip = flow
        .iter()
        .find(|c| c.is("sendAnimation"))
        .expect("the full clip");
    let mp4 = clip.attached("animation").expect("uploaded").bytes.clone();
    let info = inspect(&mp4).expect("readable MP4");
    assert_eq!(info.codec, "h264");
    assert!(info.duration_secs > 3.0, "{} s", info.duration_secs);
    assert!(
        flow.iter()
            .any(|c| c.is("sendChatAction") && c.text("action").as_deref() == Some("record_video")),
        "the chat action is shown while rendering"
    );
    // Progress edits of the queued reply keep at least 2 s apart.
    let edits: Vec<&Call> = flow.iter().filter(|c| c.is("editMessageText")).collect();
    assert!(!edits.is_empty());
    for pair in edits.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(1900), "edits {gap:?} apart");
    }
    assert!(edits[0].at.duration_since(queued.at) >= Duration::from_millis(1900));

    // Add to my pack: the first press makes the set, the second adds to it.
    let mark = fake.calls().len();
    fake.press(ALICE, ALICE, 2, &format!("pk:{job}"));
    reply(&fake, &serve, mark, ALICE, "I made your pack").await;
    let set_name = format!("u{ALICE}_by_{BOT}");
    let set = fake.sticker_set(&set_name).expect("the set exists");
    assert_eq!((set.owner, set.stickers.len()), (ALICE, 1));
    assert_eq!(set.title, "User42's loopsmith stickers");
    let create = fake.calls_of("createNewStickerSet").pop().expect("called");
    let sticker_file_id = create.params["stickers"][0]["sticker"].clone();
    assert!(
        sticker_file_id
            .as_str()
            .is_some_and(|s| !s.starts_with("attach://")),
        "the sticker goes by the file id it already has: {:?}",
        create.params
    );
    fake.press(ALICE, ALICE, 2, &format!("pk:{job}"));
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "Added to your pack: https://t.me/addstickers/",
    )
    .await;
    assert_eq!(fake.sticker_set(&set_name).expect("set").stickers.len(), 2);
    fake.send_text(ALICE, ALICE, "/pack");
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        &format!("Your pack: https://t.me/addstickers/{set_name}"),
    )
    .await;

    // A full set and a refused sticker each get their own message.
    let mut full = fake.sticker_set(&set_name).expect("set");
    full.stickers = vec![full.stickers[0].clone(); 120];
    fake.put_set(full);
    fake.press(ALICE, ALICE, 2, &format!("pk:{job}"));
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "Your pack is full (120 stickers",
    )
    .await;
    fake.fail_next(
        "addStickerToSet",
        Failure::BadRequest("STICKER_VIDEO_LONG".into()),
    );
    fake.press(ALICE, ALICE, 2, &format!("pk:{job}"));
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "Telegram refused this sticker for packs",
    )
    .await;
    // Inline mode: the user's own stickers by file id, through one 429.
    fake.fail_next("answerInlineQuery", Failure::RetryAfter(1));
    let mark = fake.calls().len();
    fake.inline_query(ALICE, "red ball");
    let calls = fake
        .wait_for(QUICK, |calls| {
            calls[mark..]
                .iter()
                .filter(|c| c.is("answerInlineQuery"))
                .count()
                >= 2
        })
        .await
        .unwrap_or_else(|e| panic!("no inline answer: {e}"));
    let inline: Vec<&Call> = calls[mark..]
        .iter()
        .filter(|c| c.is("answerInlineQuery"))
        .collect();
    assert!(inline[1].at.duration_since(inline[0].at) >= Duration::from_millis(900));
    let answered = inline[1];
    assert_eq!(answered.params["is_personal"], json!(true));
    assert_eq!(answered.params["cache_time"], json!(10));
    assert_eq!(
        answered.params["button"]["start_parameter"],
        json!("inline")
    );
    let results = answered.params["results"].as_array().expect("results");
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["type"], json!("sticker"));
    assert_eq!(results[0]["sticker_file_id"], sticker_file_id);
    fake.inline_query(ALICE, "no such words");
    let calls = fake
        .wait_for(QUICK, |calls| {
            calls[mark..]
                .iter()
                .filter(|c| c.is("answerInlineQuery"))
                .count()
                >= 3
        })
        .await
        .expect("answered");
    let last = calls
        .iter()
        .rev()
        .find(|c| c.is("answerInlineQuery"))
        .expect("answer");
    assert_eq!(last.params["results"], json!([]));

    // Buttons belong to their sticker's owner; admins and commands.
    let mark = fake.calls().len();
    fake.press(ADMIN, ADMIN, 2, &format!("rr:{job}"));
    answer(&fake, &serve, mark, "belongs to someone else").await;
    fake.send_text(ALICE, ALICE, "/stats");
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "Only admins can use that command.",
    )
    .await;
    fake.send_text(ADMIN, ADMIN, "/stats");
    reply(&fake, &serve, mark, ADMIN, "Queue: 0 waiting").await;
    fake.send_text(ADMIN, ADMIN, "/budget");
    reply(
        &fake,
        &serve,
        mark,
        ADMIN,
        "Pika backend is turned off (pika.enabled = false)",
    )
    .await;
    fake.send_text(ALICE, ALICE, "/seed lock");
    reply(&fake, &serve, mark, ALICE, "every sticker will use seed 42").await;
    fake.send_text(ALICE, ALICE, "/style anime");
    reply(&fake, &serve, mark, ALICE, "the anime style").await;
    fake.send_text(ALICE, ALICE, "/style vaporwave");
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "There is no style called \"vaporwave\"",
    )
    .await;
    fake.send_text(ALICE, ALICE, "/history");
    let history = reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "Your recent stickers:\n1. a red ball bouncing",
    )
    .await;
    assert_eq!(buttons(&history), [format!("hs:{job}")]);
    // History's button and Full clip resend by the file ids Telegram already has.
    let before = fake.calls().len();
    fake.press(ALICE, ALICE, 3, &format!("hs:{job}"));
    fake.press(ALICE, ALICE, 3, &format!("fc:{job}"));
    let calls = fake
        .wait_for(QUICK, |calls| {
            calls[before..].iter().any(|c| c.is("sendSticker"))
                && calls[before..].iter().any(|c| c.is("sendAnimation"))
        })
        .await
        .unwrap_or_else(|e| panic!("no resend: {e}"));
    let again = calls[before..]
        .iter()
        .find(|c| c.is("sendSticker"))
        .expect("sticker");
    assert_eq!(
        json!(again.text("sticker")),
        sticker_file_id,
        "by file id, no upload"
    );
    assert!(again.files.is_empty());
    let clip_again = calls[before..]
        .iter()
        .find(|c| c.is("sendAnimation"))
        .expect("clip");
    assert!(
        clip_again
            .text("animation")
            .is_some_and(|id| !id.starts_with("attach://"))
    );
    fake.send_text(ALICE, ALICE, "/settings");
    let settings = reply(&fake, &serve, mark, ALICE, "Your defaults:").await;
    assert!(
        text_of(&settings).contains("Seed: locked to 42"),
        "{}",
        text_of(&settings)
    );
    assert!(buttons(&settings).contains(&"set:ar:9:16".to_string()));
    fake.press(ALICE, ALICE, 3, "set:ar:9:16");
    answer(&fake, &serve, mark, "Aspect is now 9:16.").await;
    fake.send_text(ADMIN, ADMIN, "/ban 99");
    reply(&fake, &serve, mark, ADMIN, "User 99 is banned").await;

    // Groups: only commands addressed to this bot; the sticker comes to the group.
    let mark = fake.calls().len();
    fake.send_text(ALICE, GROUP, "just chatting");
    fake.send_text(ALICE, GROUP, "/sticker@other_bot a dog");
    fake.send_text(ALICE, GROUP, &format!("/sticker@{BOT} a blue box -seed 3"));
    reply(&fake, &serve, mark, GROUP, "Got it").await;
    let calls = fake
        .wait_for(RENDER, |calls| {
            calls[mark..].iter().any(|c| c.is("sendSticker"))
        })
        .await
        .unwrap_or_else(|e| panic!("no group sticker: {e}\n{}", serve.log()));
    let group_calls: Vec<&Call> = calls[mark..]
        .iter()
        .filter(|c| chat_of(c) == Some(GROUP))
        .collect();
    let group_sticker = group_calls
        .iter()
        .find(|c| c.is("sendSticker"))
        .expect("sticker");
    check(
        &group_sticker.attached("sticker").expect("file").bytes,
        &TELEGRAM_STICKER,
    )
    .expect("valid");
    assert!(
        !calls[mark..].iter().any(|c| c.is("sendAnimation")),
        "a 3 s clip fits a sticker; no separate clip"
    );
    assert_eq!(
        group_calls.iter().filter(|c| c.is("sendMessage")).count(),
        1,
        "one queued reply; the chatter and the other bot's command are ignored"
    );

    // Re-roll from the private chat: same parameters, a new job, another sticker.
    let mark = fake.calls().len();
    fake.press(ALICE, ALICE, 2, &format!("rr:{job}"));
    answer(&fake, &serve, mark, "On it!").await;
    fake.wait_for(RENDER, |calls| {
        calls[mark..].iter().any(|c| c.is("sendSticker"))
    })
    .await
    .unwrap_or_else(|e| panic!("no re-roll: {e}\n{}", serve.log()));

    // SIGTERM: a clean stop within the grace period.
    let log = serve.stop().await;

    // The token never appears: not in the log, not in anything sent to Telegram.
    let token = token();
    let secret = token.split_once(':').map(|(_, s)| s).expect("token shape");
    assert!(!log.contains(secret), "the token leaked into the log");
    for call in fake.calls() {
        assert!(
            !format!("{:?}", call.params).contains(secret),
            "token in a {} call",
            call.method
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_checks_the_secret_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeTelegram::new(&token(), BOT);
    let server = fake.serve().await.expect("fake Bot API");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let public = "https://bot.example/tg/hook";
    let mut serve = Serve::start(
        dir.path(),
        &server.base_url(),
        &[
            ("LOOPSMITH_TELEGRAM__WEBHOOK_URL", public.to_string()),
            (
                "LOOPSMITH_TELEGRAM__WEBHOOK_LISTEN",
                format!("127.0.0.1:{port}"),
            ),
        ],
    );
    // The port is bound before setWebhook is called, so posting after it is safe.
    let set = fake
        .wait_for_nth("setWebhook", 1, QUICK)
        .await
        .unwrap_or_else(|e| panic!("no setWebhook: {e}\n{}", serve.log()));
    assert_eq!(set.text("url").as_deref(), Some(public));
    let secret = set.text("secret_token").expect("a secret token");
    assert!(
        !secret.contains(
            token()
                .split_once(':')
                .map(|(_, s)| s.to_string())
                .unwrap_or_default()
                .as_str()
        )
    );

    let update = json!({"update_id": 1, "message": {
        "message_id": 1, "date": 1_700_000_000,
        "chat": {"id": ALICE, "type": "private", "first_name": "A"},
        "from": {"id": ALICE, "is_bot": false, "first_name": "A"},
        "text": "/help",
    }});
    let client = reqwest::Client::new();
    let post = |secret: Option<String>| {
        let mut request = client
            .post(format!("http://127.0.0.1:{port}/tg/hook"))
            .json(&update);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send()
    };
    let mut wrong = secret.clone();
    wrong.replace_range(0..1, if wrong.starts_with('0') { "1" } else { "0" });
    for bad in [None, Some(wrong.clone()), Some(String::new())] {
        let status = post(bad)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", serve.log()))
            .status();
        assert_eq!(status.as_u16(), 401);
    }
    // A flood of wrong secrets (reliability.md G3.1): every one refused, none handled.
    // 1,000 here, 10,000 with RELIABILITY_SIZE=full.
    let flood = match std::env::var("RELIABILITY_SIZE").as_deref() {
        Ok("full") => 10_000,
        _ => 1_000,
    };
    let mut rng = 0x005E_C2E7_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let alphabet: Vec<char> = ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(['_', '-'])
        .collect();
    let mut refused = 0;
    for i in 0..flood {
        let guess = match i % 4 {
            // The right secret with one character changed, at any position.
            0 => {
                let at = (next() % secret.len() as u64) as usize;
                let mut chars: Vec<char> = secret.chars().collect();
                let old = chars[at];
                chars[at] = *alphabet
                    .iter()
                    .find(|c| **c != old && next() % 3 == 0)
                    .unwrap_or(&if old == 'a' { 'b' } else { 'a' });
                chars.into_iter().collect()
            }
            // A prefix, or the secret with something after it.
            1 => secret[..(next() % secret.len() as u64) as usize].to_string(),
            2 => format!("{secret}{}", alphabet[(next() % 64) as usize]),
            // Random, 1 to 256 characters of the allowed alphabet.
            _ => (0..1 + next() % 256)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect(),
        };
        let guess = if guess.is_empty() { None } else { Some(guess) };
        let status = post(guess)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", serve.log()))
            .status();
        assert_eq!(status.as_u16(), 401, "request {i}");
        refused += 1;
    }
    println!("webhook: {refused} of {flood} requests with a wrong or missing secret refused (401)");
    let status = post(Some(secret)).await.expect("answered").status();
    assert!(status.is_success(), "{status}");
    let calls = fake
        .wait_for(QUICK, |calls| calls.iter().any(|c| c.is("sendMessage")))
        .await
        .unwrap_or_else(|e| panic!("no answer: {e}\n{}", serve.log()));
    let sent: Vec<&Call> = calls.iter().filter(|c| c.is("sendMessage")).collect();
    assert_eq!(
        sent.len(),
        1,
        "only the update with the right secret was handled"
    );
    assert!(text_of(sent[0]).starts_with("Send me a description"));
    assert!(
        !calls.iter().any(|c| c.is("getUpdates")),
        "no polling in webhook mode"
    );
    let log = serve.stop().await;
    assert!(
        !log.contains(
            token()
                .split_once(':')
                .map(|(_, s)| s.to_string())
                .unwrap_or_default()
                .as_str()
        )
    );
}
