//! The embedded model's conditioning check, ported from `check_clip` in
//! `models/tiny/dataset.py` (rules spelled out in `models/tiny/README.md`, "Evaluation"): does
//! a generated clip show the prompt's background colour, subject colour and motion?
//!
//! Frames are RGB in [0, 1]; lengths are in frame widths. Kept line for line with the Python so
//! that `tiny_check_parity` can hold the two to the same verdicts on the same pixels.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::collections::BTreeMap;
use std::f64::consts::PI;

use serde::Deserialize;

/// The check's constants (`CHECK` in dataset.py; `check` in eval_prompts.json).
#[derive(Debug, Clone, Deserialize)]
pub struct Constants {
    pub ring_inset: usize,
    pub colour_tol: f64,
    pub fg_dist: f64,
    pub min_fg_pixels: usize,
    pub min_area: usize,
    pub min_present: usize,
    #[serde(rename = "move")]
    pub move_: f64,
    pub cross: f64,
    pub still_range: f64,
    pub spin_range: f64,
    pub bounce_range: f64,
    pub bounce_leg: f64,
    pub orbit_range: f64,
    pub orbit_sweep: f64,
    pub grow: f64,
    pub pulse: f64,
    pub pulse_bulge: f64,
    pub spin_area: f64,
    pub still_area: f64,
    pub spin_iou: f64,
}

/// A named colour, as eval_prompts.json and the fixture write it.
#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    pub name: String,
}

/// A label's subject, as eval_prompts.json and the fixture write it.
#[derive(Debug, Clone, Deserialize)]
pub struct Subject {
    pub colour: String,
    /// Not checked (README, "Evaluation"); printed in the matrix.
    #[serde(default)]
    pub shape: String,
    pub motion: String,
}

/// What a clip is checked against.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub background: &'a str,
    pub subject_colour: &'a str,
    pub motion: &'a str,
}

/// A clip: `frames` of `width`×`height` RGB pixels in [0, 1].
#[derive(Debug, Clone)]
pub struct Clip {
    pub width: usize,
    pub height: usize,
    pub frames: Vec<Vec<[f64; 3]>>,
}

