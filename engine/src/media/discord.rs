//! Discord server stickers: APNG or GIF, exactly 320×320, at most 512 KiB, at most 5 s,
//! looping forever.
//!
//! Generated clips are gradients and smooth motion, which palette formats store badly unless
//! the palette is shared by all frames and only what changed is stored. So there is one palette
//! for the whole clip (Wu in Oklab plus a refinement step, see `palette`), each frame is the
//! rectangle that changed with unchanged pixels transparent (see `plan`), and when the result
//! is too big a ladder of cheaper variants is walked: fewer frames per second, fewer colours,
//! and only as a last resort a smaller picture inside the 320×320 canvas. A size model picks
//! the next rung from what the last attempt weighed, so most clips take one to three encodes.
//!
//! Every result is decoded again with the png or gif crate and checked against Discord's rules
//! before it is returned.

mod apng;
mod gif;
mod palette;
mod plan;

use crate::media::{Fit, Frames, MediaError, Timing};
use palette::Pixels;

/// Discord's upload limit for a sticker.
pub const MAX_BYTES: usize = 524_288;
/// A sticker is exactly `SIDE`×`SIDE`.
pub const SIDE: u32 = 320;
/// The longest animation Discord accepts, in seconds.
pub const MAX_SECS: f64 = 5.0;

const WHAT: &str = "Discord sticker";

/// The frame rates tried, best first. Twelve is already smooth for a sticker, and half of 24
/// leaves each frame twice the bytes.
const FPS_STEPS: [u32; 5] = [12, 10, 8, 6, 5];
/// Palette sizes tried, best first, the transparent entry included.
const COLOUR_STEPS: [u16; 5] = [256, 128, 64, 32, 16];
/// The last resort: the picture drawn this large inside the transparent 320×320 canvas.
const SHRINK_SIDES: [u32; 8] = [288, 256, 224, 192, 160, 128, 96, 64];
/// Palettes this small band badly on gradients, so they are always dithered. Larger ones are
/// dithered only when the plain sticker leaves room for it (see [`DITHER_ROOM`]): dithering
/// costs 1.2× (smooth clips) to 1.7× (grainy ones) the bytes, which a clip near the limit
/// better spends on frame rate.
const DITHER_UP_TO: u16 = 64;
/// A plain sticker this many times smaller than the limit is tried again dithered.
const DITHER_ROOM: f64 = 1.8;
/// Aim this far under the limit when jumping ahead, so a slightly optimistic estimate does not
/// cost another encode.
const AIM: f64 = 0.92;
/// After a jump that fitted, step back one rung when the estimate says this much would still
/// fit: one more encode for a visibly better sticker.
const STEP_BACK_AIM: f64 = 0.97;
/// Halving the frame rate less than halves the bytes: the frames left differ more.
const FRAMES_EXPONENT: f64 = 0.8;

/// How the clip goes into Discord's square and time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiscordStickerOptions {
    pub fit: Fit,
    pub timing: Timing,
}

/// The two file types Discord takes for animated stickers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickerFormat {
    Apng,
    Gif,
}

impl StickerFormat {
    fn codec(self) -> &'static str {
        match self {
            StickerFormat::Apng => "apng",
            StickerFormat::Gif => "gif",
        }
    }
}

/// A finished, checked sticker and the variant that fitted.
#[derive(Clone, PartialEq, Eq)]
pub struct EncodedSticker {
    pub bytes: Vec<u8>,
    pub fps: u32,
    /// Palette entries allowed, the transparent one included.
    pub colours: u16,
    /// Whether gradients were ordered-dithered.
    pub dithered: bool,
    /// The box the picture was fitted into; [`SIDE`] unless it had to shrink.
    pub picture_side: u32,
    /// Frames stored (repeated frames are folded into the one before).
    pub stored_frames: usize,
    /// Encodes it took to find a variant that fits.
    pub attempts: u32,
}

impl std::fmt::Debug for EncodedSticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EncodedSticker({} bytes, {} fps, {} colours{}, picture {}, {} frames stored, {} attempts)",
            self.bytes.len(),
            self.fps,
            self.colours,
            if self.dithered { " dithered" } else { "" },
            self.picture_side,
            self.stored_frames,
            self.attempts
        )
    }
}

/// An animated PNG sticker: 320×320, at most 5 s and [`MAX_BYTES`], looping forever.
pub fn encode_apng(frames: &Frames, opts: &DiscordStickerOptions) -> Result<Vec<u8>, MediaError> {
    encode(frames, opts, StickerFormat::Apng).map(|s| s.bytes)
}

/// A GIF sticker: 320×320, at most 5 s and [`MAX_BYTES`], looping forever.
pub fn encode_gif(frames: &Frames, opts: &DiscordStickerOptions) -> Result<Vec<u8>, MediaError> {
    encode(frames, opts, StickerFormat::Gif).map(|s| s.bytes)
}

