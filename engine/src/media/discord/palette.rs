//! One palette for the whole clip, shared by every frame and every rung of the ladder.
//!
//! A per-frame palette would make unchanged pixels change index from frame to frame, which
//! defeats frame differencing; a global one computed from the whole clip does not. Pixels are
//! reduced to 6 bits per channel ("keys") once: the histogram, Wu's split and every palette
//! lookup then work on at most 2^18 distinct keys instead of millions of pixels, so a new
//! palette size costs a few milliseconds and no second pass over the frames' colours.

use quantette::color_space::{oklab_to_srgb8, srgb8_to_oklab};
use quantette::deps::palette::{Oklab, Srgb};
use quantette::wu::{BinnerF32x3, WuF32x3};
use quantette::{ImageRef, PaletteBuf, PaletteCounts, PaletteSize, Pipeline};

use super::SIDE;
use crate::media::{Frames, MediaError};

/// The palette index that is fully transparent: padding, transparent input pixels, and pixels
/// a frame leaves as they were.
pub(super) const CLEAR: u8 = 0;

/// A pixel that is transparent in the input (or outside the fitted picture). Any value at or
/// above [`KEYS`] works: lookups treat out-of-range keys as transparent.
const NO_KEY: u32 = u32::MAX;
const KEYS: usize = 1 << 18;
/// Alpha below this is transparent: GIF has one bit of alpha, and the APNG shares the palette.
const OPAQUE_FROM: u8 = 128;

/// A canvas pixel is left as it is when its colour is at most this much (Oklab distance)
/// further from the frame's true colour than the frame's own entry. Generated video flickers
/// slightly everywhere, flipping pixels between neighbouring entries; storing that as change
/// would fill every frame. Measured against the true colour, the error cannot accumulate, and
/// a margin over the best entry (not an absolute distance) keeps moving gradients from lagging
/// behind.
const STILL_MARGIN: f32 = 0.015;

/// Within a row, a pixel repeats its left neighbour's entry when that is at most this much
/// further from its true colour than its own entry: grain stops breaking runs, which is what
/// deflate and LZW need, without shifting gradients sideways.
const RUN_MARGIN: f32 = 0.025;

/// Ordered dithering mixes the two nearest shades only when they are this close (Oklab): that is
/// a gradient's banding, where dithering helps. Between distant colours it would add visible
/// noise and bytes for no gain.
const DITHER_SPAN: f32 = 0.1;
/// Colours this close to a palette entry are left alone.
const DITHER_MIN_ERROR: f32 = 0.004;
/// A 4×4 Bayer matrix: the thresholds at which a pixel switches to the second shade.
const BAYER: [[u8; 4]; 4] = [[0, 8, 2, 10], [12, 4, 14, 6], [3, 11, 1, 9], [15, 7, 13, 5]];

/// Every frame's pixels as keys, and the histogram the palettes come from.
pub(super) struct Pixels {
    /// One `SIDE`×`SIDE` key image per frame.
    pub(super) frames: Vec<Vec<u32>>,
    /// The keys that occur, with their mean colour (sRGB, and Oklab with the pixel count).
    present: Vec<u32>,
    means: Vec<Srgb<u8>>,
    colours: PaletteCounts<Oklab>,
    /// Every key's mean colour (Oklab l, a, b), for keys that occur.
    key_colours: Vec<[f32; 3]>,
    /// `None` when no pixel is opaque.
    wu: Option<WuF32x3<Oklab, 32, 16, 16>>,
}

