//! Making a clip loop without a visible jump: the clip's tail is cross-faded into its head, so
//! the step from the last frame back to the first is an ordinary step of the motion.

use crate::media::Frames;

/// Mean absolute difference per byte between two frames of the same shape.
pub fn frame_change(a: &[u8], b: &[u8]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    let sum: u64 = a.iter().zip(b).map(|(&x, &y)| x.abs_diff(y) as u64).sum();
    sum as f64 / a.len() as f64
}

/// The change between consecutive frames, the last to the first included.
pub fn cyclic_changes(frames: &Frames) -> Vec<f64> {
    let n = frames.frames.len();
    (0..n)
        .map(|i| frame_change(&frames.frames[i], &frames.frames[(i + 1) % n]))
        .collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Whether the jump from the last frame to the first is no bigger than `factor` times the
/// median change between neighbouring frames.
pub fn loops_smoothly(frames: &Frames, factor: f64) -> bool {
    let changes = cyclic_changes(frames);
    let Some((&wrap, steps)) = changes.split_last() else {
        return true;
    };
    let mut steps = steps.to_vec();
    wrap <= factor * median(&mut steps) + f64::EPSILON
}

/// Cross-fades the last `k` frames into the first `k` (k = a quarter of the clip, at most
/// half a second) when the clip does not already loop smoothly. The result is `k` frames
/// shorter; a clip under 8 frames is returned as it is.
pub fn seamless(frames: &Frames) -> Frames {
    let n = frames.frames.len();
    if n < 8 || loops_smoothly(frames, 1.5) {
        return frames.clone();
    }
    let k = (n / 4).min((frames.fps as usize / 2).max(2));
    let m = n - k;
    // o[t] = f[t] for t ≥ k, and for t < k a blend of f[m + t] (the tail, which o[m - 1] = f[m - 1]
    // leads into) turning into f[t] (which leads into o[k] = f[k]).
    let out = (0..m)
        .map(|t| {
            if t >= k {
                return frames.frames[t].clone();
            }
            let w = t as f64 / k as f64;
            frames.frames[m + t]
                .iter()
                .zip(&frames.frames[t])
                .map(|(&tail, &head)| ((1.0 - w) * tail as f64 + w * head as f64).round() as u8)
                .collect()
        })
        .collect();
    Frames {
        frames: out,
        ..frames.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::PixelFormat;

    /// A bar sliding right across 32 px, never coming back: the worst case for looping.
    fn slide(n: usize) -> Frames {
        let frames = (0..n)
            .map(|t| {
                let x0 = t * 24 / n;
                (0..32)
                    .flat_map(|x| {
                        if (x0..x0 + 8).contains(&x) {
                            [255u8; 3]
                        } else {
                            [0u8; 3]
                        }
                    })
                    .collect()
            })
            .collect();
        Frames {
            width: 32,
            height: 1,
            format: PixelFormat::Rgb8,
            fps: 24,
            frames,
        }
    }

    #[test]
    fn a_one_way_motion_gets_a_smooth_wrap() {
        let clip = slide(48);
        assert!(!loops_smoothly(&clip, 1.5), "the raw clip jumps back");
        let looped = seamless(&clip);
        assert_eq!(looped.frames.len(), 36);
        assert!(
            loops_smoothly(&looped, 1.5),
            "{:?}",
            cyclic_changes(&looped)
        );
    }

    #[test]
    fn a_clip_that_already_loops_is_left_alone() {
        let mut clip = slide(24);
        let back: Vec<_> = clip.frames.iter().rev().cloned().collect();
        clip.frames.extend(back);
        assert!(loops_smoothly(&clip, 1.5));
        assert_eq!(seamless(&clip), clip);
    }
}
