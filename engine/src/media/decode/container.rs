//! Reading an MP4 far enough to decode its H.264 track: the box layout (for fast start and
//! truncation), the track list, the avcC parameter sets and every sample's place and time.

use std::panic::{AssertUnwindSafe, catch_unwind};

use shiguredo_mp4::boxes::SampleEntry;
use shiguredo_mp4::demux::{Input, Mp4FileDemuxer};
use shiguredo_mp4::{BaseBox, TrackKind};

use super::sps::{Sps, parse_sps};
use crate::media::MediaError;

/// One coded picture: where its bytes are and when it is decoded and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SampleRef {
    pub offset: usize,
    pub size: usize,
    /// Decode time in track timescale units.
    pub dts: u64,
    /// Presentation time minus decode time (the `ctts` entry).
    pub cts_offset: i64,
    pub duration: u32,
    pub keyframe: bool,
}

/// The H.264 video track of an MP4, ready to feed a decoder.
#[derive(Debug, Clone)]
pub(crate) struct H264Track {
    pub sps: Vec<Vec<u8>>,
    pub pps: Vec<Vec<u8>>,
    /// Bytes in each NAL unit's length prefix (1, 2 or 4).
    pub length_size: usize,
    pub info: Sps,
    pub timescale: u32,
    /// In decode order.
    pub samples: Vec<SampleRef>,
}

/// What the file holds, as far as this module cares.
#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub video_tracks: usize,
    pub other_tracks: usize,
    pub fast_start: bool,
    pub track: H264Track,
}

fn malformed(message: impl Into<String>) -> MediaError {
    MediaError::Malformed {
        what: "MP4",
        message: message.into(),
    }
}

/// Reads the container; refuses (before collecting them) more than `max_samples` samples.
pub(crate) fn read(bytes: &[u8], max_samples: usize) -> Result<Container, MediaError> {
    let fast_start = scan_top_level(bytes)?;
    // shiguredo_mp4 is careful with corrupt input, but a panic in a parser must still become
    // an error here: one bad upload must not take the worker down.
    match catch_unwind(AssertUnwindSafe(|| demux(bytes, max_samples, fast_start))) {
        Ok(result) => result,
        Err(_) => Err(malformed(
            "the MP4 structure is corrupt (the parser gave up)",
        )),
    }
}

/// Walks the top-level boxes: the file must start with `ftyp`, every box must fit inside the
/// file, and there must be a `moov` and an `mdat`. Returns whether `moov` comes first.
fn scan_top_level(bytes: &[u8]) -> Result<bool, MediaError> {
    if bytes.len() < 8 || &bytes[4..8] != b"ftyp" {
        return Err(malformed(
            "this is not an MP4 file: it does not start with an ftyp box",
        ));
    }
    let mut pos = 0usize;
    let mut moov = None;
    let mut mdat = None;
    while pos < bytes.len() {
        let header = bytes.get(pos..pos + 8).ok_or_else(|| {
            malformed(format!(
                "the file is truncated inside a box header at byte {pos}"
            ))
        })?;
        let kind = [header[4], header[5], header[6], header[7]];
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let size = match size32 {
            0 => (bytes.len() - pos) as u64,
            1 => {
                let large = bytes.get(pos + 8..pos + 16).ok_or_else(|| {
                    malformed(format!(
                        "the file is truncated inside a box header at byte {pos}"
                    ))
                })?;
                let mut be = [0u8; 8];
                be.copy_from_slice(large);
                u64::from_be_bytes(be)
            }
            n => u64::from(n),
        };
        let min = if size32 == 1 { 16 } else { 8 };
        if size < min {
            return Err(malformed(format!(
                "box '{}' at byte {pos} has an impossible size {size}",
                fourcc(&kind)
            )));
        }
        let remaining = (bytes.len() - pos) as u64;
        if size > remaining {
            return Err(malformed(format!(
                "the file is truncated: box '{}' at byte {pos} needs {size} bytes but only {remaining} remain",
                fourcc(&kind)
            )));
        }
        match &kind {
            b"moov" if moov.is_none() => moov = Some(pos),
            b"mdat" if mdat.is_none() => mdat = Some(pos),
            _ => {}
        }
        pos += size as usize;
    }
    match (moov, mdat) {
        (Some(moov), Some(mdat)) => Ok(moov < mdat),
        (None, _) => Err(malformed("the file has no moov box (no track information)")),
        (Some(_), None) => Err(malformed("the file has no mdat box (no media data)")),
    }
}

/// A box type for messages: its letters when printable, else hex (corrupt files have junk).
fn fourcc(kind: &[u8; 4]) -> String {
    if kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        kind.iter().map(|&b| char::from(b)).collect()
    } else {
        format!(
            "0x{}",
            kind.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }
}

