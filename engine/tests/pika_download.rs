//! The result download: every way a result URL or its host can misbehave is refused with a
//! plain sentence, reading no more than the cap, and the request stays paid for.

mod pika_common;

use std::time::Duration;

use bytes::Bytes;
use loopsmith_engine::BackendError;
use loopsmith_engine::store::SpendState;
use loopsmith_fakes::fal::{Media, Outcome, Route, Step};
use pika_common::*;

/// Renders one job whose result is `media` (served as `result.mp4`) and returns the error.
async fn fails_with(setup: &Setup, media: Option<Media>) -> BackendError {
    setup.fal.set_walk(vec![Step::Completed]);
    if let Some(media) = media {
        setup.fal.put_media("result.mp4", media);
    }
    let err = setup
        .render_one()
        .await
        .expect_err("the download is refused");
    // fal made the video; it is paid for whatever happens to the download.
    assert_eq!(setup.entries(), vec![(1, SpendState::Settled, 200_000)]);
    assert!(err.retry_elsewhere());
    err
}

fn prefix(message: &str) -> String {
    format!("The finished video could not be fetched: {message}.")
}

#[tokio::test]
async fn an_oversized_result_is_refused_by_its_declared_length() {
    let mut setup = Setup::new().await;
    setup.options.download.max_bytes = 1024 * 1024;
    let err = fails_with(
        &setup,
        Some(Media::File {
            bytes: Bytes::from(vec![0u8; 3 * 1024 * 1024]),
            content_type: "video/mp4".into(),
        }),
    )
    .await;
    assert_eq!(
        err.user_message(),
        prefix("it is larger than the 1 MiB limit")
    );
}

#[tokio::test]
async fn an_oversized_result_without_a_length_is_refused_while_streaming() {
    let mut setup = Setup::new().await;
    setup.options.download.max_bytes = 1024 * 1024;
    let err = fails_with(
        &setup,
        Some(Media::Chunked {
            bytes: Bytes::from(vec![0u8; 3 * 1024 * 1024]),
            content_type: "video/mp4".into(),
        }),
    )
    .await;
    assert_eq!(
        err.user_message(),
        prefix("it is larger than the 1 MiB limit")
    );
}

#[tokio::test]
async fn a_result_that_is_not_a_video_is_refused() {
    let setup = Setup::new().await;
    let err = fails_with(
        &setup,
        Some(Media::File {
            bytes: Bytes::from_static(b"<html>not found</html>"),
            content_type: "text/html; charset=utf-8".into(),
        }),
    )
    .await;
    assert_eq!(err.user_message(), prefix("it is `text/html`, not a video"));

    let setup = Setup::new().await;
    let err = fails_with(
        &setup,
        Some(Media::File {
            bytes: Bytes::from_static(b"\x1aE\xdf\xa3 a webm, or anything but an mp4"),
            content_type: "application/octet-stream".into(),
        }),
    )
    .await;
    assert_eq!(err.user_message(), prefix("it is not an MP4 video"));
}

