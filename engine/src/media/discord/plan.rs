//! Which part of each frame has to be stored: the shared core of the APNG and GIF writers.
//!
//! Both formats draw frames onto a persistent canvas. Each stored frame is the bounding box of
//! what changed, with unchanged pixels transparent so they keep what the canvas shows; long
//! runs of transparency compress to almost nothing, which is most of the saving on generated
//! clips. Frames with no visible change are folded into the previous frame's delay.
//!
//! Neither format can make a canvas pixel transparent by drawing over it. When a frame needs
//! that, the previous frame is marked "restore to background" (APNG dispose-background, GIF
//! disposal 2) over a rectangle that covers the pixels to clear, and the frame redraws what
//! it needs inside that rectangle.

use super::SIDE;
use super::palette::{CLEAR, Tolerance};

/// A rectangle on the canvas, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rect {
    pub(super) x: u32,
    pub(super) y: u32,
    pub(super) w: u32,
    pub(super) h: u32,
}

impl Rect {
    const FULL: Rect = Rect {
        x: 0,
        y: 0,
        w: SIDE,
        h: SIDE,
    };

    fn union(self, other: Rect) -> Rect {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let right = (self.x + self.w).max(other.x + other.w);
        let bottom = (self.y + self.h).max(other.y + other.h);
        Rect {
            x,
            y,
            w: right - x,
            h: bottom - y,
        }
    }
}

/// A growing bounding box.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    min_x: usize,
    min_y: usize,
    max_x: usize,
    max_y: usize,
}

impl Bounds {
    fn new(x0: usize, x1: usize, y: usize) -> Bounds {
        Bounds {
            min_x: x0,
            min_y: y,
            max_x: x1,
            max_y: y,
        }
    }

    fn add(b: &mut Option<Bounds>, x0: usize, x1: usize, y: usize) {
        match b {
            Some(b) => {
                b.min_x = b.min_x.min(x0);
                b.max_x = b.max_x.max(x1);
                b.max_y = y;
            }
            None => *b = Some(Bounds::new(x0, x1, y)),
        }
    }

    fn rect(self) -> Rect {
        Rect {
            x: self.min_x as u32,
            y: self.min_y as u32,
            w: (self.max_x - self.min_x + 1) as u32,
            h: (self.max_y - self.min_y + 1) as u32,
        }
    }
}

/// One stored frame.
#[derive(Debug, Clone)]
pub(super) struct Subframe {
    pub(super) rect: Rect,
    /// `rect.w * rect.h` palette indices; [`CLEAR`] keeps the canvas.
    pub(super) data: Vec<u8>,
    /// Restore `rect` to transparent before the next frame is drawn.
    pub(super) clear_after: bool,
    /// When it appears and for how long, in frames of the clip's rate.
    pub(super) start: usize,
    pub(super) len: usize,
}

/// One frame to show: `SIDE`×`SIDE` palette indices and the keys they were mapped from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shown<'a> {
    pub(super) indices: &'a [u8],
    pub(super) keys: &'a [u32],
}

