//! Layout changes between what the graphs take and what the rest of loopsmith uses.

/// `[L, D]` prompt embedding → `[frames · L, D]`: diffusers' `repeat_interleave(frames)`,
/// since the motion UNet folds frames into the batch of its spatial layers.
pub fn repeat_frames(embedding: &[f32], frames: usize) -> Vec<f32> {
    embedding.repeat(frames)
}

/// `[1, C, F, h, w]` → `[F, C, h, w]`.
pub fn video_to_frame_batch(
    video: &[f32],
    channels: usize,
    frames: usize,
    h: usize,
    w: usize,
) -> Vec<f32> {
    let plane = h * w;
    let mut out = Vec::with_capacity(video.len());
    for f in 0..frames {
        for c in 0..channels {
            let start = (c * frames + f) * plane;
            out.extend_from_slice(&video[start..start + plane]);
        }
    }
    out
}

/// `[N, 3, H, W]` in [−1, 1] → N frames of interleaved RGB in [0, 1], as diffusers'
/// `(x / 2 + 0.5).clamp(0, 1)`.
pub fn planar_images_to_frames(images: &[f32], n: usize, h: usize, w: usize) -> Vec<Vec<f32>> {
    let plane = h * w;
    (0..n)
        .map(|i| {
            let base = i * 3 * plane;
            (0..plane)
                .flat_map(|p| {
                    (0..3).map(move |c| (images[base + c * plane + p] / 2.0 + 0.5).clamp(0.0, 1.0))
                })
                .collect()
        })
        .collect()
}

/// A pixel-space model's output `[1, 3, F, H, W]` in [−1, 1] → frames of RGB in [0, 1].
pub fn channels_first_video_to_frames(
    video: &[f32],
    channels: usize,
    frames: usize,
    h: usize,
    w: usize,
) -> Vec<Vec<f32>> {
    let batch = video_to_frame_batch(video, channels, frames, h, w);
    planar_images_to_frames(&batch, frames, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_move_values_to_the_right_places() {
        // [1, C=2, F=2, 1, 1]: c0f0 c0f1 c1f0 c1f1 → frame-major.
        assert_eq!(
            video_to_frame_batch(&[1.0, 2.0, 3.0, 4.0], 2, 2, 1, 1),
            [1.0, 3.0, 2.0, 4.0]
        );
        assert_eq!(repeat_frames(&[1.0, 2.0], 2), [1.0, 2.0, 1.0, 2.0]);
        // One 1×2 image: R plane [-1, 1], G [0, 0], B [1, -1].
        let frames = planar_images_to_frames(&[-1.0, 1.0, 0.0, 0.0, 1.0, -1.0], 1, 1, 2);
        assert_eq!(frames, vec![vec![0.0, 0.5, 1.0, 1.0, 0.5, 0.0]]);
    }
}
