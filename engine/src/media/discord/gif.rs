//! Writing the planned frames as a GIF, and reading one back to check it.

use std::borrow::Cow;
use std::io::Cursor;

use super::palette::{CLEAR, Palette};
use super::plan::Subframe;
use super::{MAX_SECS, SIDE, WHAT};
use crate::media::MediaError;

/// Browsers play delays under 2 cs as 10 cs, which would stretch the clip past its length.
const MIN_DELAY_CS: u16 = 2;

fn encoder_error(e: ::gif::EncodingError) -> MediaError {
    MediaError::Encoder {
        codec: "gif",
        message: e.to_string(),
    }
}

/// When frame `frame` starts, in centiseconds, rounded. Delays are differences of these, so
/// rounding never accumulates: the clip lasts its exact length to the nearest centisecond.
fn at_cs(frame: usize, fps: u32) -> u64 {
    let fps = fps.max(1) as u64;
    (frame as u64 * 200 + fps) / (2 * fps)
}

/// Encodes `subs` (at `fps` frames per second) with `palette`, looping forever.
pub(super) fn write(subs: &[Subframe], palette: &Palette, fps: u32) -> Result<Vec<u8>, MediaError> {
    let side = SIDE as u16;
    let mut encoder =
        ::gif::Encoder::new(Vec::new(), side, side, &palette.rgb).map_err(encoder_error)?;
    encoder
        .set_repeat(::gif::Repeat::Infinite)
        .map_err(encoder_error)?;
    for sub in subs {
        let cs = at_cs(sub.start + sub.len, fps) - at_cs(sub.start, fps);
        let delay = u16::try_from(cs).map_err(|_| MediaError::Encoder {
            codec: "gif",
            message: format!("a frame of {cs} cs does not fit a delay"),
        })?;
        let frame = ::gif::Frame {
            delay,
            dispose: if sub.clear_after {
                ::gif::DisposalMethod::Background
            } else {
                ::gif::DisposalMethod::Keep
            },
            transparent: Some(CLEAR),
            left: sub.rect.x as u16,
            top: sub.rect.y as u16,
            width: sub.rect.w as u16,
            height: sub.rect.h as u16,
            buffer: Cow::Borrowed(&sub.data),
            ..::gif::Frame::default()
        };
        encoder.write_frame(&frame).map_err(encoder_error)?;
    }
    encoder.into_inner().map_err(encoder_error)
}

fn violation(rule: String) -> MediaError {
    MediaError::Violation { what: WHAT, rule }
}

/// Decodes `bytes` with the gif crate and checks what Discord checks: 320×320, looping
/// forever, `frames` frames, at most [`MAX_SECS`] in all, and no delay a browser would change.
pub(super) fn check(bytes: &[u8], frames: usize) -> Result<(), MediaError> {
    let undecodable = |e: ::gif::DecodingError| violation(format!("the GIF does not decode: {e}"));
    let mut options = ::gif::DecodeOptions::new();
    options.set_color_output(::gif::ColorOutput::Indexed);
    let mut decoder = options.read_info(Cursor::new(bytes)).map_err(undecodable)?;
    if (decoder.width(), decoder.height()) != (SIDE as u16, SIDE as u16) {
        return Err(violation(format!(
            "the GIF is {}x{}, not {SIDE}x{SIDE}",
            decoder.width(),
            decoder.height()
        )));
    }
    let mut count = 0usize;
    let mut cs = 0u64;
    while let Some(frame) = decoder.read_next_frame().map_err(undecodable)? {
        if frame.delay < MIN_DELAY_CS {
            return Err(violation(format!(
                "GIF frame {count} has a delay of {} cs, which browsers stretch",
                frame.delay
            )));
        }
        if u32::from(frame.left) + u32::from(frame.width) > SIDE
            || u32::from(frame.top) + u32::from(frame.height) > SIDE
        {
            return Err(violation(format!(
                "GIF frame {count} lies outside the canvas"
            )));
        }
        count += 1;
        cs += u64::from(frame.delay);
    }
    if decoder.repeat() != ::gif::Repeat::Infinite {
        return Err(violation(format!(
            "the GIF repeats {:?} instead of looping forever",
            decoder.repeat()
        )));
    }
    if count != frames {
        return Err(violation(format!(
            "the GIF has {count} frames; {frames} were written"
        )));
    }
    let secs = cs as f64 / 100.0;
    if secs > MAX_SECS + 1e-9 {
        return Err(violation(format!(
            "the GIF lasts {secs:.2} s, over {MAX_SECS} s"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_without_drift() {
        // 12 fps: 8.33 cs a frame; 60 frames are exactly 5 s.
        let delays: Vec<u64> = (0..60).map(|i| at_cs(i + 1, 12) - at_cs(i, 12)).collect();
        assert!(delays.iter().all(|&d| d == 8 || d == 9));
        assert_eq!(delays.iter().sum::<u64>(), 500);
        assert_eq!(at_cs(7, 7), 100);
    }
}
