//! Video from elsewhere back into frames: Pika answers with MP4 H.264 (High profile,
//! B-frames, 720p/1080p, 24 fps) and the encoders want RGB frames.
//!
//! The MP4 is demuxed in-process (shiguredo_mp4), its samples become an Annex B stream and
//! the bundled openh264 decodes them; openh264 reorders B-frames itself, so pictures come out
//! in presentation order once the decoder is flushed at the end. Streams openh264 cannot
//! decode (4:2:2/4:4:4, >8-bit, interlaced) or fails on go through the ffmpeg command line
//! when it is installed.
//!
//! Every size is checked against [`DecodeLimits`] from the container alone, before any frame
//! is decoded or any frame buffer allocated.

mod container;
mod ffmpeg;
mod sps;
mod yuv;

use std::panic::{AssertUnwindSafe, catch_unwind};

use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;

use super::MediaError;
use super::frames::{Frames, PixelFormat};
use container::{Container, H264Track, append_annexb, parameter_sets_annexb};

/// Caps on what a video may expand to once decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Longest allowed picture side, in pixels.
    pub max_side: u32,
    pub max_frames: usize,
    /// Total size of the decoded RGB frames, in bytes (after any downscaling).
    pub max_rgb_bytes: usize,
    /// Longest side of the frames handed back; larger pictures are scaled down as they are
    /// decoded, so memory follows the output size. 0 keeps the native size.
    pub max_output_side: u32,
}

impl DecodeLimits {
    /// 4096 px a side, 2000 frames, 600 MB of RGB. A 1080p clip reaches the byte cap after
    /// 96 frames (4 s at 24 fps); callers expecting longer 1080p clips raise it.
    pub const DEFAULT: DecodeLimits = DecodeLimits {
        max_side: 4096,
        max_frames: 2000,
        max_rgb_bytes: 600_000_000,
        max_output_side: 0,
    };

    /// For clips a remote renderer returns (Pika: 720p or 1080p, 5 or 10 s at 24 fps): frames
    /// come back at most 1280 px a side, the largest any sticker or animation uses, so a 10 s
    /// 1080p clip needs 660 MB instead of 1.5 GB.
    pub const REMOTE_CLIP: DecodeLimits = DecodeLimits {
        max_side: 4096,
        max_frames: 2000,
        max_rgb_bytes: 700_000_000,
        max_output_side: 1280,
    };

    /// The size frames come back at for a `width`×`height` video.
    pub fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        if self.max_output_side == 0 || width.max(height) <= self.max_output_side {
            return (width, height);
        }
        let scale = self.max_output_side as f64 / width.max(height) as f64;
        let even = |v: u32| (((v as f64 * scale).round() as u32).max(2)) & !1;
        (even(width), even(height))
    }
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits::DEFAULT
    }
}

/// Which decoder turns the H.264 into pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecodeWith {
    /// openh264, or ffmpeg when openh264 cannot handle the stream and ffmpeg is installed.
    #[default]
    Auto,
    /// Only the bundled openh264.
    OpenH264,
    /// Only the ffmpeg command line.
    Ffmpeg,
}

/// What an MP4 holds, read from its structure without decoding a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Mp4Info {
    /// Picture size after the SPS cropping window.
    pub width: u32,
    pub height: u32,
    /// Nominal frame rate: the most common frame duration, rounded to whole frames per second.
    pub fps: u32,
    pub frame_count: usize,
    /// From the first frame's decode time to the end of the last frame.
    pub duration_secs: f64,
    /// H.264 `profile_idc`: 66 Baseline, 77 Main, 100 High.
    pub profile_idc: u8,
    pub level_idc: u8,
    /// Whether frames are shown in another order than decoded (B-frames).
    pub reordered: bool,
    pub video_tracks: usize,
    /// Audio, subtitle and other tracks.
    pub other_tracks: usize,
    /// Whether `moov` comes before `mdat`, so playback can start before the download ends.
    pub fast_start: bool,
}

/// Reads an MP4's H.264 track structure. Errors on anything that is not an MP4 with an H.264
/// video track.
pub fn probe_mp4(bytes: &[u8]) -> Result<Mp4Info, MediaError> {
    // Far above any clip this project handles, far below what would take long to walk.
    const MAX_SAMPLES: usize = 1_000_000;
    let container = container::read(bytes, MAX_SAMPLES)?;
    info(&container)
}

