//! Sends pictures to the terminal after each frame: only when the frame shown or its place
//! changed, never in between, so a paused clip or an idle console writes nothing.

use std::collections::HashMap;
use std::io::{self, Write};

use crossterm::cursor::MoveTo;
use crossterm::queue;
use loopsmith_protocol::JobId;
use ratatui::layout::Rect;

use super::quantize::Mapper;
use super::{Graphics, Mode, Placement, kitty, sixel};
use crate::app::{Player, PreviewState};

/// The two kitty image ids a clip plays through in turn (arbitrary; the console is alone on
/// the alternate screen).
pub const KITTY_IDS: [u32; 2] = [0x4c53_0001, 0x4c53_0002];
/// Most memory kept for encoded sixel frames of the clip on screen; beyond it frames are
/// encoded each time they are shown.
const SIXEL_CACHE_BYTES: usize = 64 << 20;

#[derive(Debug)]
pub struct Painter {
    graphics: Graphics,
    /// What is on the terminal now, as far as the painter knows.
    shown: Option<Placement>,
    /// Index into [`KITTY_IDS`] of the id the next frame goes to.
    kitty_next: usize,
    sixel: SixelFrames,
}

/// The clip's palette and its frames encoded at the size on screen.
#[derive(Debug, Default)]
struct SixelFrames {
    palette_of: Option<JobId>,
    mapper: Option<Mapper>,
    /// (job, pixel width, pixel height) the encoded frames are for.
    size_of: Option<(JobId, usize, usize)>,
    encoded: HashMap<usize, String>,
    bytes: usize,
}

impl Painter {
    pub fn new(graphics: Graphics) -> Painter {
        Painter {
            graphics,
            shown: None,
            kitty_next: 0,
            sixel: SixelFrames::default(),
        }
    }

    pub fn graphics(&self) -> Graphics {
        self.graphics
    }

    /// Whether pictures go out in pixels at all.
    pub fn active(&self) -> bool {
        self.graphics.pixels()
    }

    /// A new cell size (the window was resized or its font changed).
    pub fn set_graphics(&mut self, graphics: Graphics) {
        if graphics != self.graphics {
            self.graphics = graphics;
            self.sixel.size_of = None;
            self.invalidate();
        }
    }

    /// Forgets what is on screen, after the screen was cleared: the next frame is sent again.
    pub fn invalidate(&mut self) {
        self.shown = None;
    }

    /// Whether the screen must be cleared and drawn again before painting `next`: when a
    /// picture appears, moves, changes size or goes away. Its cells were skipped by ratatui, so
    /// what was there before (text, or old sixel pixels) is still on the terminal.
    pub fn needs_clear(&self, next: Option<&Placement>) -> bool {
        self.active() && self.shown.map(|s| s.area) != next.map(|p| p.area)
    }

    /// Puts the picture of `next` on the terminal, or takes the last one away, when that
    /// changes anything. Writes to `out` without flushing.
    pub fn paint(
        &mut self,
        next: Option<Placement>,
        preview: &PreviewState,
        out: &mut impl Write,
    ) -> io::Result<()> {
        if !self.active() || next == self.shown {
            return Ok(());
        }
        let player = match (next, preview) {
            (Some(p), PreviewState::Ready(player))
                if player.job == p.job
                    && player.frames.get(p.frame).is_some_and(|f| {
                        f.len() as u64 == u64::from(player.width) * u64::from(player.height) * 3
                    }) =>
            {
                Some(player)
            }
            _ => None,
        };
        match (self.graphics.mode, next, player) {
            (Mode::Kitty, Some(place), Some(player)) => {
                let id = KITTY_IDS[self.kitty_next];
                let previous = KITTY_IDS[1 - self.kitty_next];
                queue!(out, MoveTo(place.area.x, place.area.y))?;
                out.write_all(
                    kitty::transmit_and_place(
                        &player.frames[place.frame],
                        player.width,
                        player.height,
                        id,
                        place.area.width,
                        place.area.height,
                    )
                    .as_bytes(),
                )?;
                // The new frame is up before the old one goes: no blank in between.
                out.write_all(kitty::delete(previous).as_bytes())?;
                self.kitty_next = 1 - self.kitty_next;
            }
            (Mode::Kitty, ..) => {
                for id in KITTY_IDS {
                    out.write_all(kitty::delete(id).as_bytes())?;
                }
            }
            (Mode::Sixel, Some(place), Some(player)) => {
                if let Some(text) = self.sixel_frame(player, place) {
                    queue!(out, MoveTo(place.area.x, place.area.y))?;
                    out.write_all(text.as_bytes())?;
                }
            }
            // Sixel pixels are cell content: the clear before this frame took them away.
            (Mode::Sixel | Mode::HalfBlocks, ..) => {}
        }
        self.shown = next;
        Ok(())
    }