#[tokio::test]
async fn a_redirect_off_the_allow_list_is_not_followed() {
    let setup = Setup::new().await;
    // `localhost` is the same server, but only 127.0.0.1 is listed.
    let elsewhere = format!(
        "http://localhost:{}/media/real.mp4",
        setup.fal.server.addr.port()
    );
    setup.fal.put_media(
        "real.mp4",
        Media::File {
            bytes: five_second_mp4(),
            content_type: "video/mp4".into(),
        },
    );
    let err = fails_with(
        &setup,
        Some(Media::Redirect {
            location: elsewhere,
        }),
    )
    .await;
    assert_eq!(
        err.user_message(),
        prefix("a redirect pointed to localhost, which is not an allowed media host")
    );
    assert_eq!(
        setup.fal.count(Route::Media),
        1,
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn a_redirect_within_the_allow_list_is_followed() {
    let setup = Setup::new().await;
    setup.fal.set_walk(vec![Step::Completed]);
    setup.fal.put_media(
        "real.mp4",
        Media::File {
            bytes: five_second_mp4(),
            content_type: "video/mp4".into(),
        },
    );
    setup.fal.put_media(
        "result.mp4",
        Media::Redirect {
            location: "/media/real.mp4".into(),
        },
    );
    setup.render_one().await.expect("renders");
    assert_eq!(setup.fal.count(Route::Media), 2);
}

#[tokio::test]
async fn a_result_url_off_the_allow_list_is_never_fetched() {
    let setup = Setup::new().await;
    setup.fal.set_outcome(Outcome::VideoAt {
        url: "https://attacker.example/steal.mp4".into(),
    });
    let err = fails_with(&setup, None).await;
    assert_eq!(
        err.user_message(),
        prefix("it is on attacker.example, which is not an allowed media host")
    );
    let setup = Setup::new().await;
    setup.fal.set_outcome(Outcome::VideoAt {
        url: "http://169.254.169.254/latest/meta-data".into(),
    });
    let err = fails_with(&setup, None).await;
    assert_eq!(
        err.user_message(),
        prefix("it is on 169.254.169.254, which is not an allowed media host")
    );
    assert_eq!(setup.fal.count(Route::Media), 0);
}

#[tokio::test]
async fn a_slow_drip_is_cut_off_by_the_download_allowance() {
    let mut setup = Setup::new().await;
    setup.options.download.total_timeout = Duration::from_millis(400);
    setup.options.download.stall_timeout = Duration::from_secs(5);
    let err = fails_with(
        &setup,
        Some(Media::Drip {
            chunk: Bytes::from_static(b"\0\0\0\x20ftypisom"),
            every: Duration::from_millis(20),
        }),
    )
    .await;
    assert_eq!(
        err.user_message(),
        prefix("it took longer than the 0.4 s allowed")
    );
}

#[tokio::test]
async fn a_stalled_download_is_cut_off() {
    let mut setup = Setup::new().await;
    setup.options.download.stall_timeout = Duration::from_millis(300);
    let err = fails_with(
        &setup,
        Some(Media::Stall {
            first: Bytes::from_static(b"\0\0\0\x20ftypisom"),
        }),
    )
    .await;
    assert_eq!(err.user_message(), prefix("no data arrived for 0.3 s"));
}

#[tokio::test]
async fn a_passing_fault_of_the_media_host_is_waited_out_because_the_video_is_paid_for() {
    let setup = Setup::new().await;
    setup.fal.set_walk(vec![Step::Completed]);
    // A 503, then a 429 asking for 2 s; the third try gets the file.
    setup
        .fal
        .push_fault(Route::Media, loopsmith_fakes::fal::Fault::unavailable());
    setup
        .fal
        .push_fault(Route::Media, loopsmith_fakes::fal::Fault::rate_limited(2));
    let clip = setup.render_one().await.expect("the third download works");
    assert!(!clip.frames.is_empty());
    assert_eq!(setup.fal.count(Route::Media), 3);
    assert!(
        setup.clock.sleeps().contains(&Duration::from_secs(2)),
        "Retry-After honoured: {:?}",
        setup.clock.sleeps()
    );
    assert_eq!(setup.entries(), vec![(1, SpendState::Settled, 200_000)]);
}

#[tokio::test]
async fn a_media_host_that_keeps_failing_is_given_up_on_after_the_retry_bound() {
    let setup = Setup::new().await;
    for _ in 0..10 {
        setup
            .fal
            .push_fault(Route::Media, loopsmith_fakes::fal::Fault::unavailable());
    }
    let err = fails_with(&setup, None).await;
    assert_eq!(err.user_message(), prefix("the media host answered 503"));
    assert_eq!(
        setup.fal.count(Route::Media),
        setup.options.retry.max_attempts as usize
    );
}