/// Decodes an MP4 with an H.264 video track into RGB frames in presentation order, at the
/// stream's frame rate, within [`DecodeLimits::DEFAULT`].
pub fn decode_mp4(bytes: &[u8]) -> Result<Frames, MediaError> {
    decode_mp4_with(bytes, &DecodeLimits::DEFAULT, DecodeWith::Auto)
}

/// [`decode_mp4`] with explicit limits and decoder choice.
pub fn decode_mp4_with(
    bytes: &[u8],
    limits: &DecodeLimits,
    with: DecodeWith,
) -> Result<Frames, MediaError> {
    let (container, info, out) = read_within(bytes, limits)?;
    let track = &container.track;

    let frames = match (with, track.info.openh264_limitation()) {
        (DecodeWith::Ffmpeg, _) => decode_with_ffmpeg(bytes, track, out)?,
        (DecodeWith::OpenH264, Some(why)) => {
            return Err(MediaError::Decode(format!(
                "openh264 cannot decode this video: {why}"
            )));
        }
        (DecodeWith::Auto, Some(why)) => match decode_with_ffmpeg(bytes, track, out) {
            Err(MediaError::Unavailable(_)) => {
                return Err(MediaError::Unavailable(format!(
                    "{} ({why})",
                    ffmpeg::MISSING
                )));
            }
            other => other?,
        },
        (DecodeWith::OpenH264, None) => decode_with_openh264(bytes, track, out)?,
        (DecodeWith::Auto, None) => match decode_with_openh264(bytes, track, out) {
            Ok(frames) => frames,
            Err(openh264_error) => {
                tracing::warn!(%openh264_error, "openh264 failed on the video; trying ffmpeg");
                match decode_with_ffmpeg(bytes, track, out) {
                    Ok(frames) => frames,
                    // Without ffmpeg the first error says what is wrong with the file.
                    Err(MediaError::Unavailable(_)) => return Err(openh264_error),
                    Err(e) => return Err(e),
                }
            }
        },
    };
    Ok(Frames {
        width: out.0,
        height: out.1,
        format: PixelFormat::Rgb8,
        fps: info.fps,
        frames,
    })
}

/// Reads the container and checks it against `limits`, before any decoder runs; with the
/// size the frames will come back at.
fn read_within(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<(Container, Mp4Info, (u32, u32)), MediaError> {
    let container = container::read(bytes, limits.max_frames)?;
    let info = info(&container)?;
    let out = limits.output_size(info.width, info.height);
    check_limits(&info, limits, out)?;
    Ok((container, info, out))
}

/// Everything [`decode_mp4_with`] does to untrusted bytes short of running a decoder: the
/// container read within `limits`, and every sample turned into the Annex B stream decoders
/// are fed. The `mp4_demux` fuzz target's entry.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn demux_within(bytes: &[u8], limits: &DecodeLimits) -> Result<Mp4Info, MediaError> {
    let (container, info, _) = read_within(bytes, limits)?;
    annexb_stream(bytes, &container.track)?;
    Ok(info)
}

fn info(container: &Container) -> Result<Mp4Info, MediaError> {
    let track = &container.track;
    let samples = &track.samples;
    let durations = {
        let mut d: Vec<u32> = samples.iter().map(|s| s.duration).collect();
        d.sort_unstable();
        d
    };
    // The most common duration: a last frame with an odd length does not skew it.
    let mut typical = 0u32;
    let mut best_run = 0usize;
    for run in durations.chunk_by(|a, b| a == b) {
        if run.len() > best_run && run[0] > 0 {
            best_run = run.len();
            typical = run[0];
        }
    }
    let fps = if typical == 0 {
        return Err(MediaError::Malformed {
            what: "MP4",
            message: "the video's frames have no duration".to_string(),
        });
    } else {
        (f64::from(track.timescale) / f64::from(typical))
            .round()
            .max(1.0) as u32
    };
    let end = samples
        .iter()
        .map(|s| s.dts.saturating_add(u64::from(s.duration)))
        .max()
        .unwrap_or(0);
    let start = samples.first().map(|s| s.dts).unwrap_or(0);
    Ok(Mp4Info {
        width: track.info.width,
        height: track.info.height,
        fps,
        frame_count: samples.len(),
        duration_secs: end.saturating_sub(start) as f64 / f64::from(track.timescale),
        profile_idc: track.info.profile_idc,
        level_idc: track.info.level_idc,
        reordered: samples
            .iter()
            .any(|s| s.cts_offset != samples[0].cts_offset),
        video_tracks: container.video_tracks,
        other_tracks: container.other_tracks,
        fast_start: container.fast_start,
    })
}

