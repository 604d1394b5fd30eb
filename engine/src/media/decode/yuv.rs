//! 4:2:0 YCbCr to RGB with the matrix and range the stream signals, so colours match what a
//! player (or ffmpeg) shows rather than one fixed guess.

/// Fixed-point (16 fractional bits) coefficients for one matrix and range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Conversion {
    y_offset: i32,
    y_mul: i32,
    r_cr: i32,
    g_cb: i32,
    g_cr: i32,
    b_cb: i32,
}

const ONE: f64 = 65536.0;

impl Conversion {
    /// `matrix` is the H.264 VUI `matrix_coefficients` code. Unspecified and unknown codes
    /// use BT.601, which is what ffmpeg assumes too, so both decode paths agree.
    pub fn new(matrix: u8, full_range: bool) -> Conversion {
        let (kr, kb) = match matrix {
            1 => (0.2126, 0.0722),
            4 => (0.30, 0.11),
            7 => (0.212, 0.087),
            9 | 10 => (0.2627, 0.0593),
            _ => (0.299, 0.114),
        };
        let kg = 1.0 - kr - kb;
        let (y_scale, c_scale, y_offset) = if full_range {
            (1.0, 1.0, 0)
        } else {
            (255.0 / 219.0, 255.0 / 224.0, 16)
        };
        let fixed = |v: f64| (v * ONE).round() as i32;
        Conversion {
            y_offset,
            y_mul: fixed(y_scale),
            r_cr: fixed(2.0 * (1.0 - kr) * c_scale),
            g_cb: fixed(-2.0 * kb * (1.0 - kb) / kg * c_scale),
            g_cr: fixed(-2.0 * kr * (1.0 - kr) / kg * c_scale),
            b_cb: fixed(2.0 * (1.0 - kb) * c_scale),
        }
    }
}

/// Planes of one decoded picture, each with its row stride.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Planes<'a> {
    pub y: &'a [u8],
    pub u: &'a [u8],
    pub v: &'a [u8],
    pub y_stride: usize,
    pub uv_stride: usize,
}

/// Converts a `width`×`height` picture to packed RGB (chroma sampled nearest, as ffmpeg's
/// default conversion does). Errors, instead of panicking, when a plane is too short.
pub(crate) fn to_rgb(
    planes: Planes<'_>,
    width: usize,
    height: usize,
    conv: Conversion,
) -> Result<Vec<u8>, String> {
    let chroma_w = width.div_ceil(2);
    let chroma_h = height.div_ceil(2);
    let needed = |stride: usize, rows: usize, row_len: usize| {
        rows.checked_sub(1)
            .and_then(|r| r.checked_mul(stride))
            .and_then(|n| n.checked_add(row_len))
    };
    let short = needed(planes.y_stride, height, width).is_none_or(|n| planes.y.len() < n)
        || needed(planes.uv_stride, chroma_h, chroma_w)
            .is_none_or(|n| planes.u.len() < n || planes.v.len() < n);
    if short || planes.y_stride < width || planes.uv_stride < chroma_w {
        return Err(format!(
            "the decoder returned planes too small for {width}x{height}"
        ));
    }

    let mut out = vec![0u8; width * height * 3];
    let mut chroma = vec![(0i32, 0i32, 0i32); chroma_w];
    for (row, rgb_row) in out.chunks_exact_mut(width * 3).enumerate() {
        if row % 2 == 0 {
            let start = (row / 2) * planes.uv_stride;
            let u_row = &planes.u[start..start + chroma_w];
            let v_row = &planes.v[start..start + chroma_w];
            for ((c, &cb), &cr) in chroma.iter_mut().zip(u_row).zip(v_row) {
                let cb = i32::from(cb) - 128;
                let cr = i32::from(cr) - 128;
                *c = (
                    conv.r_cr * cr,
                    conv.g_cb * cb + conv.g_cr * cr,
                    conv.b_cb * cb,
                );
            }
        }
        let start = row * planes.y_stride;
        let y_row = &planes.y[start..start + width];
        for (x, (px, &luma)) in rgb_row.chunks_exact_mut(3).zip(y_row).enumerate() {
            let luma = (i32::from(luma) - conv.y_offset) * conv.y_mul + (1 << 15);
            let (r, g, b) = chroma[x / 2];
            px[0] = clamp(luma + r);
            px[1] = clamp(luma + g);
            px[2] = clamp(luma + b);
        }
    }
    Ok(out)
}

fn clamp(v: i32) -> u8 {
    (v >> 16).clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_pixel(y: u8, u: u8, v: u8, conv: Conversion) -> [u8; 3] {
        let planes = Planes {
            y: &[y, y, y, y],
            u: &[u],
            v: &[v],
            y_stride: 2,
            uv_stride: 1,
        };
        let rgb = to_rgb(planes, 2, 2, conv).expect("converts");
        [rgb[0], rgb[1], rgb[2]]
    }

    #[test]
    fn limited_range_black_white_and_red() {
        let bt601 = Conversion::new(2, false);
        assert_eq!(one_pixel(16, 128, 128, bt601), [0, 0, 0]);
        assert_eq!(one_pixel(235, 128, 128, bt601), [255, 255, 255]);
        // BT.601 limited red is Y 81, Cb 90, Cr 240.
        let red = one_pixel(81, 90, 240, bt601);
        assert!(red[0] >= 253 && red[1] <= 2 && red[2] <= 2, "{red:?}");
        // The same code values mean a different colour under BT.709.
        let bt709 = Conversion::new(1, false);
        assert_ne!(one_pixel(81, 90, 240, bt709), red);
    }

    #[test]
    fn full_range_is_not_stretched() {
        let full = Conversion::new(1, true);
        assert_eq!(one_pixel(0, 128, 128, full), [0, 0, 0]);
        assert_eq!(one_pixel(255, 128, 128, full), [255, 255, 255]);
        assert_eq!(one_pixel(100, 128, 128, full), [100, 100, 100]);
    }

    #[test]
    fn short_planes_are_an_error() {
        let planes = Planes {
            y: &[0; 3],
            u: &[0],
            v: &[0],
            y_stride: 2,
            uv_stride: 1,
        };
        assert!(to_rgb(planes, 2, 2, Conversion::new(2, false)).is_err());
    }
}