/// Encodes `frames` as a sticker in `format`, reporting which variant fitted.
pub fn encode(
    frames: &Frames,
    opts: &DiscordStickerOptions,
    format: StickerFormat,
) -> Result<EncodedSticker, MediaError> {
    frames.validate()?;
    let fps0 = frames.fps.min(FPS_STEPS[0]);
    let picked = pick_source(frames.frames.len(), frames.fps, fps0, opts.timing);
    let rungs = ladder(fps0, picked.len());
    let weights: Vec<f64> = rungs
        .iter()
        .map(|r| weight(r, picked.len(), fps0))
        .collect();
    let mut job = Job {
        source: frames,
        picked,
        fps0,
        fit: opts.fit,
        format,
        prepared: None,
        mapped: None,
        attempts: 0,
    };
    let mut tried = vec![false; rungs.len()];
    let mut smallest = usize::MAX;
    let mut at = 0;
    let (mut rung, mut bytes, mut stored) = loop {
        let rung = rungs[at];
        let (bytes, stored) = job.attempt(rung)?;
        tried[at] = true;
        smallest = smallest.min(bytes.len());
        let estimate = |to: usize| bytes.len() as f64 * weights[to] / weights[at];
        if bytes.len() <= MAX_BYTES {
            // Jumped past a rung that may fit too: one encode to find out.
            if at > 0 && !tried[at - 1] && estimate(at - 1) <= STEP_BACK_AIM * MAX_BYTES as f64 {
                let better = rungs[at - 1];
                let (b, s) = job.attempt(better)?;
                if b.len() <= MAX_BYTES {
                    break (better, b, s);
                }
            }
            break (rung, bytes, stored);
        }
        let Some(next) = (at + 1..rungs.len())
            .find(|&to| estimate(to) <= AIM * MAX_BYTES as f64)
            .or((at + 1 < rungs.len()).then_some(rungs.len() - 1))
        else {
            return Err(MediaError::TooBig {
                what: WHAT,
                bytes: smallest,
                limit: MAX_BYTES,
            });
        };
        at = next;
    };
    let dithered = Rung {
        dither: true,
        ..rung
    };
    if !rung.dither
        && bytes.len() as f64 * DITHER_ROOM <= MAX_BYTES as f64
        && job.dithering_changes(dithered)?
    {
        let (b, s) = job.attempt(dithered)?;
        if b.len() <= MAX_BYTES {
            (rung, bytes, stored) = (dithered, b, s);
        }
    }
    check(format, &bytes, stored)?;
    Ok(EncodedSticker {
        bytes,
        fps: rung.fps,
        colours: rung.colours,
        dithered: rung.dither,
        picture_side: rung.side,
        stored_frames: stored,
        attempts: job.attempts,
    })
}

/// The size model: bytes grow with the stored frames (less than linearly, see
/// [`FRAMES_EXPONENT`]), with the bits per palette index, and with the picture's area. Only
/// ratios are used, anchored on the last measured size.
fn weight(r: &Rung, frames0: usize, fps0: u32) -> f64 {
    let frames = rate_count(frames0, fps0, r.fps) as f64;
    let area = (r.side as f64 / SIDE as f64).powi(2);
    frames.powf(FRAMES_EXPONENT) * (r.colours as f64).log2() * area
}

/// Decodes an encoded sticker again and checks it against Discord's rules.
fn check(format: StickerFormat, bytes: &[u8], frames: usize) -> Result<(), MediaError> {
    if bytes.len() > MAX_BYTES {
        return Err(MediaError::Violation {
            what: WHAT,
            rule: format!("{} bytes is over {MAX_BYTES}", bytes.len()),
        });
    }
    match format {
        StickerFormat::Apng => apng::check(bytes, frames),
        StickerFormat::Gif => gif::check(bytes, frames),
    }
}

/// One variant of the sticker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rung {
    fps: u32,
    colours: u16,
    side: u32,
    dither: bool,
}

