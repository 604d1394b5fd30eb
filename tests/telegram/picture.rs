//! A photo with a caption becomes image-to-video on Pika (the fake fal), while the local model,
//! which takes no picture, stays first in line for text. The picture is fetched with getFile,
//! checked, uploaded to fal storage byte for byte and sent as `image_url`; bad pictures each
//! get one clear sentence and no job.

use std::sync::Arc;

use loopsmith_engine::media::sticker::{TELEGRAM_STICKER, check};
use loopsmith_fakes::fal::{FakeFal, Media, Route};
use loopsmith_fakes::telegram::{Failure, FakeTelegram};
use serde_json::json;

use super::harness::*;
use super::media;

/// Short and not token-shaped; checked never to reach the log.
const FAL_KEY: &str = "canary-fal-key-in-telegram-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captioned_photo_is_animated_on_pika() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fal = Arc::new(FakeFal::start(FAL_KEY).await.expect("fake fal"));
    fal.put_media(
        "result.mp4",
        Media::File {
            bytes: media::five_second_mp4().into(),
            content_type: "video/mp4".into(),
        },
    );
    let fake = FakeTelegram::new(&token(), BOT);
    let server = fake.serve().await.expect("fake Bot API");
    let pika = |k: &str, v: String| (k.to_string(), v);
    let extra: Vec<(String, String)> = vec![
        pika("FAL_KEY", FAL_KEY.into()),
        pika("LOOPSMITH_PIKA__ENABLED", "true".into()),
        pika("LOOPSMITH_PIKA__BASE_URL", fal.base_url()),
        pika("LOOPSMITH_PIKA__STORAGE_URL", fal.base_url()),
        pika("LOOPSMITH_PIKA__MEDIA_HOSTS", "127.0.0.1".into()),
        pika("LOOPSMITH_PIKA__POLL_INTERVAL_MS", "20".into()),
    ];
    let extra: Vec<(&str, String)> = extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let mut serve = Serve::start(dir.path(), &server.base_url(), &extra);
    wait_until_polling(&fake, &serve, 0, "").await;

    // Bad pictures first: one sentence each, nothing sent to fal.
    let mark = fake.calls().len();
    fake.send_photo(ALICE, ALICE, "", media::png(128, 128), (128, 128));
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "Add a caption saying how the picture should move",
    )
    .await;
    fake.send_photo(ALICE, ALICE, "wave", media::png(32, 32), (32, 32));
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "That picture is 32×32; pictures must be at least 64 pixels",
    )
    .await;
    fake.send_photo(
        ALICE,
        ALICE,
        "wave",
        b"%PDF-1.7 not a picture".to_vec(),
        (200, 200),
    );
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "That file is not a picture I can use",
    )
    .await;
    let mut cut = media::png(128, 128);
    cut.truncate(cut.len() / 2);
    fake.send_photo(ALICE, ALICE, "wave", cut, (128, 128));
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "That PNG picture is damaged or cut short",
    )
    .await;
    // Telegram's getFile fails: said plainly, and the bot goes on.
    fake.fail_next("getFile", Failure::BadRequest("file is too big".into()));
    fake.send_photo(ALICE, ALICE, "wave", media::png(128, 128), (128, 128));
    reply(&fake, &serve, mark, ALICE, "I couldn't fetch that picture").await;
    // A document that says it is an image but is not one.
    let doc = fake.put_file(b"<html>hello</html>".to_vec());
    fake.push_update(json!({"message": {
        "message_id": 5000, "date": 1_700_000_000,
        "chat": {"id": ALICE, "type": "private", "first_name": "A"},
        "from": {"id": ALICE, "is_bot": false, "first_name": "A"},
        "document": {"file_id": doc, "file_unique_id": "ud", "file_name": "cat.png",
                     "mime_type": "image/png", "file_size": 18},
        "caption": "wave",
    }}));
    reply(
        &fake,
        &serve,
        mark,
        ALICE,
        "That file is not a picture I can use",
    )
    .await;
    assert_eq!(fal.count(Route::Submit), 0, "no bad picture reached fal");

    // A good one: queued, rendered on Pika's image-to-video, delivered as a valid sticker.
    let picture = media::png(320, 240);
    let mark = fake.calls().len();
    fake.send_photo(
        ALICE,
        ALICE,
        "the ball rolls away -seed 5 -duration 3",
        picture.clone(),
        (320, 240),
    );
    reply(&fake, &serve, mark, ALICE, "Got it").await;
    let calls = fake
        .wait_for(RENDER, |calls| {
            calls[mark..].iter().any(|c| c.is("sendSticker"))
        })
        .await
        .unwrap_or_else(|e| panic!("no delivery: {e}\n{}", serve.log()));
    let sticker = calls[mark..]
        .iter()
        .find(|c| c.is("sendSticker"))
        .expect("a sticker");
    let bytes = &sticker.attached("sticker").expect("uploaded").bytes;
    check(bytes, &TELEGRAM_STICKER).expect("a valid Telegram video sticker");

    let body = media::the_image_to_video_request(&fal, &picture);
    assert_eq!(body["prompt"], "the ball rolls away");
    assert_eq!(body["seed"], 5);

    let log = serve.stop().await;
    assert!(
        !log.contains(FAL_KEY) && !log.contains(&token()),
        "a secret reached the log"
    );
}