    /// Takes pictures off the terminal before the console exits.
    pub fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.graphics.mode == Mode::Kitty {
            for id in KITTY_IDS {
                out.write_all(kitty::delete(id).as_bytes())?;
            }
        }
        self.shown = None;
        Ok(())
    }

    /// The sixel text of one frame at the placement's pixel size, from the cache when it was
    /// encoded before.
    fn sixel_frame(&mut self, player: &Player, place: Placement) -> Option<String> {
        let (cw, ch) = self.graphics.cell_px?;
        let (width, height) = sixel_size(place.area, (cw, ch));
        if width == 0 || height == 0 {
            return None;
        }
        let cache = &mut self.sixel;
        if cache.palette_of != Some(player.job) || cache.mapper.is_none() {
            // One palette for the whole clip, so colours hold still from frame to frame.
            cache.mapper = Some(Mapper::for_frames(
                player.frames.iter().map(Vec::as_slice),
                256,
            ));
            cache.palette_of = Some(player.job);
            cache.size_of = None;
        }
        if cache.size_of != Some((player.job, width, height)) {
            cache.encoded.clear();
            cache.bytes = 0;
            cache.size_of = Some((player.job, width, height));
        }
        if let Some(text) = cache.encoded.get(&place.frame) {
            return Some(text.clone());
        }
        let mapper = cache.mapper.as_mut()?;
        // Quantised at the clip's own size, then enlarged: a pixel's colour is looked up once.
        let indices = mapper.indices(&player.frames[place.frame]);
        let scaled = scale_nearest(
            &indices,
            player.width as usize,
            player.height as usize,
            width,
            height,
        );
        let text = sixel::encode(&scaled, width, height, mapper.palette());
        if cache.bytes + text.len() <= SIXEL_CACHE_BYTES {
            cache.bytes += text.len();
            cache.encoded.insert(place.frame, text.clone());
        }
        Some(text)
    }
}

/// The pixel size of a sixel picture covering `area`: the full width, and the height rounded
/// down to whole six-pixel bands, so the last band never spills into the row below.
pub fn sixel_size(area: Rect, (cw, ch): (u16, u16)) -> (usize, usize) {
    let width = usize::from(area.width) * usize::from(cw);
    let height = usize::from(area.height) * usize::from(ch) / 6 * 6;
    (width, height)
}

