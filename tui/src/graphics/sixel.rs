//! The DEC sixel encoder: a picture as a DCS string the terminal paints into the cells under
//! the cursor. Pure: pixels in, text out.
//!
//! Layout of the output: `ESC P q`, raster attributes (`"1;1;W;H`: square pixels and the
//! size), the palette (`#i;2;r;g;b` in percent), then the picture in bands six pixels high;
//! within a band each colour present is one pass over the columns it spans (`#i`, then one
//! character per column whose six bits say which of the six pixels have that colour, runs as
//! `!n`), passes separated by `$` (back to the band's start) and bands by `-`; `ESC \` ends it.

use std::fmt::Write as _;

use super::quantize::{Mapper, Rgb};

/// A packed RGB picture quantised to at most 256 colours and encoded.
pub fn encode_rgb(rgb: &[u8], width: usize, height: usize) -> String {
    let mut mapper = Mapper::for_frames([rgb], 256);
    let indices = mapper.indices(rgb);
    encode(&indices, width, height, mapper.palette())
}

/// `indices` (one palette index per pixel, row by row) as sixel. Indices past the palette's
/// end are drawn with its last colour; a picture whose size does not match gives an empty
/// string, so nothing is drawn rather than garbage.
pub fn encode(indices: &[u8], width: usize, height: usize, palette: &[Rgb]) -> String {
    if width == 0 || height == 0 || indices.len() != width * height {
        return String::new();
    }
    let black = [[0u8; 3]];
    let palette = if palette.is_empty() {
        &black[..]
    } else {
        &palette[..palette.len().min(256)]
    };
    let last = palette.len() - 1;
    let mut out = String::with_capacity(width * height / 2);
    out.push_str("\x1bPq");
    let _ = write!(out, "\"1;1;{width};{height}");
    for (i, c) in palette.iter().enumerate() {
        let pct = |v: u8| (u32::from(v) * 100 + 127) / 255;
        let _ = write!(out, "#{i};2;{};{};{}", pct(c[0]), pct(c[1]), pct(c[2]));
    }
    // Per band: each colour's six-bit column masks, and the columns it spans.
    let mut masks = vec![0u8; palette.len() * width];
    let mut span = vec![(usize::MAX, 0usize); palette.len()];
    let mut used: Vec<usize> = Vec::with_capacity(palette.len());
    for band in 0..height.div_ceil(6) {
        for &c in &used {
            masks[c * width..(c + 1) * width].fill(0);
            span[c] = (usize::MAX, 0);
        }
        used.clear();
        for bit in 0..6 {
            let y = band * 6 + bit;
            if y >= height {
                break;
            }
            for x in 0..width {
                let c = usize::from(indices[y * width + x]).min(last);
                if span[c].0 == usize::MAX {
                    used.push(c);
                    span[c] = (x, x);
                }
                span[c] = (span[c].0.min(x), span[c].1.max(x));
                masks[c * width + x] |= 1 << bit;
            }
        }
        used.sort_unstable();
        for (k, &c) in used.iter().enumerate() {
            if k > 0 {
                out.push('$');
            }
            let _ = write!(out, "#{c}");
            let (first, end) = span[c];
            // Columns before this colour's first one are skipped with empty sixels.
            run(&mut out, b'?', first);
            let row = &masks[c * width..(c + 1) * width];
            let mut x = first;
            while x <= end {
                let m = row[x];
                let n = row[x..=end].iter().take_while(|&&v| v == m).count();
                run(&mut out, b'?' + m, n);
                x += n;
            }
        }
        out.push('-');
    }
    out.push_str("\x1b\\");
    out
}

