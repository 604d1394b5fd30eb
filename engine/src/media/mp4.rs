//! Silent H.264 MP4 animations: what Telegram shows as a looping GIF (`sendAnimation`) and
//! Discord plays inline.
//!
//! openh264 makes Constrained Baseline 4:2:0 (every player decodes it, no B-frames), muxide
//! writes the MP4 with `moov` first so playback starts while downloading. The byte limit is a
//! guarantee: a file over it is re-encoded at a lower bitrate, then a coarser quantiser, then
//! a lower frame rate, and only then refused. Every file returned has been read back and
//! fully decoded here first.

use std::borrow::Cow;

use muxide::api::{MuxerBuilder, VideoCodec};
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    QpRange, RateControlMode, UsageType, VuiConfig,
};
use openh264::formats::{RgbSliceU8, YUVBuffer};

use super::MediaError;
use super::decode::{self, Mp4Info};
use super::frames::Frames;

/// What a platform accepts as an animation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnimationLimits {
    /// Longest side in pixels; larger clips are scaled down (aspect kept), smaller ones kept.
    pub max_side: u32,
    /// Largest file in bytes.
    pub max_bytes: usize,
    /// Higher frame rates are resampled down to this.
    pub max_fps: u32,
}

impl AnimationLimits {
    /// Telegram bot `sendAnimation`: 50 MB upload cap for bots. 1280 px keeps HD sources
    /// sharp while files stay small enough for phones.
    pub const TELEGRAM: AnimationLimits = AnimationLimits {
        max_side: 1280,
        max_bytes: 50_000_000,
        max_fps: 30,
    };

    /// Discord inline video: 10 MB is the upload cap on servers without boosts.
    pub const DISCORD: AnimationLimits = AnimationLimits {
        max_side: 1280,
        max_bytes: 10_000_000,
        max_fps: 30,
    };
}

const WHAT: &str = "MP4 animation";
/// Re-encodes allowed to get under the byte limit, the first attempt included.
const MAX_ATTEMPTS: usize = 12;
/// Below this openh264's rate control stops shrinking files; the quantiser floor and then
/// the frame rate take over.
const MIN_BITRATE: u32 = 24_000;
const MIN_FPS: u32 = 6;
/// Bits per pixel per frame at the first attempt: about 600 kbit/s at 512×512 and 24 fps,
/// so a detailed 3 s clip is ~230 KB and 10 s stays under 1 MB, the size of typical Telegram
/// animations; smooth clips stop at the quantiser floor well below that.
const BITS_PER_PIXEL: f64 = 0.1;
/// A floor on the quantiser so simple clips do not spend bytes on invisible detail.
const MIN_QP: u8 = 20;
const MAX_QP: u8 = 51;
/// openh264 encodes nothing smaller.
const MIN_SIDE: u32 = 16;
/// Quantiser floors tried in turn once the bitrate is at its minimum: small steps, so the
/// first that fits is not much coarser than needed.
const QP_FLOORS: [u8; 5] = [30, 36, 42, 47, MAX_QP];

/// One point on the way down to the byte limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Attempt {
    bitrate: u32,
    min_qp: u8,
    fps: u32,
}

impl Attempt {
    /// The next, smaller setting after one that made `bytes` (the one before made
    /// `previous`), or `None` when nothing smaller is left. Bitrate first (rate control keeps
    /// quality even), then a rising quantiser floor (rate control cannot go below its
    /// minimum size with frame skipping off), then fewer frames at the coarsest quantiser.
    fn shrink(self, bytes: usize, previous: Option<usize>, max_bytes: usize) -> Option<Attempt> {
        // A lower bitrate that saved under 5% means rate control is at its floor.
        let stalled = previous.is_some_and(|p| bytes as f64 > p as f64 * 0.95);
        if self.bitrate > MIN_BITRATE && self.min_qp == MIN_QP && !stalled {
            // Aim a little under the limit: rate control overshoots short clips.
            let scale = (max_bytes as f64 / bytes as f64 * 0.85).min(0.7);
            let bitrate = ((f64::from(self.bitrate) * scale) as u32).max(MIN_BITRATE);
            return Some(Attempt { bitrate, ..self });
        }
        if let Some(&min_qp) = QP_FLOORS.iter().find(|&&qp| qp > self.min_qp) {
            return Some(Attempt {
                bitrate: MIN_BITRATE,
                min_qp,
                ..self
            });
        }
        if self.fps > MIN_FPS {
            return Some(Attempt {
                fps: (self.fps / 2).max(MIN_FPS),
                ..self
            });
        }
        None
    }
}