fn check_limits(
    info: &Mp4Info,
    limits: &DecodeLimits,
    (out_w, out_h): (u32, u32),
) -> Result<(), MediaError> {
    if info.width > limits.max_side || info.height > limits.max_side {
        return Err(MediaError::Decode(format!(
            "the video is {}x{}; at most {} pixels a side are accepted",
            info.width, info.height, limits.max_side
        )));
    }
    if info.frame_count > limits.max_frames {
        return Err(MediaError::Decode(format!(
            "the video has {} frames; at most {} are accepted",
            info.frame_count, limits.max_frames
        )));
    }
    let rgb_bytes = (out_w as u128) * (out_h as u128) * 3 * (info.frame_count as u128);
    if rgb_bytes > limits.max_rgb_bytes as u128 {
        return Err(MediaError::Decode(format!(
            "the video would decode to {} MB ({} frames of {}x{}); at most {} MB are accepted",
            rgb_bytes / 1_000_000,
            info.frame_count,
            out_w,
            out_h,
            limits.max_rgb_bytes / 1_000_000
        )));
    }
    Ok(())
}

fn annexb_stream(bytes: &[u8], track: &H264Track) -> Result<Vec<u8>, MediaError> {
    let mut out = parameter_sets_annexb(track);
    for (i, s) in track.samples.iter().enumerate() {
        append_annexb(
            &bytes[s.offset..s.offset + s.size],
            track.length_size,
            i,
            &mut out,
        )?;
    }
    Ok(out)
}

fn decode_with_ffmpeg(
    bytes: &[u8],
    track: &H264Track,
    out: (u32, u32),
) -> Result<Vec<Vec<u8>>, MediaError> {
    let stream = annexb_stream(bytes, track)?;
    ffmpeg::decode_annexb(
        &stream,
        (track.info.width, track.info.height),
        out,
        track.samples.len(),
    )
}

fn decode_with_openh264(
    bytes: &[u8],
    track: &H264Track,
    (out_w, out_h): (u32, u32),
) -> Result<Vec<Vec<u8>>, MediaError> {
    let conversion = yuv::Conversion::new(track.info.matrix_coefficients, track.info.full_range);
    let (width, height) = (track.info.width, track.info.height);
    let mut frames = Vec::with_capacity(track.samples.len());
    each_picture(bytes, track, |picture, index| {
        let (w, h) = picture.dimensions();
        if (w, h) != (width as usize, height as usize) {
            return Err(MediaError::Decode(format!(
                "picture {index} is {w}x{h}, but the stream says {width}x{height}"
            )));
        }
        let (y_stride, uv_stride, _) = picture.strides();
        let planes = yuv::Planes {
            y: picture.y(),
            u: picture.u(),
            v: picture.v(),
            y_stride,
            uv_stride,
        };
        let rgb = yuv::to_rgb(planes, w, h, conversion).map_err(MediaError::Decode)?;
        if (out_w, out_h) == (width, height) {
            frames.push(rgb);
        } else {
            // Scaled one picture at a time, so only the output size is ever held for the clip.
            let one = Frames {
                width,
                height,
                format: PixelFormat::Rgb8,
                fps: 1,
                frames: vec![rgb],
            };
            frames.extend(one.resize(out_w, out_h).frames);
        }
        Ok(())
    })?;
    Ok(frames)
}

/// Decodes every frame with openh264 without converting it, checking each picture's size;
/// returns how many pictures came out. The encoders' proof that a file plays.
pub(crate) fn count_pictures(bytes: &[u8], width: u32, height: u32) -> Result<usize, MediaError> {
    let container = container::read(bytes, usize::MAX)?;
    each_picture(bytes, &container.track, |picture, index| {
        let (w, h) = picture.dimensions();
        if (w, h) == (width as usize, height as usize) {
            Ok(())
        } else {
            Err(MediaError::Decode(format!(
                "picture {index} is {w}x{h}, not {width}x{height}"
            )))
        }
    })
}

