//! A crash between "Got it" and the sticker: `loopsmith serve` is SIGKILLed right after it
//! acknowledged a prompt; the next start requeues the job and the bot follows it again into
//! the chat it came from, so the user still gets the sticker — once.

use loopsmith_engine::media::sticker::{TELEGRAM_STICKER, check};
use loopsmith_fakes::telegram::FakeTelegram;

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticker_acknowledged_before_a_crash_is_delivered_after_the_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeTelegram::new(&token(), BOT);
    let server = fake.serve().await.expect("fake Bot API");
    let mut first = Serve::start(dir.path(), &server.base_url(), &[]);
    wait_until_polling(&fake, &first, 0, "").await;

    fake.send_text(ALICE, ALICE, "a red ball bouncing -seed 9 -duration 3");
    reply(&fake, &first, 0, ALICE, "Got it").await;
    let log = first.kill();
    let stickers = |calls: &[loopsmith_fakes::telegram::Call]| {
        calls
            .iter()
            .filter(|c| c.is("sendSticker") && chat_of(c) == Some(ALICE))
            .count()
    };
    let before = stickers(&fake.calls());
    eprintln!("stickers delivered before the kill: {before}");
    let mark = fake.calls().len();

    let mut second = Serve::start(dir.path(), &server.base_url(), &[]);
    if before == 0 {
        let calls = fake
            .wait_for(RENDER, |calls| stickers(&calls[mark..]) >= 1)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "not delivered after the restart: {e}\n{log}\n{}",
                    second.log()
                )
            });
        let sticker = calls[mark..]
            .iter()
            .find(|c| c.is("sendSticker"))
            .expect("the sticker");
        check(
            &sticker.attached("sticker").expect("uploaded").bytes,
            &TELEGRAM_STICKER,
        )
        .expect("a valid sticker");
        // It answers the original message, in the chat the prompt came from.
        assert_eq!(sticker.text("chat_id").as_deref(), Some("42"));
    }
    let log = second.stop().await;
    assert!(
        log.contains("following stickers the last run did not deliver") || before > 0,
        "{log}"
    );
    // Exactly one sticker in all: the restart did not send a delivered one again.
    assert_eq!(stickers(&fake.calls()), 1, "{log}");
}