/// `src` (`w`×`h` values) resized to `out_w`×`out_h` by taking the nearest value.
fn scale_nearest(src: &[u8], w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    if w == 0 || h == 0 || src.len() != w * h {
        return Vec::new();
    }
    let columns: Vec<usize> = (0..out_w).map(|x| x * w / out_w).collect();
    let mut out = Vec::with_capacity(out_w * out_h);
    for y in 0..out_h {
        let row = &src[(y * h / out_h) * w..][..w];
        out.extend(columns.iter().map(|&x| row[x]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(frames: usize) -> PreviewState {
        PreviewState::Ready(Player {
            job: JobId(7),
            width: 4,
            height: 4,
            fps: 8,
            frames: (0..frames)
                .map(|i| [(i * 40) as u8, 0, 200].repeat(16))
                .collect(),
            frame: 0,
            playing: true,
        })
    }

    fn place(frame: usize, area: Rect) -> Placement {
        Placement {
            area,
            job: JobId(7),
            frame,
        }
    }

    fn paint(painter: &mut Painter, next: Option<Placement>, preview: &PreviewState) -> String {
        let mut out = Vec::new();
        painter.paint(next, preview, &mut out).expect("writes");
        String::from_utf8(out).expect("text")
    }

    const AREA: Rect = Rect::new(10, 3, 8, 4);

    fn kitty() -> Painter {
        Painter::new(Graphics {
            mode: Mode::Kitty,
            cell_px: None,
        })
    }

    #[test]
    fn kitty_sends_a_frame_once_and_plays_through_two_ids() {
        let preview = player(5);
        let mut painter = kitty();
        let first = paint(&mut painter, Some(place(0, AREA)), &preview);
        // The cursor goes to the area's corner (1-based), then the picture, then the other id
        // is freed.
        assert!(first.starts_with("\x1b[4;11H\x1b_Ga=T,f=24,s=4,v=4,i=1280507905,p=1,c=8,r=4,"));
        assert!(first.ends_with(&kitty::delete(KITTY_IDS[1])));
        // The same frame in the same place: nothing to send.
        assert_eq!(paint(&mut painter, Some(place(0, AREA)), &preview), "");

        let mut ids = std::collections::BTreeSet::new();
        for frame in 1..5 {
            let text = paint(&mut painter, Some(place(frame, AREA)), &preview);
            let id = if text.contains(&format!("a=T,f=24,s=4,v=4,i={},", KITTY_IDS[0])) {
                KITTY_IDS[0]
            } else {
                KITTY_IDS[1]
            };
            let other = KITTY_IDS[usize::from(id == KITTY_IDS[0])];
            assert!(
                text.ends_with(&kitty::delete(other)),
                "frame {frame} frees the other id"
            );
            ids.insert(id);
        }
        assert_eq!(ids.len(), 2, "two ids in turn, never more");

        // Leaving the preview takes both away.
        let gone = paint(&mut painter, None, &preview);
        assert_eq!(
            gone,
            format!(
                "{}{}",
                kitty::delete(KITTY_IDS[0]),
                kitty::delete(KITTY_IDS[1])
            )
        );
        assert_eq!(paint(&mut painter, None, &preview), "");
    }

    #[test]
    fn the_screen_is_cleared_when_a_picture_appears_moves_or_goes() {
        let mut painter = kitty();
        let preview = player(2);
        assert!(!painter.needs_clear(None));
        assert!(painter.needs_clear(Some(&place(0, AREA))));
        paint(&mut painter, Some(place(0, AREA)), &preview);
        assert!(
            !painter.needs_clear(Some(&place(1, AREA))),
            "a new frame only"
        );
        let moved = Rect { x: 11, ..AREA };
        assert!(painter.needs_clear(Some(&place(1, moved))));
        assert!(painter.needs_clear(None));
        painter.invalidate();
        assert!(painter.needs_clear(Some(&place(1, AREA))));
        // Half-blocks never clear or write.
        let mut cells = Painter::new(Graphics::HALF_BLOCKS);
        assert!(!cells.needs_clear(Some(&place(0, AREA))));
        assert_eq!(paint(&mut cells, Some(place(0, AREA)), &preview), "");
    }

    #[test]
    fn sixel_fills_the_area_in_whole_bands() {
        let preview = player(3);
        let mut painter = Painter::new(Graphics {
            mode: Mode::Sixel,
            cell_px: Some((10, 19)),
        });
        let text = paint(&mut painter, Some(place(1, AREA)), &preview);
        // 8 columns of 10 px; 4 rows of 19 px = 76, down to 72 in whole bands.
        assert!(text.starts_with("\x1b[4;11H\x1bPq\"1;1;80;72#"), "{text:?}");
        assert!(text.ends_with("\x1b\\"));
        assert_eq!(sixel_size(AREA, (10, 19)), (80, 72));
        // Playing on and coming back round uses the cache: the same text.
        paint(&mut painter, Some(place(2, AREA)), &preview);
        painter.invalidate();
        assert_eq!(paint(&mut painter, Some(place(1, AREA)), &preview), text);
        // Going away writes nothing: the clear takes the pixels.
        assert_eq!(paint(&mut painter, None, &preview), "");
    }

    #[test]
    fn a_placement_for_another_clip_or_a_bad_frame_sends_nothing() {
        let mut painter = kitty();
        let preview = player(1);
        let other = Placement {
            job: JobId(99),
            ..place(0, AREA)
        };
        assert!(!paint(&mut painter, Some(other), &preview).contains("a=T"));
        assert!(!paint(&mut painter, Some(place(5, AREA)), &preview).contains("a=T"));
        assert!(!paint(&mut painter, Some(place(0, AREA)), &PreviewState::Empty).contains("a=T"));
    }

    #[test]
    fn nearest_scaling_repeats_pixels() {
        assert_eq!(
            scale_nearest(&[1, 2, 3, 4], 2, 2, 4, 2),
            vec![1, 1, 2, 2, 3, 3, 4, 4]
        );
        assert_eq!(scale_nearest(&[1, 2, 3, 4], 2, 2, 1, 1), vec![1]);
        assert!(scale_nearest(&[1], 2, 2, 4, 4).is_empty());
    }
}