/// The variants, best first: frame rate and colours step down in turn, then the picture
/// shrinks at the lowest of both. Rungs that would store the same thing are left out.
fn ladder(fps0: u32, frames0: usize) -> Vec<Rung> {
    let mut rates = vec![fps0];
    rates.extend(FPS_STEPS.iter().copied().filter(|&f| f < fps0));
    let (mut i, mut j) = (0, 0);
    let mut rungs = vec![Rung {
        fps: rates[0],
        colours: COLOUR_STEPS[0],
        side: SIDE,
        dither: COLOUR_STEPS[0] <= DITHER_UP_TO,
    }];
    while i + 1 < rates.len() || j + 1 < COLOUR_STEPS.len() {
        if i + 1 < rates.len() && (i <= j || j + 1 >= COLOUR_STEPS.len()) {
            i += 1;
        } else {
            j += 1;
        }
        let rung = Rung {
            fps: rates[i],
            colours: COLOUR_STEPS[j],
            side: SIDE,
            dither: COLOUR_STEPS[j] <= DITHER_UP_TO,
        };
        let same_as_last = rungs.last().is_some_and(|last| {
            last.colours == rung.colours
                && last.dither == rung.dither
                && rate_count(frames0, fps0, last.fps) == rate_count(frames0, fps0, rung.fps)
        });
        if same_as_last {
            if let Some(last) = rungs.last_mut() {
                // Keep the lower rate: same frames, and the later rungs start from it.
                last.fps = rung.fps;
            }
        } else {
            rungs.push(rung);
        }
    }
    let last = rungs[rungs.len() - 1];
    rungs.extend(SHRINK_SIDES.iter().map(|&side| Rung { side, ..last }));
    rungs
}

/// How many frames `frames` frames at `from` fps become at `to` fps (never more than before).
fn rate_count(frames: usize, from: u32, to: u32) -> usize {
    if to >= from {
        return frames;
    }
    ((frames as f64 * to as f64 / from as f64).round() as usize).clamp(1, frames)
}

/// Which of `frames` frames are shown at `to` fps, for frames at `from` fps.
fn rate_pick(frames: usize, from: u32, to: u32) -> Vec<usize> {
    let count = rate_count(frames, from, to);
    if count == frames {
        return (0..frames).collect();
    }
    (0..count)
        .map(|i| ((i as f64 * from as f64 / to as f64).floor() as usize).min(frames - 1))
        .collect()
}

/// The source frames a sticker at `fps` shows: at most [`MAX_SECS`] of the clip by `timing`
/// (as [`Frames::limit_duration`] picks them), then resampled to `fps` (as
/// [`Frames::with_fps`] does). Only indices, so long clips are not copied.
fn pick_source(frames: usize, src_fps: u32, fps: u32, timing: Timing) -> Vec<usize> {
    let max = ((MAX_SECS * src_fps as f64).floor() as usize).max(1);
    let kept: Vec<usize> = if frames <= max {
        (0..frames).collect()
    } else {
        match timing {
            Timing::Trim => (0..max).collect(),
            Timing::SpeedUp => (0..max).map(|i| i * frames / max).collect(),
        }
    };
    rate_pick(kept.len(), src_fps, fps)
        .into_iter()
        .map(|i| kept[i])
        .collect()
}

/// The clip fitted into a picture box and turned into keys, at one frame rate.
struct Prepared {
    side: u32,
    fps: u32,
    pixels: Pixels,
}

/// A palette for [`Prepared`], and its frames mapped to it once an attempt needs them.
struct Mapped {
    colours: u16,
    dither: bool,
    palette: palette::Palette,
    frames: Option<Vec<Vec<u8>>>,
}

/// What stays between attempts, so each rung redoes only what it changes.
struct Job<'a> {
    source: &'a Frames,
    /// Source frames at `fps0`, the first rung's rate.
    picked: Vec<usize>,
    fps0: u32,
    fit: Fit,
    format: StickerFormat,
    prepared: Option<Prepared>,
    mapped: Option<Mapped>,
    attempts: u32,
}

