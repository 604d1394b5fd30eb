//! RGB to 8-bit 4:2:0 YUV (I420), BT.601 limited range: what VP9 and H.264 decoders assume
//! when a stream carries no colour description.

use crate::media::{Frames, PixelFormat};

/// One I420 picture: a full-size Y plane, then quarter-size U and V planes, contiguous.
#[derive(Debug, Clone, PartialEq)]
pub struct I420 {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl I420 {
    pub fn y_len(&self) -> usize {
        self.width as usize * self.height as usize
    }

    pub fn chroma_len(&self) -> usize {
        self.width.div_ceil(2) as usize * self.height.div_ceil(2) as usize
    }
}

/// Converts one frame. Chroma is the average of each 2×2 block, so edges stay clean.
pub fn rgb_to_i420(frames: &Frames, index: usize) -> I420 {
    let (w, h) = (frames.width as usize, frames.height as usize);
    let bpp = frames.format.bytes_per_pixel();
    let src = &frames.frames[index];
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut data = vec![0u8; w * h + 2 * cw * ch];
    let (y_plane, chroma) = data.split_at_mut(w * h);
    let (u_plane, v_plane) = chroma.split_at_mut(cw * ch);
    for (row, y_row) in y_plane.chunks_exact_mut(w).enumerate() {
        let line = &src[row * w * bpp..(row + 1) * w * bpp];
        for (y, p) in y_row.iter_mut().zip(line.chunks_exact(bpp)) {
            let (r, g, b) = (p[0] as i32, p[1] as i32, p[2] as i32);
            *y = (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8;
        }
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut r, mut g, mut b, mut n) = (0i32, 0i32, 0i32, 0i32);
            for y in (cy * 2)..(cy * 2 + 2).min(h) {
                for x in (cx * 2)..(cx * 2 + 2).min(w) {
                    let i = (y * w + x) * bpp;
                    r += src[i] as i32;
                    g += src[i + 1] as i32;
                    b += src[i + 2] as i32;
                    n += 1;
                }
            }
            let (r, g, b) = (r / n, g / n, b / n);
            u_plane[cy * cw + cx] = (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8;
            v_plane[cy * cw + cx] = (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8;
        }
    }
    I420 {
        width: frames.width,
        height: frames.height,
        data,
    }
}

/// The alpha channel as an I420 picture (alpha in Y, neutral chroma): how WebM carries VP9
/// transparency, in a second stream.
pub fn alpha_to_i420(frames: &Frames, index: usize) -> Option<I420> {
    if frames.format != PixelFormat::Rgba8 {
        return None;
    }
    let (w, h) = (frames.width as usize, frames.height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut data = Vec::with_capacity(w * h + 2 * cw * ch);
    data.extend(frames.frames[index].chunks_exact(4).map(|p| p[3]));
    data.resize(w * h + 2 * cw * ch, 128);
    Some(I420 {
        width: frames.width,
        height: frames.height,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(pixel: [u8; 3]) -> Frames {
        Frames {
            width: 2,
            height: 2,
            format: PixelFormat::Rgb8,
            fps: 1,
            frames: vec![pixel.repeat(4)],
        }
    }

    #[test]
    fn known_colours_convert_to_bt601_limited_range() {
        // Reference values from the BT.601 studio-swing equations.
        assert_eq!(
            rgb_to_i420(&frame([0, 0, 0]), 0).data,
            [16, 16, 16, 16, 128, 128]
        );
        assert_eq!(
            rgb_to_i420(&frame([255, 255, 255]), 0).data,
            [235, 235, 235, 235, 128, 128]
        );
        let red = rgb_to_i420(&frame([255, 0, 0]), 0).data;
        assert_eq!((red[0], red[4], red[5]), (82, 90, 240));
    }

    #[test]
    fn alpha_goes_into_the_luma_plane() {
        let rgba = Frames {
            width: 2,
            height: 2,
            format: PixelFormat::Rgba8,
            fps: 1,
            frames: vec![vec![9, 9, 9, 0, 9, 9, 9, 255, 9, 9, 9, 128, 9, 9, 9, 7]],
        };
        let a = alpha_to_i420(&rgba, 0).expect("has alpha");
        assert_eq!(a.data, [0, 255, 128, 7, 128, 128]);
        assert!(alpha_to_i420(&frame([1, 2, 3]), 0).is_none());
    }
}