impl Pixels {
    /// Turns fitted frames, placed with their top-left corner at (`x0`, `y0`) in the
    /// `SIDE`×`SIDE` canvas, into keys; everything else is transparent.
    pub(super) fn new(fitted: &Frames, x0: u32, y0: u32) -> Result<Pixels, MediaError> {
        let side = SIDE as usize;
        let (w, h) = (fitted.width as usize, fitted.height as usize);
        let (x0, y0) = (x0 as usize, y0 as usize);
        if x0 + w > side || y0 + h > side {
            return Err(MediaError::Encoder {
                codec: "palette",
                message: format!(
                    "a {w}x{h} picture at ({x0}, {y0}) does not fit the {side}x{side} sticker"
                ),
            });
        }
        let bpp = fitted.format.bytes_per_pixel();
        let alpha = fitted.has_alpha();
        if let Some(bad) = fitted.frames.iter().find(|f| f.len() != w * h * bpp) {
            return Err(MediaError::Encoder {
                codec: "palette",
                message: format!(
                    "a fitted frame has {} bytes, not {}",
                    bad.len(),
                    w * h * bpp
                ),
            });
        }
        let mut counts = vec![0u32; KEYS];
        let mut sums = vec![0u64; 3 * KEYS];
        let mut frames = Vec::with_capacity(fitted.frames.len());
        // Plain index loops: this runs over every pixel, and tests run unoptimised.
        for frame in &fitted.frames {
            let mut keys = vec![NO_KEY; side * side];
            for y in 0..h {
                let row = (y + y0) * side + x0;
                for x in 0..w {
                    let src = (y * w + x) * bpp;
                    if !alpha || frame[src + 3] >= OPAQUE_FROM {
                        let (r, g, b) = (frame[src], frame[src + 1], frame[src + 2]);
                        let k = ((r as usize >> 2) << 12)
                            | ((g as usize >> 2) << 6)
                            | (b as usize >> 2);
                        keys[row + x] = k as u32;
                        counts[k] += 1;
                        sums[3 * k] += r as u64;
                        sums[3 * k + 1] += g as u64;
                        sums[3 * k + 2] += b as u64;
                    }
                }
            }
            frames.push(keys);
        }

        let mut present = Vec::new();
        let mut means = Vec::new();
        let mut present_counts = Vec::new();
        for (k, (&n, sum)) in counts.iter().zip(sums.chunks_exact(3)).enumerate() {
            if n > 0 {
                let n64 = n as u64;
                let mean = |s: u64| ((s + n64 / 2) / n64) as u8;
                present.push(k as u32);
                means.push(Srgb::new(mean(sum[0]), mean(sum[1]), mean(sum[2])));
                present_counts.push(n);
            }
        }
        let colours = PaletteCounts::new(srgb8_to_oklab(&means), present_counts).map_err(|e| {
            MediaError::Encoder {
                codec: "palette",
                message: format!("cannot count the colours: {e}"),
            }
        })?;
        let wu = WuF32x3::run_palette_counts(&colours, BinnerF32x3::oklab_from_srgb8());
        let mut key_colours = vec![[0f32; 3]; KEYS];
        for (&key, c) in present.iter().zip(colours.palette()) {
            key_colours[key as usize] = [c.l, c.a, c.b];
        }
        Ok(Pixels {
            frames,
            present,
            means,
            colours,
            key_colours,
            wu,
        })
    }

    /// A palette of at most `colours` entries, the transparent one included, and the lookup
    /// from keys to it.
    pub(super) fn palette(&self, colours: u16, dither: bool) -> Result<Palette, MediaError> {
        let Some(wu) = &self.wu else {
            return Ok(Palette::transparent_only());
        };
        let wanted = PaletteSize::from_u16_clamped(colours.saturating_sub(1));
        let first = wu.palette(wanted);
        let points = self.colours.palette();
        let counts = self.colours.counts();
        // One Lloyd step: Wu's boxes are coarse, moving each entry to the mean of what it is
        // nearest to is cheap here (keys, not pixels) and visibly tightens gradients.
        let assigned = nearest(&first, &self.means)?;
        let mut sums = vec![[0f64; 4]; first.len()];
        for ((&i, c), &n) in assigned.iter().zip(points).zip(counts) {
            let s = &mut sums[i as usize];
            let n = n as f64;
            s[0] += c.l as f64 * n;
            s[1] += c.a as f64 * n;
            s[2] += c.b as f64 * n;
            s[3] += n;
        }
        let refined: Vec<Oklab> = first
            .iter()
            .zip(&sums)
            .map(|(&old, s)| {
                if s[3] > 0.0 {
                    Oklab::new(
                        (s[0] / s[3]) as f32,
                        (s[1] / s[3]) as f32,
                        (s[2] / s[3]) as f32,
                    )
                } else {
                    old
                }
            })
            .collect();
        let refined = PaletteBuf::new(refined).map_err(|_| MediaError::Encoder {
            codec: "palette",
            message: "the refined palette is empty or has more than 256 colours".to_string(),
        })?;
        let entries: Vec<Oklab> = refined.to_vec();
        let nearest = nearest(&refined, &self.means)?;

        let mut lut = vec![CLEAR; KEYS];
        let mut second = Vec::new();
        let mut level = Vec::new();
        if dither {
            second = vec![CLEAR; KEYS];
            level = vec![0u8; KEYS];
            // The second shade is one of the nearest entry's close neighbours: whichever mix
            // lands nearest the colour.
            let near = neighbours(&entries);
            for ((&key, c), &a) in self.present.iter().zip(points).zip(&nearest) {
                let pa = entries[a as usize];
                let best = near[a as usize]
                    .iter()
                    .filter_map(|&b| mix(pa, entries[b as usize], *c).map(|m| (m, b)))
                    .min_by(|(x, _), (y, _)| x.1.total_cmp(&y.1));
                if let Some(((steps, _), b)) = best {
                    second[key as usize] = b + 1;
                    level[key as usize] = steps;
                }
            }
        }
        for (&key, &i) in self.present.iter().zip(&nearest) {
            lut[key as usize] = i + 1;
        }

        let srgb = oklab_to_srgb8(&entries);
        let mut rgb = Vec::with_capacity(3 * (srgb.len() + 1));
        rgb.extend_from_slice(&[0, 0, 0]);
        for c in &srgb {
            rgb.extend_from_slice(&[c.red, c.green, c.blue]);
        }
        let mut oklab = vec![[0f32; 3]];
        oklab.extend(entries.iter().map(|c| [c.l, c.a, c.b]));
        let dithers = level.iter().any(|&l| l > 0);
        Ok(Palette {
            rgb,
            len: entries.len() + 1,
            dithers,
            lut,
            second,
            level,
            oklab,
        })
    }
}

