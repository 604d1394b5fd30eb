//! A palette of at most 256 colours for sixel, by median cut over a clip's pixels, and the
//! mapping of each pixel to its nearest palette entry. One palette serves a whole clip, so its
//! colours do not shift from frame to frame.

use std::collections::HashMap;

/// Most pixels looked at to build a palette; beyond that a clip is sampled evenly.
const MAX_SAMPLES: usize = 1 << 18;

pub type Rgb = [u8; 3];

/// A clip's palette: at most `max` colours (1 to 256) that stand for its pixels, and whether
/// they are exactly its colours (a clip with no more distinct colours than that).
pub fn palette<'a>(frames: impl IntoIterator<Item = &'a [u8]>, max: usize) -> (Vec<Rgb>, bool) {
    let max = max.clamp(1, 256);
    let frames: Vec<&[u8]> = frames.into_iter().collect();
    let total: usize = frames.iter().map(|f| f.len() / 3).sum();
    let stride = total.div_ceil(MAX_SAMPLES).max(1);
    let samples = || {
        frames
            .iter()
            .flat_map(|f| f.chunks_exact(3))
            .step_by(stride)
            .map(|px| [px[0], px[1], px[2]])
    };
    // Few colours (flat art, test pictures) are kept exactly; counting stops at one too many.
    let mut exact: HashMap<Rgb, u32> = HashMap::new();
    for c in samples() {
        *exact.entry(c).or_default() += 1;
        if exact.len() > max {
            break;
        }
    }
    if exact.len() <= max {
        let mut colours: Vec<Rgb> = exact.into_keys().collect();
        // A fixed order, so the same clip always gets the same palette.
        colours.sort_unstable();
        return (colours, true);
    }
    // Many colours: first into 32 levels a channel (each bin keeping its pixels' mean), which
    // bounds the median cut's work whatever the clip, then cut.
    let mut bins = vec![(0u32, [0u64; 3]); 1 << 15];
    for c in samples() {
        let key =
            (usize::from(c[0] >> 3) << 10) | (usize::from(c[1] >> 3) << 5) | usize::from(c[2] >> 3);
        let bin = &mut bins[key];
        bin.0 += 1;
        for (sum, v) in bin.1.iter_mut().zip(c) {
            *sum += u64::from(v);
        }
    }
    let mut colours: Vec<(Rgb, u32)> = bins
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, sum)| {
            let n64 = u64::from(n);
            let mean = |ch: usize| ((sum[ch] + n64 / 2) / n64) as u8;
            ([mean(0), mean(1), mean(2)], n)
        })
        .collect();
    colours.sort_unstable();
    (median_cut(colours, max), false)
}

/// Splits the colour space into `max` boxes, each time cutting the box with the widest
/// channel range at the median of that channel (by pixel count), then averages each box.
fn median_cut(colours: Vec<(Rgb, u32)>, max: usize) -> Vec<Rgb> {
    // Each box with its widest channel and that channel's range, worked out once per box.
    let boxed = |colours: Vec<(Rgb, u32)>| {
        let (channel, range) = widest_channel(&colours);
        (colours, channel, range)
    };
    let mut boxes = vec![boxed(colours)];
    while boxes.len() < max {
        let Some(i) = boxes
            .iter()
            .enumerate()
            .filter(|(_, (b, _, range))| b.len() > 1 && *range > 0)
            .max_by_key(|(_, (_, _, range))| *range)
            .map(|(i, _)| i)
        else {
            break;
        };
        let (mut cut, channel, _) = boxes.swap_remove(i);
        cut.sort_unstable_by_key(|(c, _)| c[channel]);
        let half: u64 = cut.iter().map(|(_, n)| u64::from(*n)).sum::<u64>() / 2;
        let mut seen = 0u64;
        let mut at = cut.len() / 2;
        for (k, (_, n)) in cut.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= half {
                at = k + 1;
                break;
            }
        }
        // Both halves keep at least one colour.
        let at = at.clamp(1, cut.len() - 1);
        let upper = cut.split_off(at);
        boxes.push(boxed(cut));
        boxes.push(boxed(upper));
    }
    boxes.iter().map(|(b, _, _)| average(b)).collect()
}

fn widest_channel(colours: &[(Rgb, u32)]) -> (usize, u8) {
    (0..3)
        .map(|ch| {
            let (lo, hi) = colours.iter().fold((u8::MAX, u8::MIN), |(lo, hi), (c, _)| {
                (lo.min(c[ch]), hi.max(c[ch]))
            });
            (ch, hi - lo)
        })
        .max_by_key(|&(_, range)| range)
        .unwrap_or((0, 0))
}

fn average(colours: &[(Rgb, u32)]) -> Rgb {
    let mut sum = [0u64; 3];
    let mut n = 0u64;
    for (c, count) in colours {
        for ch in 0..3 {
            sum[ch] += u64::from(c[ch]) * u64::from(*count);
        }
        n += u64::from(*count);
    }
    let n = n.max(1);
    [
        ((sum[0] + n / 2) / n) as u8,
        ((sum[1] + n / 2) / n) as u8,
        ((sum[2] + n / 2) / n) as u8,
    ]
}

/// Maps colours to their nearest palette entry, remembering answers: a clip repeats its
/// colours, so most lookups are one probe.
#[derive(Debug, Clone)]
pub struct Mapper {
    palette: Vec<Rgb>,
    lookup: Lookup,
}