/// Encodes `frames` as an MP4 animation within `limits` (see the module docs).
pub fn encode_animation(frames: &Frames, limits: &AnimationLimits) -> Result<Vec<u8>, MediaError> {
    frames.validate()?;
    if limits.max_side < 16 || limits.max_fps == 0 || limits.max_bytes == 0 {
        return Err(MediaError::Encoder {
            codec: "h264",
            message: format!("unusable limits {limits:?}"),
        });
    }
    let prepared = prepare(frames, limits);
    let mut attempt = Attempt {
        bitrate: initial_bitrate(prepared.width, prepared.height, prepared.fps),
        min_qp: MIN_QP,
        fps: prepared.fps,
    };
    let mut smallest = usize::MAX;
    let mut previous = None;
    for number in 1..=MAX_ATTEMPTS {
        let clip = if attempt.fps == prepared.fps {
            Cow::Borrowed(&prepared)
        } else {
            Cow::Owned(prepared.with_fps(attempt.fps))
        };
        let (bytes, samples) = encode_once(&clip, attempt)?;
        tracing::debug!(
            number,
            ?attempt,
            bytes = bytes.len(),
            limit = limits.max_bytes,
            "encoded an MP4 animation"
        );
        if bytes.len() <= limits.max_bytes {
            verify(&bytes, &clip, samples, limits)?;
            return Ok(bytes);
        }
        smallest = smallest.min(bytes.len());
        match attempt.shrink(bytes.len(), previous, limits.max_bytes) {
            Some(next) => attempt = next,
            None => break,
        }
        previous = Some(bytes.len());
    }
    Err(MediaError::TooBig {
        what: WHAT,
        bytes: smallest,
        limit: limits.max_bytes,
    })
}

/// RGB (alpha composited), at most `max_fps`, even sides between 16 px and `max_side`, at
/// least two frames so the file has a real duration.
fn prepare(frames: &Frames, limits: &AnimationLimits) -> Frames {
    let mut clip = frames.to_rgb();
    if clip.fps > limits.max_fps {
        clip = clip.with_fps(limits.max_fps);
    }
    let (w, h) = (clip.width, clip.height);
    if w > limits.max_side || h > limits.max_side {
        let (fw, fh) = clip.fitted_size(limits.max_side, limits.max_side);
        clip = clip.resize(fw, fh);
    } else if w.min(h) < MIN_SIDE {
        // openh264 refuses pictures under 16 px. Whole-number enlargement is nearest-
        // neighbour (crisp); a strip too long to enlarge is padded instead.
        let factor = MIN_SIDE.div_ceil(w.min(h));
        if w.max(h) * factor <= limits.max_side {
            clip = clip.resize(w * factor, h * factor);
        }
    }
    let (w, h) = (clip.width, clip.height);
    let (ew, eh) = (even(w.max(MIN_SIDE)), even(h.max(MIN_SIDE)));
    if (ew, eh) != (w, h) {
        clip = pad_edges(&clip, ew, eh);
    }
    if clip.frames.len() == 1 {
        let only = clip.frames[0].clone();
        clip.frames.push(only);
    }
    clip
}

fn even(v: u32) -> u32 {
    v + v % 2
}

/// Grows the picture to `width`×`height` (each at least the current size) by repeating the
/// last column and row: no visible edge and, unlike resampling, every original pixel kept.
fn pad_edges(clip: &Frames, width: u32, height: u32) -> Frames {
    let (w, h) = (clip.width as usize, clip.height as usize);
    let (nw, nh) = (width as usize, height as usize);
    let frames = clip
        .frames
        .iter()
        .map(|f| {
            let mut out = Vec::with_capacity(nw * nh * 3);
            for row in f.chunks_exact(w * 3) {
                out.extend_from_slice(row);
                let last = &row[(w - 1) * 3..];
                for _ in w..nw {
                    out.extend_from_slice(last);
                }
            }
            let last_row = out[(h - 1) * nw * 3..].to_vec();
            for _ in h..nh {
                out.extend_from_slice(&last_row);
            }
            out
        })
        .collect();
    Frames {
        width,
        height,
        frames,
        ..clip.clone()
    }
}

fn initial_bitrate(width: u32, height: u32, fps: u32) -> u32 {
    let bps = f64::from(width) * f64::from(height) * f64::from(fps) * BITS_PER_PIXEL;
    (bps as u32).clamp(150_000, 6_000_000)
}

