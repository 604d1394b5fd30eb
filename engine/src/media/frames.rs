//! Frames in memory and the geometric and timing operations every encoder needs: fitting into
//! a platform's box, changing the frame rate, trimming or speeding up to a duration.

pub use loopsmith_protocol::{Fit, Timing};

use crate::backend::Clip;
use crate::media::MediaError;

/// How pixels are laid out in each frame: 8 bits per channel, row-major, no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb8,
    /// Straight (not premultiplied) alpha.
    Rgba8,
}

impl PixelFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb8 => 3,
            PixelFormat::Rgba8 => 4,
        }
    }
}

/// Frames plus their shape and rate.
#[derive(Clone, PartialEq)]
pub struct Frames {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub fps: u32,
    pub frames: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Frames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Frames({}x{} {:?}, {} frames at {} fps)",
            self.width,
            self.height,
            self.format,
            self.frames.len(),
            self.fps
        )
    }
}

impl Frames {
    pub fn from_clip(clip: &Clip) -> Frames {
        Frames {
            width: clip.width,
            height: clip.height,
            format: PixelFormat::Rgb8,
            fps: clip.fps,
            frames: clip.frames.clone(),
        }
    }

    /// Checks that the frames are what their fields promise.
    pub fn validate(&self) -> Result<(), MediaError> {
        let bad = |why: String| Err(MediaError::InvalidFrames(why));
        if self.width == 0 || self.height == 0 {
            return bad(format!("{}x{} has no pixels", self.width, self.height));
        }
        if self.fps == 0 {
            return bad("the frame rate is 0".to_string());
        }
        if self.frames.is_empty() {
            return bad("there are no frames".to_string());
        }
        let expected = self.frame_bytes();
        if let Some(i) = self.frames.iter().position(|f| f.len() != expected) {
            return bad(format!(
                "frame {i} has {} bytes; {}x{} {:?} needs {expected}",
                self.frames[i].len(),
                self.width,
                self.height,
                self.format
            ));
        }
        Ok(())
    }

    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * self.format.bytes_per_pixel()
    }

    pub fn duration_secs(&self) -> f64 {
        self.frames.len() as f64 / self.fps as f64
    }

    pub fn has_alpha(&self) -> bool {
        self.format == PixelFormat::Rgba8
    }

    /// The same frames with alpha dropped (composited onto black where transparent).
    pub fn to_rgb(&self) -> Frames {
        if self.format == PixelFormat::Rgb8 {
            return self.clone();
        }
        let frames = self
            .frames
            .iter()
            .map(|f| {
                f.chunks_exact(4)
                    .flat_map(|p| {
                        let a = p[3] as u32;
                        [0, 1, 2].map(|c| ((p[c] as u32 * a + 127) / 255) as u8)
                    })
                    .collect()
            })
            .collect();
        Frames {
            format: PixelFormat::Rgb8,
            frames,
            ..self.clone()
        }
    }

    /// The same frames with an opaque alpha channel added.
    pub fn to_rgba(&self) -> Frames {
        if self.format == PixelFormat::Rgba8 {
            return self.clone();
        }
        let frames = self
            .frames
            .iter()
            .map(|f| {
                f.chunks_exact(3)
                    .flat_map(|p| [p[0], p[1], p[2], 255])
                    .collect()
            })
            .collect();
        Frames {
            format: PixelFormat::Rgba8,
            frames,
            ..self.clone()
        }
    }

    /// The size a frame gets inside a `max_w`×`max_h` box: the longer side touches the box,
    /// aspect kept, both sides even (4:2:0 chroma needs it) and at least 2.
    pub fn fitted_size(&self, max_w: u32, max_h: u32) -> (u32, u32) {
        let scale = (max_w as f64 / self.width as f64).min(max_h as f64 / self.height as f64);
        let w = ((self.width as f64 * scale).round() as u32).clamp(2, max_w) & !1;
        let h = ((self.height as f64 * scale).round() as u32).clamp(2, max_h) & !1;
        (w.max(2), h.max(2))
    }

    /// Scales (and pads or crops) into exactly `box_w`×`box_h` with `fit`. With `Fit::Pad`
    /// and `exact == false`, the result is only as large as the scaled picture (one side equal
    /// to the box, the other smaller), which is what Telegram's "one side 512" wants.
    pub fn fit_into(&self, box_w: u32, box_h: u32, fit: Fit, exact: bool) -> Frames {
        match fit {
            Fit::Pad => {
                let (w, h) = self.fitted_size(box_w, box_h);
                let scaled = self.resize(w, h);
                if !exact || (w == box_w && h == box_h) {
                    scaled
                } else {
                    scaled.pad_to(box_w, box_h)
                }
            }
            Fit::Crop => {
                // Cut the source to the box's aspect first, then scale: cheaper and sharper.
                let target = box_w as f64 / box_h as f64;
                let source = self.width as f64 / self.height as f64;
                let (cw, ch) = if source > target {
                    (
                        ((self.height as f64 * target).round() as u32).max(1),
                        self.height,
                    )
                } else {
                    (
                        self.width,
                        ((self.width as f64 / target).round() as u32).max(1),
                    )
                };
                let x = (self.width - cw) / 2;
                let y = (self.height - ch) / 2;
                self.crop(x, y, cw, ch).resize(box_w, box_h)
            }
        }
    }

    fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Frames {
        let bpp = self.format.bytes_per_pixel();
        let frames = self
            .frames
            .iter()
            .map(|f| {
                let mut out = Vec::with_capacity(w as usize * h as usize * bpp);
                for row in y..y + h {
                    let start = (row as usize * self.width as usize + x as usize) * bpp;
                    out.extend_from_slice(&f[start..start + w as usize * bpp]);
                }
                out
            })
            .collect();
        Frames {
            width: w,
            height: h,
            frames,
            ..self.clone()
        }
    }

    fn pad_to(&self, box_w: u32, box_h: u32) -> Frames {
        let bpp = self.format.bytes_per_pixel();
        let x = ((box_w - self.width) / 2) as usize;
        let y = ((box_h - self.height) / 2) as usize;
        let frames = self
            .frames
            .iter()
            .map(|f| {
                // Transparent where there is alpha; black otherwise.
                let mut out = vec![0u8; box_w as usize * box_h as usize * bpp];
                for row in 0..self.height as usize {
                    let src = row * self.width as usize * bpp;
                    let dst = ((row + y) * box_w as usize + x) * bpp;
                    out[dst..dst + self.width as usize * bpp]
                        .copy_from_slice(&f[src..src + self.width as usize * bpp]);
                }
                out
            })
            .collect();
        Frames {
            width: box_w,
            height: box_h,
            frames,
            ..self.clone()
        }
    }

    /// Resamples every frame to `w`×`h`. Upscaling by 2× or more uses nearest-neighbour, so a
    /// small model's output becomes crisp pixel art instead of a blur; everything else uses a
    /// box filter (area average) when shrinking and bilinear when growing a little.
    pub fn resize(&self, w: u32, h: u32) -> Frames {
        if (w, h) == (self.width, self.height) {
            return self.clone();
        }
        let sx = w as f64 / self.width as f64;
        let sy = h as f64 / self.height as f64;
        let frames = if sx >= 2.0 && sy >= 2.0 {
            self.frames.iter().map(|f| self.nearest(f, w, h)).collect()
        } else {
            self.frames
                .iter()
                .map(|f| self.area_or_bilinear(f, w, h))
                .collect()
        };
        Frames {
            width: w,
            height: h,
            frames,
            ..self.clone()
        }
    }

    fn nearest(&self, f: &[u8], w: u32, h: u32) -> Vec<u8> {
        let bpp = self.format.bytes_per_pixel();
        let mut out = Vec::with_capacity(w as usize * h as usize * bpp);
        for y in 0..h as usize {
            let sy = (y * self.height as usize) / h as usize;
            for x in 0..w as usize {
                let sx = (x * self.width as usize) / w as usize;
                let i = (sy * self.width as usize + sx) * bpp;
                out.extend_from_slice(&f[i..i + bpp]);
            }
        }
        out
    }

    /// A separable tent filter: bilinear when enlarging, and widened to the scale factor when
    /// shrinking so every source pixel contributes (no aliasing). Weights are computed once
    /// per axis, not per pixel.
    fn area_or_bilinear(&self, f: &[u8], w: u32, h: u32) -> Vec<u8> {
        let bpp = self.format.bytes_per_pixel();
        let (sw, sh) = (self.width as usize, self.height as usize);
        let (dw, dh) = (w as usize, h as usize);
        let xs = tent_weights(sw, dw);
        let ys = tent_weights(sh, dh);
        // Horizontal pass into floats, then vertical pass into bytes.
        let mut rows = vec![0f32; dw * sh * bpp];
        for y in 0..sh {
            let src = &f[y * sw * bpp..(y + 1) * sw * bpp];
            let dst = &mut rows[y * dw * bpp..(y + 1) * dw * bpp];
            for (x, taps) in xs.iter().enumerate() {
                for c in 0..bpp {
                    dst[x * bpp + c] = taps
                        .iter()
                        .map(|&(i, wt)| src[i * bpp + c] as f32 * wt)
                        .sum();
                }
            }
        }
        let mut out = vec![0u8; dw * dh * bpp];
        for (y, taps) in ys.iter().enumerate() {
            let dst = &mut out[y * dw * bpp..(y + 1) * dw * bpp];
            let mut acc = vec![0f32; dw * bpp];
            for &(row, wt) in taps {
                let src = &rows[row * dw * bpp..(row + 1) * dw * bpp];
                for (a, &v) in acc.iter_mut().zip(src) {
                    *a += v * wt;
                }
            }
            for (d, a) in dst.iter_mut().zip(acc) {
                *d = a.round().clamp(0.0, 255.0) as u8;
            }
        }
        out
    }

    /// The clip at another frame rate, same duration: frames are picked (repeated or dropped)
    /// at the new instants.
    pub fn with_fps(&self, fps: u32) -> Frames {
        if fps == self.fps || fps == 0 {
            return self.clone();
        }
        let count =
            ((self.frames.len() as f64 * fps as f64 / self.fps as f64).round() as usize).max(1);
        let frames = (0..count)
            .map(|i| {
                let src = ((i as f64 * self.fps as f64 / fps as f64).floor() as usize)
                    .min(self.frames.len() - 1);
                self.frames[src].clone()
            })
            .collect();
        Frames {
            fps,
            frames,
            ..self.clone()
        }
    }

    /// At most `max_frames` frames, by `timing`: the beginning (trim) or evenly picked frames
    /// of the whole clip (speed-up).
    pub fn limit_frames(&self, max_frames: usize, timing: Timing) -> Frames {
        let max_frames = max_frames.max(1);
        if self.frames.len() <= max_frames {
            return self.clone();
        }
        let frames = match timing {
            Timing::Trim => self.frames[..max_frames].to_vec(),
            Timing::SpeedUp => (0..max_frames)
                .map(|i| self.frames[i * self.frames.len() / max_frames].clone())
                .collect(),
        };
        Frames {
            frames,
            ..self.clone()
        }
    }

    /// Frames no longer than `max_secs` (strictly shorter when `strict`), by `timing`.
    pub fn limit_duration(&self, max_secs: f64, timing: Timing, strict: bool) -> Frames {
        let exact = max_secs * self.fps as f64;
        let mut max_frames = exact.floor() as usize;
        if strict && (max_frames as f64) >= exact {
            max_frames = max_frames.saturating_sub(1);
        }
        self.limit_frames(max_frames, timing)
    }
}