/// Runs every sample through openh264 and hands each picture, in the order the decoder
/// releases them (presentation order), to `on_picture`. Errors unless exactly one picture
/// per sample comes out.
fn each_picture(
    bytes: &[u8],
    track: &H264Track,
    mut on_picture: impl FnMut(&DecodedYUV<'_>, usize) -> Result<(), MediaError>,
) -> Result<usize, MediaError> {
    // A panic inside the decoder wrapper must not take the worker down with it.
    catch_unwind(AssertUnwindSafe(|| {
        run_openh264(bytes, track, &mut on_picture)
    }))
    .unwrap_or_else(|_| {
        Err(MediaError::Decode(
            "openh264 failed unexpectedly on this video".to_string(),
        ))
    })
}

fn run_openh264(
    bytes: &[u8],
    track: &H264Track,
    on_picture: &mut dyn FnMut(&DecodedYUV<'_>, usize) -> Result<(), MediaError>,
) -> Result<usize, MediaError> {
    let expected = track.samples.len();
    let failed =
        |what: &str, e: openh264::Error| MediaError::Decode(format!("openh264 failed {what}: {e}"));
    // Flushing after every call would release buffered pictures before the B-frames that
    // precede them are decoded; the remainder is flushed once at the end instead.
    let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    let mut decoder = Decoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| failed("to start", e))?;
    let mut produced = 0usize;
    let mut unit = parameter_sets_annexb(track);
    decoder
        .decode(&unit)
        .map_err(|e| failed("on the parameter sets", e))?;
    for (i, s) in track.samples.iter().enumerate() {
        unit.clear();
        append_annexb(
            &bytes[s.offset..s.offset + s.size],
            track.length_size,
            i,
            &mut unit,
        )?;
        let picture = decoder
            .decode(&unit)
            .map_err(|e| failed(&format!("on frame {i}"), e))?;
        if let Some(picture) = picture {
            if produced == expected {
                return Err(MediaError::Decode(format!(
                    "openh264 produced more pictures than the {expected} frames in the file"
                )));
            }
            on_picture(&picture, produced)?;
            produced += 1;
        }
    }
    let rest = decoder
        .flush_remaining()
        .map_err(|e| failed("at the end of the stream", e))?;
    for picture in &rest {
        if produced == expected {
            return Err(MediaError::Decode(format!(
                "openh264 produced more pictures than the {expected} frames in the file"
            )));
        }
        on_picture(picture, produced)?;
        produced += 1;
    }
    if produced != expected {
        return Err(MediaError::Decode(format!(
            "openh264 produced {produced} pictures for the {expected} frames in the file"
        )));
    }
    Ok(produced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_before_decoding() {
        let info = Mp4Info {
            width: 1920,
            height: 1080,
            fps: 24,
            frame_count: 120,
            duration_secs: 5.0,
            profile_idc: 100,
            level_idc: 40,
            reordered: true,
            video_tracks: 1,
            other_tracks: 0,
            fast_start: true,
        };
        let err = check_limits(&info, &DecodeLimits::DEFAULT, (info.width, info.height))
            .expect_err("too many bytes");
        assert!(err.to_string().contains("746 MB"), "{err}");
        let roomy = DecodeLimits {
            max_rgb_bytes: 1_000_000_000,
            ..DecodeLimits::DEFAULT
        };
        check_limits(&info, &roomy, (info.width, info.height)).expect("fits");
        // A remote clip of that size fits once it is scaled down as it is decoded.
        let remote = DecodeLimits::REMOTE_CLIP;
        assert_eq!(remote.output_size(1920, 1080), (1280, 720));
        assert_eq!(remote.output_size(640, 360), (640, 360));
        check_limits(&info, &remote, remote.output_size(1920, 1080)).expect("fits at 1280x720");
        let ten_seconds = Mp4Info {
            frame_count: 240,
            ..info.clone()
        };
        check_limits(&ten_seconds, &remote, remote.output_size(1920, 1080))
            .expect("10 s of 1080p fits");
        let huge = Mp4Info {
            width: 8192,
            ..info.clone()
        };
        assert!(check_limits(&huge, &roomy, (huge.width, huge.height)).is_err());
        let long = Mp4Info {
            frame_count: 2001,
            width: 16,
            height: 16,
            ..info
        };
        assert!(check_limits(&long, &roomy, (long.width, long.height)).is_err());
    }
}