fn encoder_error(message: String) -> MediaError {
    MediaError::Encoder {
        codec: "h264",
        message,
    }
}

/// One encode with `attempt`'s bitrate and quantiser floor (its frame rate is already the
/// clip's); returns the file and how many samples it holds.
fn encode_once(clip: &Frames, attempt: Attempt) -> Result<(Vec<u8>, usize), MediaError> {
    let (w, h) = (clip.width as usize, clip.height as usize);
    let config = EncoderConfig::new()
        .bitrate(BitRate::from_bps(attempt.bitrate))
        .max_frame_rate(FrameRate::from_hz(clip.fps as f32))
        .rate_control_mode(RateControlMode::Bitrate)
        // A skipped frame would leave a hole in the animation's timing.
        .skip_frames(false)
        .usage_type(UsageType::CameraVideoRealTime)
        .complexity(Complexity::High)
        .profile(Profile::Baseline)
        // One keyframe: a looping animation restarts from the top, never seeks.
        .intra_frame_period(IntraFramePeriod::from_num_frames(0))
        // Deterministic output for the same input.
        .num_threads(1)
        // openh264's RGB→YUV conversion is BT.601 studio range; say so, or players guess
        // BT.709 for HD sizes and shift the colours.
        .vui(VuiConfig::bt601())
        .qp(QpRange::new(attempt.min_qp.min(MAX_QP), MAX_QP));
    let mut encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| encoder_error(format!("cannot start openh264: {e}")))?;
    let mut muxer = MuxerBuilder::new(Vec::new())
        .video(
            VideoCodec::H264,
            clip.width,
            clip.height,
            f64::from(clip.fps),
        )
        .with_fast_start(true)
        .build()
        .map_err(|e| encoder_error(format!("cannot start the MP4 muxer: {e}")))?;

    let mut yuv = YUVBuffer::new(w, h);
    let mut samples = 0usize;
    let mut unit = Vec::new();
    for (i, frame) in clip.frames.iter().enumerate() {
        yuv.read_rgb8(RgbSliceU8::new(frame, (w, h)));
        let bitstream = encoder
            .encode(&yuv)
            .map_err(|e| encoder_error(format!("openh264 failed on frame {i}: {e}")))?;
        let kind = bitstream.frame_type();
        unit.clear();
        bitstream.write_vec(&mut unit);
        if matches!(kind, FrameType::Skip | FrameType::Invalid) || unit.is_empty() {
            // The previous frame stays on screen until the next one's timestamp.
            continue;
        }
        let pts = i as f64 / f64::from(clip.fps);
        muxer
            .write_video(pts, &unit, kind == FrameType::IDR)
            .map_err(|e| encoder_error(format!("the MP4 muxer refused frame {i}: {e}")))?;
        samples += 1;
    }
    muxer
        .finish_in_place()
        .map_err(|e| encoder_error(format!("the MP4 muxer could not finish: {e}")))?;
    Ok((muxer.into_writer(), samples))
}

/// Reads the file back with our own demuxer and decodes every frame before it may leave.
fn verify(
    bytes: &[u8],
    clip: &Frames,
    samples: usize,
    limits: &AnimationLimits,
) -> Result<(), MediaError> {
    let broken = |rule: String| MediaError::Violation { what: WHAT, rule };
    let info = decode::probe_mp4(bytes)
        .map_err(|e| broken(format!("the file does not read back: {e}")))?;
    let expected_duration = clip.frames.len() as f64 / f64::from(clip.fps);
    let frame_secs = 1.0 / f64::from(clip.fps);
    let checks: [(bool, String); 9] = [
        (
            info.video_tracks == 1 && info.other_tracks == 0,
            format!(
                "one video track and nothing else (found {} video, {} other)",
                info.video_tracks, info.other_tracks
            ),
        ),
        (
            (info.width, info.height) == (clip.width, clip.height),
            format!(
                "size {}x{} (found {}x{})",
                clip.width, clip.height, info.width, info.height
            ),
        ),
        (
            info.width.max(info.height) <= limits.max_side,
            format!("at most {} px a side", limits.max_side),
        ),
        (
            info.frame_count == samples && samples > 0,
            format!("{samples} frames (found {})", info.frame_count),
        ),
        (
            info.fps == clip.fps && info.fps <= limits.max_fps,
            format!("{} fps (found {})", clip.fps, info.fps),
        ),
        (
            (info.duration_secs - expected_duration).abs() <= frame_secs,
            format!(
                "{expected_duration:.3} s long (found {:.3} s)",
                info.duration_secs
            ),
        ),
        (info.fast_start, "moov before mdat (fast start)".to_string()),
        (
            info.profile_idc == 66 && !info.reordered,
            format!(
                "Baseline without reordering (found profile {})",
                info.profile_idc
            ),
        ),
        (
            bytes.len() <= limits.max_bytes,
            format!("at most {} bytes (found {})", limits.max_bytes, bytes.len()),
        ),
    ];
    if let Some((_, rule)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(broken(rule.clone()));
    }
    check_decodes(bytes, &info, samples).map_err(|e| broken(format!("every frame decodes ({e})")))
}