impl Clip {
    /// From 8-bit RGB frames, as the pipeline returns them (`u8 / 255`).
    pub fn from_rgb8(width: usize, height: usize, frames: &[Vec<u8>]) -> Clip {
        Clip {
            width,
            height,
            frames: frames
                .iter()
                .map(|f| {
                    f.chunks_exact(3)
                        .map(|p| {
                            [
                                f64::from(p[0]) / 255.0,
                                f64::from(p[1]) / 255.0,
                                f64::from(p[2]) / 255.0,
                            ]
                        })
                        .collect()
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub frames_present: usize,
    pub dx: f64,
    pub dy: f64,
    pub xrange: f64,
    pub yrange: f64,
    pub area_end: f64,
    pub area_minmax: f64,
    pub area_bulge: f64,
    pub y_up: f64,
    pub y_down: f64,
    pub sweep: f64,
    pub iou_min: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub bg_rgb: [f64; 3],
    pub bg_name: String,
    pub bg: bool,
    pub fg_rgb: Option<[f64; 3]>,
    pub fg: bool,
    /// `None` when there was no subject to measure.
    pub stats: Option<Stats>,
    pub motion: bool,
    pub ok: bool,
}

/// Named colours in dataset.py's order (ties in "nearest" go to the first).
pub type Palette = Vec<(String, [f64; 3])>;

pub fn palette(colours: &BTreeMap<String, [f64; 3]>, order: &[&str]) -> Palette {
    order
        .iter()
        .map(|name| (name.to_string(), colours[*name]))
        .collect()
}

/// dataset.py's COLOUR_NAMES order.
pub const COLOUR_ORDER: [&str; 10] = [
    "red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "white", "black",
];

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

fn nearest(palette: &Palette, rgb: [f64; 3]) -> &str {
    let mut best = (f64::INFINITY, "");
    for (name, c) in palette {
        let d = dist(*c, rgb).powi(2);
        if d < best.0 {
            best = (d, name);
        }
    }
    best.1
}

/// numpy's median: the mean of the two middle values for an even count.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn median_rgb(pixels: &[[f64; 3]]) -> [f64; 3] {
    [0, 1, 2].map(|c| median(pixels.iter().map(|p| p[c]).collect()))
}

fn colour_ok(palette: &Palette, measured: [f64; 3], want: &str, tol: f64) -> bool {
    let Some((_, rgb)) = palette.iter().find(|(n, _)| n == want) else {
        return false;
    };
    nearest(palette, measured) == want && dist(measured, *rgb) <= tol
}

pub fn check(clip: &Clip, want: &Expected<'_>, c: &Constants, palette: &Palette) -> Verdict {
    let (w, h, k) = (clip.width, clip.height, c.ring_inset);
    let mut ring = Vec::new();
    for f in &clip.frames {
        let px = |x: usize, y: usize| f[y * w + x];
        ring.extend((k..w - k).map(|x| px(x, k)));
        ring.extend((k..w - k).map(|x| px(x, h - 1 - k)));
        ring.extend((k + 1..h - 1 - k).map(|y| px(k, y)));
        ring.extend((k + 1..h - 1 - k).map(|y| px(w - 1 - k, y)));
    }
    let bg_rgb = median_rgb(&ring);
    let bg_name = nearest(palette, bg_rgb).to_string();
    let bg = colour_ok(palette, bg_rgb, want.background, c.colour_tol);

    let mask: Vec<Vec<bool>> = clip
        .frames
        .iter()
        .map(|f| f.iter().map(|p| dist(*p, bg_rgb) > c.fg_dist).collect())
        .collect();
    let subject: Vec<[f64; 3]> = clip
        .frames
        .iter()
        .zip(&mask)
        .flat_map(|(f, m)| f.iter().zip(m).filter(|(_, on)| **on).map(|(p, _)| *p))
        .collect();
    if subject.len() < c.min_fg_pixels {
        return Verdict {
            bg_rgb,
            bg_name,
            bg,
            fg_rgb: None,
            fg: false,
            stats: None,
            motion: false,
            ok: false,
        };
    }
    let fg_rgb = median_rgb(&subject);
    let fg = colour_ok(palette, fg_rgb, want.subject_colour, c.colour_tol);
    let stats = motion_stats(&mask, w, h, c);
    let motion = motion_ok(want.motion, &stats, c);
    Verdict {
        bg_rgb,
        bg_name,
        bg,
        fg_rgb: Some(fg_rgb),
        fg,
        stats: Some(stats),
        motion,
        ok: bg && fg && motion,
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn ptp(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        - v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// numpy's `unwrap` with the default discontinuity of π.
fn unwrap(phase: &[f64]) -> Vec<f64> {
    let mut out = Vec::with_capacity(phase.len());
    let mut correction = 0.0;
    for (i, &p) in phase.iter().enumerate() {
        if i > 0 {
            let d = p - phase[i - 1];
            let mut dd = (d + PI).rem_euclid(2.0 * PI) - PI;
            if dd == -PI && d > 0.0 {
                dd = PI;
            }
            if d.abs() >= PI {
                correction += dd - d;
            }
        }
        out.push(p + correction);
    }
    out
}

pub fn motion_stats(mask: &[Vec<bool>], w: usize, h: usize, c: &Constants) -> Stats {
    let width = w as f64;
    let mut area = Vec::new();
    let mut cx = Vec::new();
    let mut cy = Vec::new();
    for m in mask {
        let (mut n, mut sx, mut sy) = (0usize, 0.0, 0.0);
        for y in 0..h {
            for x in 0..w {
                if m[y * w + x] {
                    n += 1;
                    sx += x as f64 + 0.5;
                    sy += y as f64 + 0.5;
                }
            }
        }
        let a = (n as f64).max(1.0);
        area.push(n as f64);
        cx.push(sx / a);
        cy.push(sy / a);
    }
    let idx: Vec<usize> = (0..mask.len())
        .filter(|&i| area[i] >= c.min_area as f64)
        .collect();
    if idx.len() < 4 {
        return Stats {
            frames_present: idx.len(),
            ..Stats::default()
        };
    }
    let x: Vec<f64> = idx.iter().map(|&i| cx[i]).collect();
    let y: Vec<f64> = idx.iter().map(|&i| cy[i]).collect();
    let ar: Vec<f64> = idx.iter().map(|&i| area[i]).collect();
    let n = idx.len();
    let dx = (mean(&x[n - 3..]) - mean(&x[..3])) / width;
    let dy = (mean(&y[n - 3..]) - mean(&y[..3])) / width;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_down, mut y_up) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for &v in &y {
        lo = lo.min(v);
        hi = hi.max(v);
        y_down = y_down.max(v - lo);
        y_up = y_up.max(hi - v);
    }
    let (mx, my) = (mean(&x), mean(&y));
    let angles: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(xi, yi)| (yi - my).atan2(xi - mx))
        .collect();
    let ang = unwrap(&angles);
    let sweep = (ang[n - 1] - ang[0]).abs() / (2.0 * PI);
    let m0 = &mask[idx[0]];
    let iou_min = idx[1..]
        .iter()
        .map(|&j| {
            let (mut inter, mut union) = (0usize, 0usize);
            for (a, b) in m0.iter().zip(&mask[j]) {
                inter += usize::from(*a && *b);
                union += usize::from(*a || *b);
            }
            inter as f64 / union.max(1) as f64
        })
        .fold(f64::INFINITY, f64::min);
    let a0 = mean(&ar[..2]) + 1.0;
    let a1 = mean(&ar[n - 2..]) + 1.0;
    let amax = ar.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let amin = ar.iter().copied().fold(f64::INFINITY, f64::min);
    Stats {
        frames_present: n,
        dx,
        dy,
        xrange: ptp(&x) / width,
        yrange: ptp(&y) / width,
        area_end: a1 / a0,
        area_minmax: (amax + 1.0) / (amin + 1.0),
        area_bulge: f64::max((amax + 1.0) / a0.max(a1), a0.min(a1) / (amin + 1.0)),
        y_up: y_up / width,
        y_down: y_down / width,
        sweep,
        iou_min,
    }
}

pub fn motion_ok(motion: &str, m: &Stats, c: &Constants) -> bool {
    if m.frames_present < c.min_present {
        return false;
    }
    let still_pos = m.xrange < c.still_range && m.yrange < c.still_range;
    let (mv, cr) = (c.move_, c.cross);
    match motion {
        "left" => m.dx < -mv && m.dy.abs() < cr * m.dx.abs(),
        "right" => m.dx > mv && m.dy.abs() < cr * m.dx.abs(),
        "up" => m.dy < -mv && m.dx.abs() < cr * m.dy.abs(),
        "down" => m.dy > mv && m.dx.abs() < cr * m.dy.abs(),
        "bouncing" => {
            m.yrange > c.bounce_range
                && m.y_up > c.bounce_leg
                && m.y_down > c.bounce_leg
                && m.xrange < cr * m.yrange
        }
        "orbiting" => {
            m.xrange > c.orbit_range && m.yrange > c.orbit_range && m.sweep > c.orbit_sweep
        }
        "growing" => m.area_end > c.grow && still_pos,
        "shrinking" => m.area_end < 1.0 / c.grow && still_pos,
        "pulsing" => m.area_minmax > c.pulse && m.area_bulge > c.pulse_bulge && still_pos,
        "spinning" => {
            m.xrange < c.spin_range
                && m.yrange < c.spin_range
                && m.area_minmax < c.spin_area
                && m.iou_min < c.spin_iou
        }
        "still" => still_pos && m.area_minmax < c.still_area && m.iou_min >= c.spin_iou,
        _ => false,
    }
}