/// Plans the stored frames for `frames`. `tolerance` says when a canvas pixel still shows
/// a frame's pixel well enough. With `clear_at_loop`, the last frame
/// clears the canvas when the first frame has transparent pixels, for GIF players that do
/// not clear it themselves when the animation starts over (APNG players must).
pub(super) fn plan(
    frames: &[Shown<'_>],
    tolerance: &Tolerance<'_>,
    clear_at_loop: bool,
) -> Vec<Subframe> {
    let side = SIDE as usize;
    let mut canvas = vec![CLEAR; side * side];
    let mut out: Vec<Subframe> = Vec::with_capacity(frames.len());
    let mut pending: Option<Subframe> = None;
    for (i, &frame) in frames.iter().enumerate() {
        let (mut changed, clear) = compare(frame, &canvas, tolerance);
        if let (Some(clear), Some(prev)) = (clear, pending.as_mut()) {
            // Grow the previous frame over the pixels to clear (the growth is transparent, so
            // it shows the same), dispose it to background, and compare again.
            grow(prev, prev.rect.union(clear.rect()));
            prev.clear_after = true;
            fill(&mut canvas, prev.rect, CLEAR);
            changed = compare(frame, &canvas, tolerance).0;
        }
        let rect = match changed {
            _ if i == 0 => Rect::FULL, // APNG's first frame is the whole image
            Some(b) => b.rect(),
            None => match pending.as_mut() {
                Some(prev) if !prev.clear_after => {
                    prev.len += 1;
                    continue;
                }
                // Cleared to what this frame shows: store a token transparent pixel.
                _ => Rect {
                    x: 0,
                    y: 0,
                    w: 1,
                    h: 1,
                },
            },
        };
        if let Some(prev) = pending.take() {
            out.push(prev);
        }
        pending = Some(draw(frame, &mut canvas, rect, tolerance, i));
    }
    if let Some(mut last) = pending {
        let first_has_clear = frames.first().is_some_and(|f| f.indices.contains(&CLEAR));
        if clear_at_loop && first_has_clear && !out.is_empty() {
            grow(&mut last, Rect::FULL);
            last.clear_after = true;
        }
        out.push(last);
    }
    out
}

/// The bounding boxes of the pixels that change visibly, and of those that must become
/// transparent.
fn compare(
    frame: Shown<'_>,
    canvas: &[u8],
    tolerance: &Tolerance<'_>,
) -> (Option<Bounds>, Option<Bounds>) {
    let side = SIDE as usize;
    let mut changed = None;
    let mut clear = None;
    let (indices, keys) = (frame.indices, frame.keys);
    // Plain index loops: this runs over every pixel, and tests run unoptimised.
    for y in 0..side {
        let row = y * side;
        if indices[row..row + side] == canvas[row..row + side] {
            continue;
        }
        let mut first = None;
        let mut last = 0;
        let mut clear_first = None;
        let mut clear_last = 0;
        for x in 0..side {
            let (new, was) = (indices[row + x], canvas[row + x]);
            if new != was && !tolerance.keeps(keys[row + x], was, new) {
                if first.is_none() {
                    first = Some(x);
                }
                last = x;
                if new == CLEAR {
                    if clear_first.is_none() {
                        clear_first = Some(x);
                    }
                    clear_last = x;
                }
            }
        }
        if let Some(first) = first {
            Bounds::add(&mut changed, first, last, y);
        }
        if let Some(first) = clear_first {
            Bounds::add(&mut clear, first, clear_last, y);
        }
    }
    (changed, clear)
}

/// The stored frame for `rect`, updating the canvas to what players will show.
fn draw(
    frame: Shown<'_>,
    canvas: &mut [u8],
    rect: Rect,
    tolerance: &Tolerance<'_>,
    start: usize,
) -> Subframe {
    let side = SIDE as usize;
    let (x0, w) = (rect.x as usize, rect.w as usize);
    let mut data = vec![CLEAR; w * rect.h as usize];
    for (y, out) in data.chunks_exact_mut(w).enumerate() {
        let at = (rect.y as usize + y) * side + x0;
        for (x, o) in out.iter_mut().enumerate() {
            let p = at + x;
            let new = frame.indices[p];
            if new != canvas[p] && !tolerance.keeps(frame.keys[p], canvas[p], new) {
                *o = new;
                canvas[p] = new;
            }
        }
    }
    Subframe {
        rect,
        data,
        clear_after: false,
        start,
        len: 1,
    }
}

/// Enlarges a stored frame to `to` (which contains its rectangle); the new area is transparent.
fn grow(sub: &mut Subframe, to: Rect) {
    if sub.rect == to {
        return;
    }
    let (w, h) = (to.w as usize, to.h as usize);
    let mut data = vec![CLEAR; w * h];
    let dx = (sub.rect.x - to.x) as usize;
    let dy = (sub.rect.y - to.y) as usize;
    let sw = sub.rect.w as usize;
    for (y, src) in sub.data.chunks_exact(sw).enumerate() {
        let at = (y + dy) * w + dx;
        data[at..at + sw].copy_from_slice(src);
    }
    sub.rect = to;
    sub.data = data;
}

fn fill(canvas: &mut [u8], rect: Rect, value: u8) {
    let side = SIDE as usize;
    for y in rect.y as usize..(rect.y + rect.h) as usize {
        let at = y * side + rect.x as usize;
        canvas[at..at + rect.w as usize].fill(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a player shows after each stored frame (APNG semantics: over-blend, dispose).
    fn play(subs: &[Subframe]) -> Vec<Vec<u8>> {
        let side = SIDE as usize;
        let mut canvas = vec![CLEAR; side * side];
        let mut shown = Vec::new();
        for s in subs {
            for (y, row) in s.data.chunks_exact(s.rect.w as usize).enumerate() {
                for (x, &v) in row.iter().enumerate() {
                    if v != CLEAR {
                        canvas[(s.rect.y as usize + y) * side + s.rect.x as usize + x] = v;
                    }
                }
            }
            for _ in 0..s.len {
                shown.push(canvas.clone());
            }
            if s.clear_after {
                fill(&mut canvas, s.rect, CLEAR);
            }
        }
        shown
    }

    fn shown(frames: &[Vec<u8>]) -> Vec<Shown<'_>> {
        static KEYS: [u32; 102_400] = [0; 102_400];
        frames
            .iter()
            .map(|f| Shown {
                indices: f,
                keys: &KEYS,
            })
            .collect()
    }

    fn square(value: u8, x: usize, y: usize, size: usize) -> Vec<u8> {
        let side = SIDE as usize;
        let mut f = vec![CLEAR; side * side];
        for row in y..y + size {
            f[row * side + x..row * side + x + size].fill(value);
        }
        f
    }

    #[test]
    fn moving_square_on_transparency_plays_back_exactly() {
        let frames: Vec<Vec<u8>> = (0..6)
            .map(|i| square(1 + i as u8 % 2, 10 + 30 * i, 20, 40))
            .chain([square(3, 100, 100, 5), vec![CLEAR; 102_400]])
            .collect();
        let subs = plan(&shown(&frames), &Tolerance::exact(), false);
        assert_eq!(play(&subs), frames);
        assert_eq!(subs[0].rect, Rect::FULL);
        assert!(subs[1].rect.w < SIDE, "later frames are sub-rectangles");
    }

    #[test]
    fn repeated_frames_fold_into_the_delay() {
        let a = square(1, 0, 0, 50);
        let b = square(2, 0, 0, 50);
        let frames = vec![a.clone(), a.clone(), a.clone(), b.clone(), b.clone()];
        let subs = plan(&shown(&frames), &Tolerance::exact(), true);
        assert_eq!(subs.len(), 2);
        assert_eq!((subs[0].start, subs[0].len), (0, 3));
        assert_eq!((subs[1].start, subs[1].len), (3, 2));
        assert!(subs[1].clear_after, "clears for the next loop");
        assert_eq!(play(&subs), vec![a.clone(), a.clone(), a, b.clone(), b]);
    }
}
