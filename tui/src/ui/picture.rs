//! Half-block pictures: each terminal cell shows two stacked pixels, the upper one as the
//! foreground of `▀` and the lower one as the background. Works in any terminal with true
//! colour, over SSH and inside tmux.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::widgets::Widget;

/// One RGB frame, drawn as large as fits with its aspect kept, centred.
#[derive(Debug, Clone, Copy)]
pub struct HalfBlocks<'a> {
    pub rgb: &'a [u8],
    pub width: u32,
    pub height: u32,
}

impl HalfBlocks<'_> {
    /// The picture's size in cells inside `area`: (columns, rows).
    pub fn fitted(&self, area: Rect) -> (u16, u16) {
        if self.width == 0 || self.height == 0 || area.width == 0 || area.height == 0 {
            return (0, 0);
        }
        let (w, h) = (self.width as f64, self.height as f64);
        let scale = (f64::from(area.width) / w).min(f64::from(area.height) * 2.0 / h);
        let cols = ((w * scale).round() as u16).clamp(1, area.width);
        let px_rows = ((h * scale).round() as u16).max(1);
        let rows = px_rows.div_ceil(2).clamp(1, area.height);
        (cols, rows)
    }
}

impl Widget for HalfBlocks<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let expected = self.width as usize * self.height as usize * 3;
        if self.rgb.len() != expected {
            return;
        }
        let (cols, rows) = self.fitted(area);
        if cols == 0 {
            return;
        }
        let x0 = area.x + (area.width - cols) / 2;
        let y0 = area.y + (area.height - rows) / 2;
        let px_h = u32::from(rows) * 2;
        for cy in 0..rows {
            for cx in 0..cols {
                let top = self.sample(u32::from(cx), u32::from(cy) * 2, u32::from(cols), px_h);
                let bottom =
                    self.sample(u32::from(cx), u32::from(cy) * 2 + 1, u32::from(cols), px_h);
                if let Some(cell) = buf.cell_mut((x0 + cx, y0 + cy)) {
                    cell.set_char('▀').set_fg(top).set_bg(bottom);
                }
            }
        }
    }
}

impl HalfBlocks<'_> {
    /// The average colour of the source pixels under output pixel (x, y) of an
    /// `out_w`×`out_h` grid: a box filter, so shrinking does not shimmer.
    fn sample(&self, x: u32, y: u32, out_w: u32, out_h: u32) -> Color {
        let (w, h) = (self.width, self.height);
        let sx0 = x * w / out_w;
        let sx1 = ((x + 1) * w / out_w).max(sx0 + 1).min(w);
        let sy0 = y * h / out_h;
        let sy1 = ((y + 1) * h / out_h).max(sy0 + 1).min(h);
        let (mut r, mut g, mut b, mut n) = (0u32, 0u32, 0u32, 0u32);
        for sy in sy0..sy1 {
            for sx in sx0..sx1 {
                let i = ((sy * w + sx) * 3) as usize;
                r += u32::from(self.rgb[i]);
                g += u32::from(self.rgb[i + 1]);
                b += u32::from(self.rgb[i + 2]);
                n += 1;
            }
        }
        let n = n.max(1);
        Color::Rgb((r / n) as u8, (g / n) as u8, (b / n) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cell_shows_two_pixels() {
        // 2×2: red, green on top; blue, white below.
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255];
        let picture = HalfBlocks {
            rgb: &rgb,
            width: 2,
            height: 2,
        };
        let area = Rect::new(0, 0, 2, 1);
        let mut buf = Buffer::empty(area);
        picture.render(area, &mut buf);
        let left = &buf[(0, 0)];
        assert_eq!(left.symbol(), "▀");
        assert_eq!(left.fg, Color::Rgb(255, 0, 0));
        assert_eq!(left.bg, Color::Rgb(0, 0, 255));
        let right = &buf[(1, 0)];
        assert_eq!(
            (right.fg, right.bg),
            (Color::Rgb(0, 255, 0), Color::Rgb(255, 255, 255))
        );
    }

    #[test]
    fn shrinking_averages_and_keeps_the_aspect_centred() {
        // 4×2 of alternating black and white columns → fits 10×10 cells as 10 cols × 3 rows.
        let mut rgb = Vec::new();
        for _ in 0..2 {
            for x in 0..4 {
                let v = if x % 2 == 0 { 0 } else { 200 };
                rgb.extend_from_slice(&[v, v, v]);
            }
        }
        let picture = HalfBlocks {
            rgb: &rgb,
            width: 4,
            height: 2,
        };
        assert_eq!(picture.fitted(Rect::new(0, 0, 10, 10)), (10, 3));
        assert_eq!(picture.fitted(Rect::new(0, 0, 2, 10)), (2, 1));
        let area = Rect::new(0, 0, 2, 1);
        let mut buf = Buffer::empty(area);
        picture.render(area, &mut buf);
        assert_eq!(buf[(0, 0)].fg, Color::Rgb(100, 100, 100));
    }

    #[test]
    fn a_wrong_sized_frame_draws_nothing() {
        let picture = HalfBlocks {
            rgb: &[1, 2],
            width: 2,
            height: 2,
        };
        let area = Rect::new(0, 0, 4, 4);
        let mut buf = Buffer::empty(area);
        picture.render(area, &mut buf);
        assert_eq!(buf, Buffer::empty(area));
    }
}