/// For each output index, the source indices and normalised weights of a tent filter whose
/// radius is one source pixel, or the scale factor when shrinking.
fn tent_weights(src: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = src as f64 / dst as f64;
    let radius = scale.max(1.0);
    (0..dst)
        .map(|i| {
            let centre = (i as f64 + 0.5) * scale - 0.5;
            let first = (centre - radius).ceil() as i64;
            let last = (centre + radius).floor() as i64;
            let mut taps: Vec<(usize, f32)> = (first..=last)
                .filter_map(|j| {
                    let weight = 1.0 - (j as f64 - centre).abs() / radius;
                    (weight > 0.0).then(|| (j.clamp(0, src as i64 - 1) as usize, weight as f32))
                })
                .collect();
            if taps.is_empty() {
                taps.push((centre.round().clamp(0.0, src as f64 - 1.0) as usize, 1.0));
            }
            let total: f32 = taps.iter().map(|t| t.1).sum();
            taps.iter_mut().for_each(|t| t.1 /= total);
            taps
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, n: usize, fps: u32) -> Frames {
        Frames {
            width: w,
            height: h,
            format: PixelFormat::Rgb8,
            fps,
            frames: (0..n)
                .map(|i| vec![i as u8; (w * h * 3) as usize])
                .collect(),
        }
    }

    #[test]
    fn fitting_keeps_aspect_with_one_side_on_the_box() {
        let wide = solid(1280, 720, 1, 24);
        assert_eq!(wide.fitted_size(512, 512), (512, 288));
        let tall = solid(720, 1280, 1, 24);
        assert_eq!(tall.fitted_size(512, 512), (288, 512));
        let tiny = solid(64, 64, 1, 24);
        let fitted = tiny.fit_into(512, 512, Fit::Pad, false);
        assert_eq!((fitted.width, fitted.height), (512, 512));
        fitted.validate().expect("valid");
        let padded = wide.fit_into(512, 512, Fit::Pad, true);
        assert_eq!((padded.width, padded.height), (512, 512));
        let cropped = wide.fit_into(320, 320, Fit::Crop, true);
        assert_eq!((cropped.width, cropped.height), (320, 320));
        cropped.validate().expect("valid");
    }

    #[test]
    fn upscaling_small_frames_is_crisp() {
        let mut f = solid(2, 1, 1, 8);
        f.frames[0] = vec![0, 0, 0, 255, 255, 255];
        let big = f.resize(8, 4);
        // Every pixel is one of the two source colours: no blur.
        assert!(big.frames[0].iter().all(|&v| v == 0 || v == 255));
        assert_eq!(&big.frames[0][..12], &[0; 12]);
        assert_eq!(&big.frames[0][12..24], &[255; 12]);
    }

    #[test]
    fn shrinking_averages() {
        let mut f = solid(2, 2, 1, 8);
        f.frames[0] = vec![0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0];
        let one = f.resize(1, 1);
        assert!(
            (one.frames[0][0] as i32 - 128).abs() <= 1,
            "{:?}",
            one.frames[0]
        );
    }

    #[test]
    fn timing_changes() {
        let clip = solid(2, 2, 72, 24); // 3 s
        let trimmed = clip.limit_duration(3.0, Timing::Trim, true);
        assert_eq!(trimmed.frames.len(), 71);
        assert!(trimmed.duration_secs() < 3.0);
        assert_eq!(trimmed.frames[70][0], 70);
        let fast = solid(2, 2, 240, 24).limit_duration(3.0, Timing::SpeedUp, true);
        assert_eq!(fast.frames.len(), 71);
        assert!(
            fast.frames.last().expect("frames")[0] > 200,
            "covers the whole clip"
        );
        let half = clip.with_fps(12);
        assert_eq!((half.frames.len(), half.fps), (36, 12));
        assert_eq!(half.frames[1][0], 2);
    }

    #[test]
    fn alpha_round_trip() {
        let mut f = solid(1, 1, 1, 8);
        f.frames[0] = vec![200, 100, 50];
        let rgba = f.to_rgba();
        assert_eq!(rgba.frames[0], vec![200, 100, 50, 255]);
        assert_eq!(rgba.to_rgb().frames[0], vec![200, 100, 50]);
    }
}