fn demux(bytes: &[u8], max_samples: usize, fast_start: bool) -> Result<Container, MediaError> {
    let mut demuxer = Mp4FileDemuxer::new();
    demuxer.handle_input(Input {
        position: 0,
        data: bytes,
    });
    let tracks = demuxer
        .tracks()
        .map_err(|e| malformed(format!("cannot read the track list: {e}")))?
        .to_vec();
    let video: Vec<_> = tracks
        .iter()
        .filter(|t| t.kind == TrackKind::Video)
        .collect();
    let Some(video_track) = video.first() else {
        return Err(malformed(format!(
            "the file has no video track ({} other track(s))",
            tracks.len()
        )));
    };
    let track_id = video_track.track_id;
    let timescale = video_track.timescale.get();
    let video_tracks = video.len();
    let other_tracks = tracks.len() - video_tracks;

    let mut params: Option<ParamSets> = None;
    let mut samples = Vec::new();
    loop {
        let sample = match demuxer.next_sample() {
            Ok(Some(sample)) => sample,
            Ok(None) => break,
            Err(e) => return Err(malformed(format!("cannot read the sample tables: {e}"))),
        };
        if sample.track.track_id != track_id {
            continue;
        }
        if let Some(entry) = sample.sample_entry {
            if params.is_some() {
                return Err(malformed(
                    "the video changes its codec configuration mid-stream, which is not supported",
                ));
            }
            params = Some(h264_params(entry)?);
        }
        if samples.len() >= max_samples {
            return Err(MediaError::Decode(format!(
                "the video has more than {max_samples} frames"
            )));
        }
        let index = samples.len();
        let offset = usize::try_from(sample.data_offset).ok();
        let end = offset.and_then(|o| o.checked_add(sample.data_size));
        let (Some(offset), Some(end)) = (offset, end) else {
            return Err(malformed(format!(
                "frame {index} has an impossible position"
            )));
        };
        if end > bytes.len() {
            return Err(malformed(format!(
                "the file is truncated: frame {index} ends at byte {end} but the file has {} bytes",
                bytes.len()
            )));
        }
        samples.push(SampleRef {
            offset,
            size: sample.data_size,
            dts: sample.timestamp,
            cts_offset: sample.composition_time_offset.unwrap_or(0),
            duration: sample.duration,
            keyframe: sample.keyframe,
        });
    }
    let Some(ParamSets {
        sps,
        pps,
        length_size,
    }) = params
    else {
        return Err(malformed("the video track has no frames"));
    };
    let first_sps = sps
        .first()
        .ok_or_else(|| malformed("the avcC box has no sequence parameter set"))?;
    if pps.is_empty() {
        return Err(malformed("the avcC box has no picture parameter set"));
    }
    let info = parse_sps(first_sps)
        .map_err(|e| malformed(format!("cannot read the sequence parameter set: {e}")))?;
    Ok(Container {
        video_tracks,
        other_tracks,
        fast_start,
        track: H264Track {
            sps,
            pps,
            length_size,
            info,
            timescale,
            samples,
        },
    })
}

/// The avcC's parameter sets and NAL length size.
struct ParamSets {
    sps: Vec<Vec<u8>>,
    pps: Vec<Vec<u8>>,
    length_size: usize,
}

fn h264_params(entry: &SampleEntry) -> Result<ParamSets, MediaError> {
    match entry {
        SampleEntry::Avc1(avc1) => {
            let avcc = &avc1.avcc_box;
            let length_size = usize::from(avcc.length_size_minus_one.get()) + 1;
            if length_size == 3 {
                return Err(malformed("the avcC box declares 3-byte NAL lengths"));
            }
            Ok(ParamSets {
                sps: avcc.sps_list.clone(),
                pps: avcc.pps_list.clone(),
                length_size,
            })
        }
        other => {
            let fourcc = other.box_type().to_string();
            let name = match fourcc.as_str() {
                "hev1" | "hvc1" => "H.265/HEVC",
                "av01" => "AV1",
                "vp08" => "VP8",
                "vp09" => "VP9",
                "mp4v" => "MPEG-4 Part 2",
                "avc3" => "H.264 with in-band parameter sets (avc3)",
                _ => "an unknown codec",
            };
            Err(MediaError::Decode(format!(
                "the video track is {name} ('{fourcc}'); only H.264 ('avc1') video can be read"
            )))
        }
    }
}

/// Copies one length-prefixed sample into `out` as Annex B (start code before each NAL).
pub(crate) fn append_annexb(
    sample: &[u8],
    length_size: usize,
    index: usize,
    out: &mut Vec<u8>,
) -> Result<(), MediaError> {
    let mut rest = sample;
    while !rest.is_empty() {
        let Some((prefix, tail)) = rest.split_at_checked(length_size) else {
            return Err(malformed(format!(
                "frame {index} ends inside a NAL length prefix"
            )));
        };
        let len = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let Some((nal, tail)) = tail.split_at_checked(len) else {
            return Err(malformed(format!(
                "frame {index} has a NAL unit of {len} bytes but only {} remain",
                tail.len()
            )));
        };
        if !nal.is_empty() {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
        rest = tail;
    }
    Ok(())
}

/// The parameter sets as Annex B, which a decoder needs before the first frame.
pub(crate) fn parameter_sets_annexb(track: &H264Track) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in track.sps.iter().chain(&track.pps) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixed_to_annexb() {
        let mut out = Vec::new();
        append_annexb(&[0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x06], 4, 0, &mut out)
            .expect("converts");
        assert_eq!(out, vec![0, 0, 0, 1, 0x65, 0xaa, 0, 0, 0, 1, 0x06]);
        let mut out = Vec::new();
        assert!(append_annexb(&[0, 0, 0, 9, 0x65], 4, 3, &mut out).is_err());
        assert!(append_annexb(&[0, 0], 4, 3, &mut out).is_err());
    }

    #[test]
    fn top_level_scan_catches_truncation_and_junk() {
        assert!(scan_top_level(b"not an mp4 at all").is_err());
        let mut file = Vec::new();
        file.extend_from_slice(&[0, 0, 0, 16]);
        file.extend_from_slice(b"ftypisom");
        file.extend_from_slice(&[0, 0, 0, 0]);
        file.extend_from_slice(&[0, 0, 0, 8]);
        file.extend_from_slice(b"moov");
        file.extend_from_slice(&[0, 0, 0, 8]);
        file.extend_from_slice(b"mdat");
        assert_eq!(scan_top_level(&file).ok(), Some(true));
        file.extend_from_slice(&[0, 0, 1, 0]);
        file.extend_from_slice(b"free");
        let err = scan_top_level(&file).expect_err("truncated");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
