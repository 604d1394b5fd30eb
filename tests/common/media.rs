//! Media the end-to-end tests feed in: a clip fal "renders", pictures users send.

#![allow(dead_code)] // each test binary uses its own part

use loopsmith_engine::media::mp4::{AnimationLimits, encode_animation};
use loopsmith_engine::media::{Frames, PixelFormat};

/// A 5 s, 64×64, 8 fps H.264 MP4 whose frames brighten, as Pika's result.
pub fn five_second_mp4() -> Vec<u8> {
    let frames = Frames {
        width: 64,
        height: 64,
        format: PixelFormat::Rgb8,
        fps: 8,
        frames: (0..40).map(|i| vec![(i * 6) as u8; 64 * 64 * 3]).collect(),
    };
    let limits = AnimationLimits {
        max_side: 1280,
        max_bytes: 10_000_000,
        max_fps: 30,
    };
    encode_animation(&frames, &limits).expect("the test video encodes")
}

/// A real `width`×`height` RGB PNG (a diagonal gradient), from the png crate.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    let mut writer = encoder.write_header().expect("png header");
    let pixels: Vec<u8> = (0..height)
        .flat_map(|y| (0..width).flat_map(move |x| [(x % 256) as u8, (y % 256) as u8, 128]))
        .collect();
    writer.write_image_data(&pixels).expect("png data");
    writer.finish().expect("png end");
    out
}

/// The single image-to-video request the fake fal got: its endpoint, and its `image_url`
/// holding `picture` uploaded to fal storage byte for byte as a PNG. Returns the request body.
pub fn the_image_to_video_request(
    fal: &loopsmith_fakes::fal::FakeFal,
    picture: &[u8],
) -> serde_json::Value {
    use loopsmith_fakes::fal::Route;
    let submits: Vec<_> = fal
        .recorded()
        .into_iter()
        .filter(|r| r.route == Route::Submit)
        .collect();
    assert_eq!(submits.len(), 1);
    assert!(
        submits[0]
            .path
            .ends_with("/fal-ai/pika/v2.2/image-to-video"),
        "{}",
        submits[0].path
    );
    let body = submits[0].json();
    assert!(body.get("aspect_ratio").is_none(), "{body}");
    let url = body["image_url"].as_str().expect("image_url");
    let (content_type, uploaded) = fal.upload(url).expect("uploaded to fal storage");
    assert_eq!(content_type, "image/png");
    assert_eq!(uploaded.as_ref(), picture, "the picture, byte for byte");
    body
}