/// The nearest entry of `palette` to each of `colours`. Through quantette's pipeline because
/// its concrete entry points are compiled optimised even in our debug builds, where the generic
/// colour maps would be instantiated unoptimised in this crate (90 times slower).
fn nearest(palette: &PaletteBuf<Oklab>, colours: &[Srgb<u8>]) -> Result<Vec<u8>, MediaError> {
    let width = u32::try_from(colours.len()).map_err(|_| MediaError::Encoder {
        codec: "palette",
        message: format!("{} colours are too many to map", colours.len()),
    })?;
    let image = ImageRef::new(width, 1, colours).map_err(|e| MediaError::Encoder {
        codec: "palette",
        message: format!("cannot map the colours: {e}"),
    })?;
    let indexed = Pipeline::new()
        .palette_size(palette.size())
        .quantize_method(palette.clone())
        .ditherer(None)
        .dedup(false)
        .input_image(image)
        .output_oklab_indexed_image();
    if indexed.indices().len() != colours.len() {
        return Err(MediaError::Encoder {
            codec: "palette",
            message: format!(
                "mapping {} colours gave {} indices",
                colours.len(),
                indexed.indices().len()
            ),
        });
    }
    Ok(indexed.into_parts().1)
}

/// For each entry, the entries within [`DITHER_SPAN`] of it, nearest first, at most eight.
fn neighbours(entries: &[Oklab]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut near: Vec<(f32, u8)> = entries
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, b)| (distance2(*a, *b), j as u8))
                .filter(|&(d, _)| d <= DITHER_SPAN * DITHER_SPAN)
                .collect();
            near.sort_by(|x, y| x.0.total_cmp(&y.0));
            near.truncate(8);
            near.into_iter().map(|(_, j)| j).collect()
        })
        .collect()
}

fn distance2(a: Oklab, b: Oklab) -> f32 {
    (a.l - b.l).powi(2) + (a.a - b.a).powi(2) + (a.b - b.b).powi(2)
}

/// How many of 16 pixels should show `b` instead of the nearest entry `a` to approximate `c`,
/// and how far that mix lands from `c` (squared); `None` when mixing would not help.
fn mix(a: Oklab, b: Oklab, c: Oklab) -> Option<(u8, f32)> {
    let ab = [b.l - a.l, b.a - a.a, b.b - a.b];
    let ac = [c.l - a.l, c.a - a.a, c.b - a.b];
    let span2 = ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2];
    let err2 = ac[0] * ac[0] + ac[1] * ac[1] + ac[2] * ac[2];
    if span2 <= 0.0 || err2 < DITHER_MIN_ERROR * DITHER_MIN_ERROR {
        return None;
    }
    let t = ((ab[0] * ac[0] + ab[1] * ac[1] + ab[2] * ac[2]) / span2).clamp(0.0, 0.5);
    let steps = (t * 16.0).round() as u8;
    let mixed = [a.l + t * ab[0], a.a + t * ab[1], a.b + t * ab[2]];
    let off = (c.l - mixed[0]).powi(2) + (c.a - mixed[1]).powi(2) + (c.b - mixed[2]).powi(2);
    // Only when the mix lands clearly nearer the colour than `a` alone does.
    (steps > 0 && off < err2 * 0.5).then_some((steps, off))
}