/// `n` copies of sixel `c`, as `!n` when that is shorter.
fn run(out: &mut String, c: u8, n: usize) {
    match n {
        0 => {}
        1..=3 => {
            for _ in 0..n {
                out.push(char::from(c));
            }
        }
        _ => {
            let _ = write!(out, "!{n}{}", char::from(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small sixel reader, enough for what [`encode`] writes: the raster size, `#i;2;r;g;b`
    /// colour definitions, `#i` selection, sixel characters, `!n` runs, `$` and `-`. Returns
    /// the picture as packed RGB.
    fn decode(text: &str) -> (usize, usize, Vec<u8>) {
        let body = text
            .strip_prefix("\x1bPq")
            .and_then(|t| t.strip_suffix("\x1b\\"))
            .expect("DCS q … ST");
        let bytes = body.as_bytes();
        let mut i = 0;
        let number = |i: &mut usize| {
            let start = *i;
            while *i < bytes.len() && bytes[*i].is_ascii_digit() {
                *i += 1;
            }
            body[start..*i].parse::<usize>().expect("a number")
        };
        assert_eq!(bytes[i], b'"', "raster attributes first");
        i += 1;
        let mut raster = Vec::new();
        loop {
            raster.push(number(&mut i));
            if bytes[i] != b';' {
                break;
            }
            i += 1;
        }
        let [_, _, width, height] = raster[..] else {
            panic!("raster attributes {raster:?}");
        };
        let mut colours = vec![[0u8; 3]; 256];
        let mut pixels = vec![[0u8; 3]; width * height];
        let (mut x, mut band, mut colour) = (0usize, 0usize, 0usize);
        while i < bytes.len() {
            match bytes[i] {
                b'#' => {
                    i += 1;
                    colour = number(&mut i);
                    if bytes.get(i) == Some(&b';') {
                        i += 1;
                        assert_eq!(number(&mut i), 2, "RGB colour space");
                        let mut c = [0u8; 3];
                        for v in &mut c {
                            assert_eq!(bytes[i], b';');
                            i += 1;
                            let pct = number(&mut i);
                            assert!(pct <= 100);
                            *v = ((pct * 255 + 50) / 100) as u8;
                        }
                        colours[colour] = c;
                    }
                }
                b'$' => {
                    x = 0;
                    i += 1;
                }
                b'-' => {
                    x = 0;
                    band += 1;
                    i += 1;
                }
                b'!' => {
                    i += 1;
                    let n = number(&mut i);
                    let c = bytes[i];
                    i += 1;
                    for _ in 0..n {
                        paint(&mut pixels, width, height, x, band, c, colours[colour]);
                        x += 1;
                    }
                }
                c @ b'?'..=b'~' => {
                    paint(&mut pixels, width, height, x, band, c, colours[colour]);
                    x += 1;
                    i += 1;
                }
                other => panic!("unexpected byte {other:#x} at {i}"),
            }
        }
        (width, height, pixels.concat())
    }

    fn paint(
        pixels: &mut [[u8; 3]],
        width: usize,
        height: usize,
        x: usize,
        band: usize,
        c: u8,
        colour: [u8; 3],
    ) {
        assert!(x < width, "a sixel past the right edge");
        let bits = c - b'?';
        for bit in 0..6 {
            let y = band * 6 + bit;
            if bits & (1 << bit) != 0 {
                assert!(y < height, "a pixel below the picture");
                pixels[y * width + x] = colour;
            }
        }
    }

    fn gradient(width: usize, height: usize) -> Vec<u8> {
        (0..height)
            .flat_map(|y| {
                (0..width).flat_map(move |x| {
                    [
                        (x * 255 / width.max(1)) as u8,
                        (y * 255 / height.max(1)) as u8,
                        ((x + y) * 7 % 256) as u8,
                    ]
                })
            })
            .collect()
    }

    #[test]
    fn few_colours_come_back_within_the_percent_rounding() {
        // Stripes of four colours, 13 rows (two full bands and a partial one), 7 columns.
        let colours = [[255u8, 0, 0], [0, 128, 255], [250, 250, 250], [3, 2, 1]];
        let (w, h) = (7, 13);
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| colours[(i / 3 + i % w) % colours.len()])
            .collect();
        let text = encode_rgb(&rgb, w, h);
        assert!(text.starts_with("\x1bPq\"1;1;7;13#"), "{text:?}");
        assert!(text.ends_with("-\x1b\\"));
        let (dw, dh, back) = decode(&text);
        assert_eq!((dw, dh), (w, h));
        for (a, b) in rgb.iter().zip(&back) {
            // Percent steps are 2.55 levels apart.
            assert!(a.abs_diff(*b) <= 2, "{a} came back as {b}");
        }
    }

    #[test]
    fn a_photo_like_picture_comes_back_within_the_quantisation_error() {
        let (w, h) = (97, 61);
        let rgb = gradient(w, h);
        let text = encode_rgb(&rgb, w, h);
        let (_, _, back) = decode(&text);
        // Exactly what the palette gives, up to the percent rounding of its colours.
        let mut mapper = Mapper::for_frames([rgb.as_slice()], 256);
        let quantised: Vec<u8> = mapper
            .indices(&rgb)
            .into_iter()
            .flat_map(|i| mapper.palette()[usize::from(i)])
            .collect();
        for (i, (q, b)) in quantised.iter().zip(&back).enumerate() {
            assert!(q.abs_diff(*b) <= 2, "pixel {}: {q} came back as {b}", i / 3);
        }
        // And the palette stands for the picture well: thousands of colours in 256.
        let mean = rgb
            .iter()
            .zip(&back)
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum::<f64>()
            / rgb.len() as f64;
        assert!(mean <= 8.0, "mean channel error {mean:.2}");
        assert!(!text.contains("#256;"), "at most 256 colour registers");
    }

    #[test]
    fn runs_are_compressed() {
        let (w, h) = (200, 6);
        let rgb = [10u8, 20, 30].repeat(w * h);
        let text = encode_rgb(&rgb, w, h);
        // One colour, one full band: a single run of the all-bits sixel.
        assert_eq!(text, "\x1bPq\"1;1;200;6#0;2;4;8;12#0!200~-\x1b\\");
        let back = decode(&text).2;
        assert!(rgb.iter().zip(&back).all(|(a, b)| a.abs_diff(*b) <= 2));
    }

    #[test]
    fn a_colour_starts_where_it_first_appears() {
        // A red dot at (5, 0) on black: red skips five empty columns first.
        let (w, h) = (8, 1);
        let mut rgb = vec![0u8; w * h * 3];
        rgb[15] = 255;
        let text = encode_rgb(&rgb, w, h);
        assert!(text.contains("#1!5?@"), "{text:?}");
        assert_eq!(decode(&text).2, rgb);
    }

    #[test]
    fn bad_input_draws_nothing() {
        assert_eq!(encode(&[0, 1], 3, 3, &[[0, 0, 0]]), "");
        assert_eq!(encode(&[], 0, 0, &[]), "");
        // An index past the palette is drawn in its last colour, not a panic.
        let text = encode(&[0, 9], 2, 1, &[[0, 0, 0], [255, 255, 255]]);
        assert_eq!(decode(&text).2, vec![0, 0, 0, 255, 255, 255]);
        // No palette at all: black.
        assert_eq!(decode(&encode(&[0], 1, 1, &[])).2, vec![0, 0, 0]);
    }
}