#[derive(Debug, Clone)]
enum Lookup {
    /// Each colour's own answer: exact, for palettes that are a clip's own few colours.
    Colours(HashMap<Rgb, u8>),
    /// One answer per cell of 4×4×4 colour levels (64 a channel), filled as cells are met:
    /// a photo-like clip has tens of thousands of colours, and a cell's colours differ by at
    /// most 3 a channel, far less than the palette's own spacing.
    Cells(Vec<u16>),
}

const EMPTY: u16 = u16::MAX;

impl Mapper {
    /// A palette for `frames` (see [`palette`]) and its mapping.
    pub fn for_frames<'a>(frames: impl IntoIterator<Item = &'a [u8]>, max: usize) -> Mapper {
        let (palette, exact) = palette(frames, max);
        Mapper::new(palette, exact)
    }

    /// `exact`: map each colour on its own (right when the palette holds the picture's own
    /// colours); otherwise by cells of nearby colours.
    pub fn new(palette: Vec<Rgb>, exact: bool) -> Mapper {
        let lookup = if exact {
            Lookup::Colours(HashMap::new())
        } else {
            Lookup::Cells(vec![EMPTY; 1 << 18])
        };
        Mapper { palette, lookup }
    }

    pub fn palette(&self) -> &[Rgb] {
        &self.palette
    }

    pub fn index(&mut self, c: Rgb) -> u8 {
        match &mut self.lookup {
            Lookup::Colours(memo) => *memo.entry(c).or_insert_with(|| nearest(&self.palette, c)),
            Lookup::Cells(cells) => {
                let key = (usize::from(c[0] >> 2) << 12)
                    | (usize::from(c[1] >> 2) << 6)
                    | usize::from(c[2] >> 2);
                if cells[key] == EMPTY {
                    // The cell's middle stands for all its colours.
                    let middle = [c[0] | 2, c[1] | 2, c[2] | 2];
                    cells[key] = u16::from(nearest(&self.palette, middle));
                }
                cells[key] as u8
            }
        }
    }

    /// Each pixel of a packed RGB frame as a palette index.
    pub fn indices(&mut self, rgb: &[u8]) -> Vec<u8> {
        rgb.chunks_exact(3)
            .map(|px| self.index([px[0], px[1], px[2]]))
            .collect()
    }
}

/// The palette entry closest to `c` (squared distance, weighted for the eye's sensitivity).
pub fn nearest(palette: &[Rgb], c: Rgb) -> u8 {
    let distance = |p: &Rgb| {
        let d = |a: u8, b: u8| i32::from(a) - i32::from(b);
        let (r, g, b) = (d(p[0], c[0]), d(p[1], c[1]), d(p[2], c[2]));
        2 * r * r + 4 * g * g + 3 * b * b
    };
    palette
        .iter()
        .enumerate()
        .min_by_key(|(_, p)| distance(p))
        .map_or(0, |(i, _)| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_colours_are_kept_exactly() {
        let frame: Vec<u8> = [[255, 0, 0], [0, 0, 255], [255, 0, 0], [9, 9, 9]]
            .concat()
            .to_vec();
        let (palette, exact) = palette([frame.as_slice()], 256);
        assert!(exact);
        assert_eq!(palette, vec![[0, 0, 255], [9, 9, 9], [255, 0, 0]]);
        // Colours a level apart stay apart.
        let close: Vec<u8> = [[9u8, 9, 9], [10, 10, 10]].concat();
        let mut mapper = Mapper::for_frames([close.as_slice()], 256);
        assert_eq!(mapper.indices(&close), vec![0, 1]);
        let mut mapper = Mapper::new(palette, exact);
        assert_eq!(mapper.indices(&frame), vec![2, 0, 2, 1]);
    }

    #[test]
    fn many_colours_get_at_most_the_limit_and_stay_close() {
        // Every 4th level of red and green: 4,096 colours.
        let frame: Vec<u8> = (0..64u8)
            .flat_map(|r| (0..64u8).flat_map(move |g| [r * 4, g * 4, 100]))
            .collect();
        let (palette, exact) = palette([frame.as_slice()], 256);
        assert!(!exact);
        assert_eq!(palette.len(), 256);
        let mut mapper = Mapper::new(palette.clone(), exact);
        let worst = frame
            .chunks_exact(3)
            .map(|px| {
                let p = palette[usize::from(mapper.index([px[0], px[1], px[2]]))];
                (0..3).map(|i| p[i].abs_diff(px[i])).max().unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        // 256 boxes over a 256×256 square: 16 levels a side, so within 8 of the box's mean.
        assert!(worst <= 10, "worst channel error {worst}");
    }

    #[test]
    fn the_limit_is_kept_whatever_is_asked() {
        let frame: Vec<u8> = (0..=255u8).flat_map(|v| [v, 255 - v, v / 2]).collect();
        assert_eq!(palette([frame.as_slice()], 0).0.len(), 1);
        assert_eq!(palette([frame.as_slice()], 16).0.len(), 16);
        assert_eq!(palette([frame.as_slice()], 10_000).0, {
            let mut own: Vec<Rgb> = frame.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
            own.sort_unstable();
            own
        });
        assert!(palette([&[][..]], 256).0.is_empty());
        // An empty palette maps everything to 0 rather than panicking.
        assert_eq!(Mapper::new(Vec::new(), false).index([1, 2, 3]), 0);
    }
}