impl Job<'_> {
    /// Makes `prepared` and `mapped` (without frames) match `rung`.
    fn palette_for(&mut self, rung: Rung) -> Result<(), MediaError> {
        if self.prepared.as_ref().is_none_or(|p| p.side != rung.side) {
            self.mapped = None;
            self.prepared = Some(self.prepare(rung)?);
        }
        let Some(prepared) = &self.prepared else {
            return Err(internal("the clip was not prepared"));
        };
        let stale = self
            .mapped
            .as_ref()
            .is_none_or(|m| m.colours != rung.colours || m.dither != rung.dither);
        if stale {
            self.mapped = Some(Mapped {
                colours: rung.colours,
                dither: rung.dither,
                palette: prepared.pixels.palette(rung.colours, rung.dither)?,
                frames: None,
            });
        }
        Ok(())
    }

    /// Whether dithering `rung` would change any pixel (a clip of flat colours has nothing to
    /// dither, and needs no second encode to find that out).
    fn dithering_changes(&mut self, rung: Rung) -> Result<bool, MediaError> {
        self.palette_for(rung)?;
        Ok(self.mapped.as_ref().is_some_and(|m| m.palette.dithers()))
    }

    /// Encodes one rung: the bytes and how many frames were stored.
    fn attempt(&mut self, rung: Rung) -> Result<(Vec<u8>, usize), MediaError> {
        self.palette_for(rung)?;
        let (Some(prepared), Some(mapped)) = (&self.prepared, &mut self.mapped) else {
            return Err(internal("the clip was not mapped to a palette"));
        };
        let frames = mapped.frames.get_or_insert_with(|| {
            prepared
                .pixels
                .frames
                .iter()
                .map(|keys| mapped.palette.indices(keys, &prepared.pixels))
                .collect()
        });
        let shown: Vec<plan::Shown<'_>> = rate_pick(frames.len(), prepared.fps, rung.fps)
            .into_iter()
            .map(|i| plan::Shown {
                indices: &frames[i],
                keys: &prepared.pixels.frames[i],
            })
            .collect();
        let fps = rung.fps.min(prepared.fps);
        let subs = plan::plan(
            &shown,
            &mapped.palette.tolerance(&prepared.pixels),
            self.format == StickerFormat::Gif,
        );
        let bytes = match self.format {
            StickerFormat::Apng => apng::write(&subs, &mapped.palette, fps)?,
            StickerFormat::Gif => gif::write(&subs, &mapped.palette, fps)?,
        };
        self.attempts += 1;
        tracing::debug!(
            format = self.format.codec(),
            fps,
            colours = rung.colours,
            dither = rung.dither,
            side = rung.side,
            bytes = bytes.len(),
            "discord sticker attempt"
        );
        Ok((bytes, subs.len()))
    }

    /// Fits the clip into `rung.side` and computes its keys. The full-size picture keeps every
    /// frame of the first rung's rate; a shrunk one only the frames of its own rate.
    fn prepare(&self, rung: Rung) -> Result<Prepared, MediaError> {
        let (indices, fps) = if rung.side == SIDE {
            (self.picked.clone(), self.fps0)
        } else {
            let at = rate_pick(self.picked.len(), self.fps0, rung.fps);
            (at.into_iter().map(|i| self.picked[i]).collect(), rung.fps)
        };
        let clip = Frames {
            width: self.source.width,
            height: self.source.height,
            format: self.source.format,
            fps,
            frames: indices
                .iter()
                .map(|&i| self.source.frames[i].clone())
                .collect(),
        };
        // Padding is done here, transparent, instead of by `fit_into`, which pads RGB black.
        let fitted = match self.fit {
            Fit::Pad => clip.fit_into(rung.side, rung.side, Fit::Pad, false),
            Fit::Crop => clip.fit_into(rung.side, rung.side, Fit::Crop, true),
        };
        let x0 = SIDE.saturating_sub(fitted.width) / 2;
        let y0 = SIDE.saturating_sub(fitted.height) / 2;
        let pixels = Pixels::new(&fitted, x0, y0)?;
        Ok(Prepared {
            side: rung.side,
            fps,
            pixels,
        })
    }
}

fn internal(message: &str) -> MediaError {
    MediaError::Encoder {
        codec: "discord sticker",
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_frames_stay_within_five_seconds() {
        // 10 s at 30 fps, trimmed: the first 5 s at 12 fps.
        let trimmed = pick_source(300, 30, 12, Timing::Trim);
        assert_eq!(trimmed.len(), 60);
        assert!(trimmed.iter().all(|&i| i < 150));
        // Sped up: the whole clip, still 60 frames.
        let fast = pick_source(300, 30, 12, Timing::SpeedUp);
        assert_eq!(fast.len(), 60);
        assert!(*fast.last().unwrap_or(&0) > 280);
        // Short and slow clips are kept whole.
        assert_eq!(pick_source(3, 5, 5, Timing::Trim), vec![0, 1, 2]);
        assert_eq!(pick_source(1, 1000, 12, Timing::Trim), vec![0]);
    }

    #[test]
    fn ladder_steps_down_in_turn_and_shrinks_last() {
        let rungs = ladder(12, 60);
        let head: Vec<(u32, u16, bool)> = rungs
            .iter()
            .take(9)
            .map(|r| (r.fps, r.colours, r.dither))
            .collect();
        assert_eq!(
            head,
            vec![
                (12, 256, false),
                (10, 256, false),
                (10, 128, false),
                (8, 128, false),
                (8, 64, true),
                (6, 64, true),
                (6, 32, true),
                (5, 32, true),
                (5, 16, true)
            ]
        );
        assert!(rungs[..9].iter().all(|r| r.side == SIDE));
        assert_eq!(rungs.last().map(|r| r.side), Some(64));
        // One frame: the rate cannot matter, so only colours and size step.
        let still = ladder(12, 1);
        assert_eq!(still.len(), COLOUR_STEPS.len() + SHRINK_SIDES.len());
        // A slow clip starts at its own rate.
        assert_eq!(ladder(7, 35)[0].fps, 7);
    }
}
