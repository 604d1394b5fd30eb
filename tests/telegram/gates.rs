//! Who may do what (issue #11, security; reliability.md G3.3), as one table over the real
//! bot: allow-listed users and chats get stickers, everyone else gets one sentence and makes
//! no job, buttons pressed by outsiders do nothing, and admin commands from non-admins have
//! no effect. The harness allows ALICE and GROUP; ADMIN is the one admin.

use std::collections::BTreeSet;

use loopsmith_engine::{SledStore, Store};
use loopsmith_fakes::telegram::FakeTelegram;

use super::harness::*;

/// A group the bot sits in that is not on the allow-list.
const OTHER_GROUP: i64 = -100_999;

/// What a row expects back.
enum Expect {
    /// A reply in the chat containing this text, and no job.
    Refused(&'static str),
    /// "Got it": one job.
    Job,
    /// A reply containing this text (not a job).
    Answer(&'static str),
    /// Nothing at all (a group message that is not for the bot).
    Silence,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_list_and_admin_gates_hold() {
    use Expect::*;
    let table: &[(i64, i64, &str, Expect)] = &[
        // (from, chat, text, expected)
        (
            OUTSIDER,
            OUTSIDER,
            "a dancing cat",
            Refused("this bot is private"),
        ),
        (
            OUTSIDER,
            OUTSIDER,
            "/sticker a dancing cat",
            Refused("this bot is private"),
        ),
        (OUTSIDER, OUTSIDER, "/stats", Refused("this bot is private")),
        (
            OUTSIDER,
            OTHER_GROUP,
            "/sticker a cat",
            Refused("this bot is private"),
        ),
        (OUTSIDER, OTHER_GROUP, "just chatting", Silence),
        (OUTSIDER, GROUP, "/sticker a cat -duration 3", Job),
        (ALICE, ALICE, "a red ball -duration 3", Job),
        (ALICE, OTHER_GROUP, "/sticker a dog -duration 3", Job),
        (ALICE, ALICE, "/stats", Refused("Only admins")),
        (ALICE, ALICE, "/budget", Refused("Only admins")),
        (ALICE, ALICE, "/ban 1234", Refused("Only admins")),
        (ALICE, ALICE, "/unban 4321", Refused("Only admins")),
        (OUTSIDER, GROUP, "/ban 42", Refused("Only admins")),
        (ADMIN, ADMIN, "/stats", Answer("Queue:")),
        (ADMIN, OTHER_GROUP, "/help", Answer("Send me a description")),
    ];

    let dir = tempfile::tempdir().expect("tempdir");
    let fake = FakeTelegram::new(&token(), BOT);
    let server = fake.serve().await.expect("fake Bot API");
    let mut serve = Serve::start(dir.path(), &server.base_url(), &[]);
    wait_until_polling(&fake, &serve, 0, "").await;
    // 4321 starts banned by the admin, so that a non-admin's /unban has something to undo.
    let mark = fake.calls().len();
    fake.send_text(ADMIN, ADMIN, "/ban 4321");
    reply(&fake, &serve, mark, ADMIN, "User 4321 is banned").await;

    let mut jobs_wanted = BTreeSet::new();
    for (row, (from, chat, text, expect)) in table.iter().enumerate() {
        let mark = fake.calls().len();
        let message = fake.send_text(*from, *chat, text);
        match expect {
            Refused(want) | Answer(want) => {
                reply(&fake, &serve, mark, *chat, want).await;
            }
            Job => {
                reply(&fake, &serve, mark, *chat, "Got it").await;
                jobs_wanted.insert(message);
            }
            Silence => {
                // Followed by a message that is answered: everything before it was seen.
                fake.send_text(ADMIN, ADMIN, "/help");
                reply(&fake, &serve, mark, ADMIN, "Send me a description").await;
                let calls = fake.calls();
                assert!(
                    !calls[mark..]
                        .iter()
                        .any(|c| chat_of(c) == Some(*chat) && c.is("sendMessage")),
                    "row {row}: the bot spoke in {chat} for {text:?}"
                );
            }
        }
    }
    // Buttons on someone else's sticker, pressed by an outsider in a private chat.
    let mark = fake.calls().len();
    fake.press(OUTSIDER, OUTSIDER, 1, "rr:1");
    answer(&fake, &serve, mark, "this bot is private").await;

    let log = serve.stop().await;
    let store = SledStore::open(&dir.path().join("loopsmith-data/db")).expect("the store opens");
    let made: BTreeSet<i64> = store
        .jobs()
        .expect("jobs")
        .into_iter()
        .filter_map(|job| job.origin?.rsplit(':').next()?.parse().ok())
        .collect();
    assert_eq!(made, jobs_wanted, "jobs exist exactly for the allowed rows");
    // The non-admins' /ban and /unban changed nothing.
    let banned = |id: &str| {
        store
            .user(&loopsmith_engine::protocol::UserKey::new(
                loopsmith_engine::protocol::Platform::Telegram,
                id,
            ))
            .expect("user record")
            .is_some_and(|u| u.banned)
    };
    assert!(!banned("1234"), "a non-admin's /ban took effect");
    assert!(!banned("42"), "a non-admin's /ban took effect");
    assert!(banned("4321"), "a non-admin's /unban took effect");
    assert!(log.contains("refused: not on the allow-list"));
}
