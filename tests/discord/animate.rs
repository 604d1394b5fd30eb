//! /animate end to end: a picture attached in Discord is checked, downloaded, uploaded to fal
//! storage byte for byte and animated on Pika's image-to-video (the fake fal), and the clip
//! comes back as the interaction's attachment. The local model takes no picture, so the
//! router passes it over for this job.

use std::sync::Arc;

use loopsmith_engine::media::inspect::{Container, inspect};
use loopsmith_fakes::discord::{AttachmentMeta, CommandOption, FakeDiscord, Member};
use loopsmith_fakes::fal::{FakeFal, Media, Route};

use super::support::*;

#[path = "../common/media.rs"]
mod media;

const FAL_KEY: &str = "canary-fal-key-in-discord-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_is_animated_on_pika() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fal = Arc::new(FakeFal::start(FAL_KEY).await.expect("fake fal"));
    fal.put_media(
        "result.mp4",
        Media::File {
            bytes: media::five_second_mp4().into(),
            content_type: "video/mp4".into(),
        },
    );
    let fake = FakeDiscord::new(&token());
    let servers = fake.serve().await.expect("fake Discord");
    let rest = servers.rest_url();
    let extra = [
        ("FAL_KEY", FAL_KEY.to_string()),
        ("LOOPSMITH_PIKA__ENABLED", "true".to_string()),
        ("LOOPSMITH_PIKA__BASE_URL", fal.base_url()),
        ("LOOPSMITH_PIKA__STORAGE_URL", fal.base_url()),
        ("LOOPSMITH_PIKA__MEDIA_HOSTS", "127.0.0.1".to_string()),
        ("LOOPSMITH_PIKA__POLL_INTERVAL_MS", "20".to_string()),
    ];
    let mut serve = Serve::start(dir.path(), &rest, &extra);
    fake.wait_ready(QUICK)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", serve.log()));

    let alice = Member::new(ALICE, "alice");
    // Metadata that passes, bytes that do not: caught after the download, said plainly.
    let fake_png = AttachmentMeta {
        id: 9100,
        filename: "cat.png".into(),
        content_type: Some("image/png".into()),
        size: 20,
        width: Some(200),
        height: Some(200),
        url: fake.host_attachment(&rest, "cat.png", "<html>not a png</html>".into()),
    };
    let token = fake.command(
        GUILD,
        &alice,
        "animate",
        &[
            CommandOption::attachment("image", fake_png),
            CommandOption::string("prompt", "make it dance"),
        ],
    );
    edit_saying(
        &fake,
        &serve,
        &token,
        "That file is not a picture I can use",
    )
    .await;
    assert_eq!(fal.count(Route::Submit), 0);

    let picture = media::png(320, 240);
    let good = AttachmentMeta {
        id: 9101,
        filename: "ball.png".into(),
        content_type: Some("image/png".into()),
        size: picture.len() as u32,
        width: Some(320),
        height: Some(240),
        url: fake.host_attachment(&rest, "ball.png", picture.clone().into()),
    };
    let token = fake.command(
        GUILD,
        &alice,
        "animate",
        &[
            CommandOption::attachment("image", good),
            CommandOption::string("prompt", "the ball rolls away -seed 5"),
        ],
    );
    let (clip, _) = delivery(&fake, &serve, &token).await;
    let info = inspect(&clip.files[0].bytes).expect("a readable clip");
    assert_eq!(
        (info.container, info.codec.as_str()),
        (Container::Mp4, "h264")
    );
    let body = media::the_image_to_video_request(&fal, &picture);
    assert_eq!(body["prompt"], "the ball rolls away");
    assert_eq!(body["seed"], 5);

    let log = serve.stop().await;
    assert!(!log.contains(FAL_KEY), "the fal key reached the log");
}