fn check_decodes(bytes: &[u8], info: &Mp4Info, samples: usize) -> Result<(), MediaError> {
    let decoded = decode::count_pictures(bytes, info.width, info.height)?;
    if decoded != samples {
        return Err(MediaError::Decode(format!(
            "{decoded} of {samples} frames decoded"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::PixelFormat;

    fn clip(w: u32, h: u32, n: usize, fps: u32, format: PixelFormat) -> Frames {
        let bpp = format.bytes_per_pixel();
        Frames {
            width: w,
            height: h,
            format,
            fps,
            frames: (0..n)
                .map(|i| {
                    (0..(w * h) as usize * bpp)
                        .map(|j| ((j / bpp) % w as usize * 4 + i * 8) as u8)
                        .collect()
                })
                .collect(),
        }
    }

    #[test]
    fn odd_sizes_are_padded_by_repeating_the_edge() {
        let mut f = clip(3, 3, 1, 10, PixelFormat::Rgb8);
        f.frames[0] = (0..27).collect();
        let even = pad_edges(&f, 4, 4);
        assert_eq!((even.width, even.height), (4, 4));
        even.validate().expect("valid");
        let row0 = &even.frames[0][..12];
        assert_eq!(row0, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 6, 7, 8]);
        let last = &even.frames[0][36..];
        assert_eq!(last, &even.frames[0][24..36]);
    }

    #[test]
    fn preparation_caps_size_and_rate_and_drops_alpha() {
        let small = AnimationLimits {
            max_side: 64,
            ..AnimationLimits::TELEGRAM
        };
        let f = clip(100, 50, 6, 60, PixelFormat::Rgba8);
        let p = prepare(&f, &small);
        assert_eq!((p.width, p.height, p.fps), (64, 32, 30));
        assert_eq!(p.format, PixelFormat::Rgb8);
        assert_eq!(p.frames.len(), 3);
        let single = prepare(
            &clip(16, 16, 1, 10, PixelFormat::Rgb8),
            &AnimationLimits::TELEGRAM,
        );
        assert_eq!(single.frames.len(), 2, "one frame becomes a real duration");
        let tiny = prepare(&clip(5, 3, 2, 10, PixelFormat::Rgb8), &small);
        assert_eq!((tiny.width, tiny.height), (30, 18), "enlarged 6x, crisp");
        let strip = prepare(&clip(60, 2, 2, 10, PixelFormat::Rgb8), &small);
        assert_eq!(
            (strip.width, strip.height),
            (60, 16),
            "too long to enlarge: padded"
        );
    }

    #[test]
    fn encodes_small_odd_sized_rgba_and_verifies_it() {
        let f = clip(33, 17, 4, 12, PixelFormat::Rgba8);
        let bytes = encode_animation(&f, &AnimationLimits::TELEGRAM).expect("encodes");
        let info = decode::probe_mp4(&bytes).expect("probes");
        assert_eq!(
            (info.width, info.height, info.fps, info.frame_count),
            (34, 18, 12, 4)
        );
        for (w, h) in [(1, 1), (2, 2), (7, 3)] {
            let f = clip(w, h, 2, 12, PixelFormat::Rgb8);
            encode_animation(&f, &AnimationLimits::TELEGRAM).expect("tiny clips encode");
        }
    }

    #[test]
    fn bad_input_and_limits_are_errors() {
        let mut f = clip(16, 16, 2, 10, PixelFormat::Rgb8);
        f.frames[1].pop();
        assert!(matches!(
            encode_animation(&f, &AnimationLimits::TELEGRAM),
            Err(MediaError::InvalidFrames(_))
        ));
        let f = clip(16, 16, 2, 10, PixelFormat::Rgb8);
        let silly = AnimationLimits {
            max_fps: 0,
            ..AnimationLimits::TELEGRAM
        };
        assert!(encode_animation(&f, &silly).is_err());
    }
}
