//! A palette of at most 256 colours for sixel, by median cut over a clip's pixels, and the
//! mapping of each pixel to its nearest palette entry. One palette serves a whole clip, so its
//! colours do not shift from frame to frame.

use std::collections::HashMap;

/// Most pixels looked at to build a palette; beyond that a clip is sampled evenly.
const MAX_SAMPLES: usize = 1 << 18;

pub type Rgb = [u8; 3];

/// At most `max` colours (1 to 256) that stand for the pixels of `frames` (packed RGB). A clip
/// with no more distinct colours than that gets exactly its own colours back.
pub fn palette<'a>(frames: impl IntoIterator<Item = &'a [u8]>, max: usize) -> Vec<Rgb> {
    let max = max.clamp(1, 256);
    let frames: Vec<&[u8]> = frames.into_iter().collect();
    let total: usize = frames.iter().map(|f| f.len() / 3).sum();
    let stride = total.div_ceil(MAX_SAMPLES).max(1);
    let mut counts: HashMap<Rgb, u32> = HashMap::new();
    let mut n = 0usize;
    for frame in frames {
        for px in frame.chunks_exact(3) {
            if n.is_multiple_of(stride) {
                *counts.entry([px[0], px[1], px[2]]).or_default() += 1;
            }
            n += 1;
        }
    }
    let mut colours: Vec<(Rgb, u32)> = counts.into_iter().collect();
    // A fixed order, so the same clip always gets the same palette.
    colours.sort_unstable();
    if colours.len() <= max {
        return colours.into_iter().map(|(c, _)| c).collect();
    }
    median_cut(colours, max)
}

/// Splits the colour space into `max` boxes, each time cutting the box with the widest
/// channel range at the median of that channel (by pixel count), then averages each box.
fn median_cut(colours: Vec<(Rgb, u32)>, max: usize) -> Vec<Rgb> {
    let mut boxes: Vec<Vec<(Rgb, u32)>> = vec![colours];
    while boxes.len() < max {
        let widest = boxes
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() > 1)
            .map(|(i, b)| (i, widest_channel(b)))
            .max_by_key(|&(_, (_, range))| range);
        let Some((i, (channel, range))) = widest else {
            break;
        };
        if range == 0 {
            break;
        }
        let mut cut = boxes.swap_remove(i);
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
        boxes.push(cut);
        boxes.push(upper);
    }
    boxes.iter().map(|b| average(b)).collect()
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

/// Maps colours to their nearest palette entry, remembering each answer: a clip repeats its
/// colours, so most lookups are one hash probe.
#[derive(Debug, Clone)]
pub struct Mapper {
    palette: Vec<Rgb>,
    memo: HashMap<Rgb, u8>,
}

impl Mapper {
    /// `palette` must hold 1 to 256 colours.
    pub fn new(palette: Vec<Rgb>) -> Mapper {
        Mapper {
            palette,
            memo: HashMap::new(),
        }
    }

    pub fn palette(&self) -> &[Rgb] {
        &self.palette
    }

    pub fn index(&mut self, c: Rgb) -> u8 {
        if let Some(&i) = self.memo.get(&c) {
            return i;
        }
        let i = nearest(&self.palette, c);
        self.memo.insert(c, i);
        i
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
        let palette = palette([frame.as_slice()], 256);
        assert_eq!(palette, vec![[0, 0, 255], [9, 9, 9], [255, 0, 0]]);
        let mut mapper = Mapper::new(palette);
        assert_eq!(mapper.indices(&frame), vec![2, 0, 2, 1]);
    }

    #[test]
    fn many_colours_get_at_most_the_limit_and_stay_close() {
        // Every 4th level of red and green: 4,096 colours.
        let frame: Vec<u8> = (0..64u8)
            .flat_map(|r| (0..64u8).flat_map(move |g| [r * 4, g * 4, 100]))
            .collect();
        let palette = palette([frame.as_slice()], 256);
        assert_eq!(palette.len(), 256);
        let mut mapper = Mapper::new(palette.clone());
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
        assert_eq!(palette([frame.as_slice()], 0).len(), 1);
        assert_eq!(palette([frame.as_slice()], 16).len(), 16);
        assert_eq!(palette([frame.as_slice()], 10_000).len(), 256);
        assert!(palette([&[][..]], 256).is_empty());
    }
}
