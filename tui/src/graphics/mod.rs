//! Pictures in real pixels where the terminal can show them: the kitty graphics protocol or
//! sixel, with half-block cells ([`crate::ui::picture`]) as the fallback and the default.
//!
//! How it fits ratatui: while drawing, the preview leaves the picture's cells blank and marks
//! them skipped ([`ratatui::buffer::CellDiffOption::Skip`]) so ratatui never writes over the
//! picture, and reports a [`Placement`]. After the frame is on screen the run loop hands that
//! to the [`Painter`], which writes the picture's escape sequence to the terminal only when
//! the frame shown or the place changed. Encoders are pure functions ([`kitty`], [`sixel`],
//! [`quantize`]); choosing a mode from the environment and the terminal's answers is in
//! [`detect`].

pub mod detect;
pub mod kitty;
mod painter;
pub mod quantize;
pub mod sixel;

use std::fmt;
use std::str::FromStr;

use loopsmith_protocol::JobId;
use ratatui::layout::Rect;

pub use painter::Painter;

/// How pictures are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Two pixels a cell in coloured `▀` characters: works everywhere with true colour.
    #[default]
    HalfBlocks,
    Kitty,
    Sixel,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::HalfBlocks => "half-blocks",
            Mode::Kitty => "kitty",
            Mode::Sixel => "sixel",
        }
    }
}

/// What the operator asked for (`console --graphics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// Whatever the terminal is found to support, half-blocks when unsure.
    #[default]
    Auto,
    Kitty,
    Sixel,
    HalfBlocks,
}

impl FromStr for Choice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Choice::Auto),
            "kitty" => Ok(Choice::Kitty),
            "sixel" => Ok(Choice::Sixel),
            "halfblocks" | "half-blocks" => Ok(Choice::HalfBlocks),
            other => Err(format!(
                "unknown graphics mode {other:?}; use auto, kitty, sixel or halfblocks"
            )),
        }
    }
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Choice::Auto => "auto",
            Choice::Kitty => "kitty",
            Choice::Sixel => "sixel",
            Choice::HalfBlocks => "halfblocks",
        })
    }
}

/// Longest side of a sixel picture on screen, in pixels. Sixel is sent pixel by pixel, so the
/// bytes on the wire and the encoding time grow with the square of it; previews are at most
/// 160 pixels a side, so three times that shows all there is.
pub const MAX_SIXEL_SIDE: f64 = 480.0;

/// The picture mode in use and a cell's size in pixels (width, height) when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Graphics {
    pub mode: Mode,
    pub cell_px: Option<(u16, u16)>,
}

impl Graphics {
    pub const HALF_BLOCKS: Graphics = Graphics {
        mode: Mode::HalfBlocks,
        cell_px: None,
    };

    /// Whether pictures go out as escape sequences rather than cells.
    pub fn pixels(&self) -> bool {
        self.mode != Mode::HalfBlocks
    }

    /// The cells a `width`×`height` picture covers inside `area`: as large as fits with its
    /// aspect kept (cells taken as twice as tall as wide when their size is unknown), centred.
    /// Sixel pictures are drawn at their pixel size, so they grow to at most [`MAX_SIXEL_SIDE`].
    pub fn fit(&self, area: Rect, width: u32, height: u32) -> Rect {
        if width == 0 || height == 0 || area.width == 0 || area.height == 0 {
            return Rect::new(area.x, area.y, 0, 0);
        }
        let (cw, ch) = match self.cell_px {
            Some((w, h)) if w > 0 && h > 0 => (f64::from(w), f64::from(h)),
            _ => (1.0, 2.0),
        };
        let (w, h) = (f64::from(width), f64::from(height));
        // Screen pixels per picture pixel.
        let mut scale = (f64::from(area.width) * cw / w).min(f64::from(area.height) * ch / h);
        if self.mode == Mode::Sixel && self.cell_px.is_some() {
            scale = scale.min(MAX_SIXEL_SIDE / w.max(h));
        }
        let cols = ((w * scale / cw).round() as u16).clamp(1, area.width);
        let rows = ((h * scale / ch).round() as u16).clamp(1, area.height);
        Rect::new(
            area.x + (area.width - cols) / 2,
            area.y + (area.height - rows) / 2,
            cols,
            rows,
        )
    }
}

/// Where a frame put a picture to be drawn in pixels, and which one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The cells it covers, left blank and skipped in ratatui's buffer.
    pub area: Rect,
    pub job: JobId,
    pub frame: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_print_alike() {
        for choice in [
            Choice::Auto,
            Choice::Kitty,
            Choice::Sixel,
            Choice::HalfBlocks,
        ] {
            assert_eq!(choice.to_string().parse::<Choice>(), Ok(choice));
        }
        assert!("ascii".parse::<Choice>().is_err());
    }

    #[test]
    fn a_picture_fits_with_its_aspect_kept_and_centred() {
        let unknown = Graphics {
            mode: Mode::Kitty,
            cell_px: None,
        };
        // Square picture, cells twice as tall as wide: 20 rows take 40 columns.
        assert_eq!(
            unknown.fit(Rect::new(10, 5, 100, 20), 160, 160),
            Rect::new(40, 5, 40, 20)
        );
        // Known cells of 10×25 pixels: a square is 2.5 columns per row.
        let known = Graphics {
            mode: Mode::Kitty,
            cell_px: Some((10, 25)),
        };
        assert_eq!(
            known.fit(Rect::new(0, 0, 100, 20), 160, 160),
            Rect::new(25, 0, 50, 20)
        );
        // A wide picture in a tall area is limited by the width.
        assert_eq!(
            unknown.fit(Rect::new(0, 0, 20, 50), 200, 100),
            Rect::new(0, 22, 20, 5)
        );
        // Nothing to fit, or nowhere: an empty rectangle, not a panic.
        assert_eq!(unknown.fit(Rect::new(3, 4, 0, 9), 10, 10).area(), 0);
        assert_eq!(unknown.fit(Rect::new(3, 4, 9, 9), 0, 10).area(), 0);
    }

    #[test]
    fn sixel_pictures_are_at_most_480_pixels_a_side() {
        let sixel = Graphics {
            mode: Mode::Sixel,
            cell_px: Some((10, 20)),
        };
        // 480 px = 48 columns and 24 rows, however large the area or small the clip.
        for side in [16, 160] {
            assert_eq!(
                sixel.fit(Rect::new(0, 0, 200, 60), side, side),
                Rect::new(76, 18, 48, 24)
            );
        }
        // A smaller area still limits it.
        assert_eq!(
            sixel.fit(Rect::new(0, 0, 20, 5), 160, 160),
            Rect::new(5, 0, 10, 5)
        );
    }
}