/// A palette with index [`CLEAR`] transparent, and how keys map to it.
pub(super) struct Palette {
    /// `len` RGB triples, the transparent entry (black) first.
    pub(super) rgb: Vec<u8>,
    pub(super) len: usize,
    /// Whether any key is dithered.
    dithers: bool,
    lut: Vec<u8>,
    /// With dithering: the second shade per key and how many of 16 pixels take it.
    second: Vec<u8>,
    level: Vec<u8>,
    /// Entries in Oklab (l, a, b); the transparent one's value is unused.
    oklab: Vec<[f32; 3]>,
}

impl Palette {
    fn transparent_only() -> Palette {
        Palette {
            rgb: vec![0, 0, 0],
            len: 1,
            dithers: false,
            lut: Vec::new(),
            second: Vec::new(),
            level: Vec::new(),
            oklab: vec![[0.0; 3]],
        }
    }

    /// Whether dithering changes any pixel.
    pub(super) fn dithers(&self) -> bool {
        self.dithers
    }

    /// When a pixel of `pixels` may keep what the canvas shows instead of being redrawn.
    pub(super) fn tolerance<'a>(&'a self, pixels: &'a Pixels) -> Tolerance<'a> {
        Tolerance {
            key_colours: &pixels.key_colours,
            palette: &self.oklab,
            margin: STILL_MARGIN,
        }
    }

    /// The indices of one `SIDE`×`SIDE` key image of `pixels`.
    pub(super) fn indices(&self, keys: &[u32], pixels: &Pixels) -> Vec<u8> {
        let side = SIDE as usize;
        let mut out = vec![CLEAR; side * side];
        if self.lut.len() != KEYS || keys.len() != out.len() {
            return out; // nothing is opaque
        }
        let dither = self.second.len() == KEYS && self.level.len() == KEYS;
        let runs = Tolerance {
            key_colours: &pixels.key_colours,
            palette: &self.oklab,
            margin: RUN_MARGIN,
        };
        // Plain index loops: this runs over every pixel, and tests run unoptimised.
        for y in 0..side {
            let row = y * side;
            let bayer = BAYER[y & 3];
            // The left neighbour's entry, unless it is dithered: runs must not copy a dither
            // pattern's second shade, nor overwrite one.
            let mut left = CLEAR;
            for x in 0..side {
                let k = keys[row + x] as usize;
                if k >= KEYS {
                    left = CLEAR;
                    continue;
                }
                let a = self.lut[k];
                if dither && bayer[x & 3] < self.level[k] {
                    // Only inside a band, where both neighbours have the same nearest entry:
                    // that is where banding shows. Where they differ the picture is textured
                    // or noisy already, and dithering would only add bytes.
                    let same = |n: usize| {
                        let kn = keys[row + n] as usize;
                        kn >= KEYS || self.lut[kn] == a
                    };
                    if (x == 0 || same(x - 1)) && (x + 1 == side || same(x + 1)) {
                        out[row + x] = self.second[k];
                        left = CLEAR;
                        continue;
                    }
                }
                let i = if a != left && runs.keeps(k as u32, left, a) {
                    left
                } else {
                    a
                };
                out[row + x] = i;
                left = i;
            }
        }
        out
    }
}

/// Decides whether a canvas pixel still shows a frame's pixel well enough to be left alone.
pub(super) struct Tolerance<'a> {
    key_colours: &'a [[f32; 3]],
    palette: &'a [[f32; 3]],
    margin: f32,
}

impl Tolerance<'_> {
    /// Never keeps a pixel that changed index: exact playback.
    #[cfg(test)]
    pub(super) fn exact() -> Tolerance<'static> {
        Tolerance {
            key_colours: &[],
            palette: &[],
            margin: 0.0,
        }
    }

    /// Whether index `was` may stay where the frame has `key`, mapped to `new`. Transparent
    /// pixels never stay for an opaque one, nor the other way round.
    #[inline]
    pub(super) fn keeps(&self, key: u32, was: u8, new: u8) -> bool {
        let (k, w, n) = (key as usize, was as usize, new as usize);
        if was == CLEAR
            || new == CLEAR
            || k >= self.key_colours.len()
            || w >= self.palette.len()
            || n >= self.palette.len()
        {
            return false;
        }
        let c = self.key_colours[k];
        distance(c, self.palette[w]) <= distance(c, self.palette[n]) + self.margin
    }
}

fn distance(a: [f32; 3], b: [f32; 3]) -> f32 {
    ((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]))
        .sqrt()
}
