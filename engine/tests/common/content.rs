//! Synthetic clips that look like generated video: gradients, moving shapes, mild noise.

use std::f32::consts::TAU;

use loopsmith_engine::media::{Frames, PixelFormat};

/// What a test clip shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Flat,
    Gradient,
    /// Gradient plus moving discs plus mild noise: the benchmark's "generated-looking" clip.
    Generated,
    Noise,
    /// A shape crossing the frame quickly.
    FastMotion,
}

pub const ALL: [Content; 5] = [
    Content::Flat,
    Content::Gradient,
    Content::Generated,
    Content::Noise,
    Content::FastMotion,
];

/// A deterministic clip; `alpha` adds a transparent background around the shapes.
pub fn clip(
    content: Content,
    width: u32,
    height: u32,
    fps: u32,
    frames: usize,
    alpha: bool,
) -> Frames {
    let bpp = if alpha { 4 } else { 3 };
    let mut seed = 0x9E37_79B9_u32;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let data = (0..frames)
        .map(|t| {
            let phase = t as f32 / frames.max(1) as f32;
            let mut f = Vec::with_capacity((width * height) as usize * bpp);
            for y in 0..height {
                for x in 0..width {
                    let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
                    let base = match content {
                        Content::Flat => [200.0, 40.0, 40.0],
                        Content::Noise => [
                            (noise() % 256) as f32,
                            (noise() % 256) as f32,
                            (noise() % 256) as f32,
                        ],
                        _ => [
                            255.0 * fx,
                            255.0 * (0.5 + 0.5 * (TAU * (fy + phase)).sin()),
                            255.0 * (1.0 - fx * fy),
                        ],
                    };
                    let mut px = base;
                    let mut inside = false;
                    if matches!(content, Content::Generated | Content::FastMotion) {
                        let speed = if content == Content::FastMotion {
                            3.0
                        } else {
                            1.0
                        };
                        let cx = 0.5 + 0.3 * (TAU * phase * speed).cos();
                        let cy = 0.5 + 0.3 * (TAU * phase * speed).sin();
                        let d = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt();
                        if d < 0.15 {
                            inside = true;
                            let shade = 1.0 - d / 0.15;
                            px = [255.0 * shade, 220.0, 60.0];
                        }
                    }
                    if content == Content::Generated {
                        let n = (noise() % 7) as f32 - 3.0;
                        px = px.map(|v| v + n);
                    }
                    f.extend(px.map(|v| v.clamp(0.0, 255.0) as u8));
                    if alpha {
                        f.push(if inside || content == Content::Flat {
                            255
                        } else {
                            0
                        });
                    }
                }
            }
            f
        })
        .collect();
    Frames {
        width,
        height,
        format: if alpha {
            PixelFormat::Rgba8
        } else {
            PixelFormat::Rgb8
        },
        fps,
        frames: data,
    }
}
