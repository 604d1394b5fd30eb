//! A minimal WebM (Matroska) muxer for one VP9 video track, with VP9 alpha carried the way
//! browsers and Telegram's libvpx players read it: `AlphaMode = 1` on the track, and each
//! frame's alpha picture in a BlockGroup's BlockAdditional with BlockAddID 1.
//!
//! Everything is in memory, so element sizes are always known: no "unknown size" elements,
//! and Cues come after the clusters where their offsets are settled.

use crate::media::vpx::Packet;

mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMECODE_SCALE: u32 = 0x2A_D7B1;
    pub const DURATION: u32 = 0x4489;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const FLAG_LACING: u32 = 0x9C;
    pub const CODEC_ID: u32 = 0x86;
    pub const DEFAULT_DURATION: u32 = 0x23_E383;
    pub const MAX_BLOCK_ADDITION_ID: u32 = 0x55EE;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const ALPHA_MODE: u32 = 0x53C0;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMECODE: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const BLOCK_GROUP: u32 = 0xA0;
    pub const BLOCK: u32 = 0xA1;
    pub const REFERENCE_BLOCK: u32 = 0xFB;
    pub const BLOCK_ADDITIONS: u32 = 0x75A1;
    pub const BLOCK_MORE: u32 = 0xA6;
    pub const BLOCK_ADD_ID: u32 = 0xEE;
    pub const BLOCK_ADDITIONAL: u32 = 0xA5;
    pub const CUES: u32 = 0x1C53_BB6B;
    pub const CUE_POINT: u32 = 0xBB;
    pub const CUE_TIME: u32 = 0xB3;
    pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
    pub const CUE_TRACK: u32 = 0xF7;
    pub const CUE_CLUSTER_POSITION: u32 = 0xF1;
}

/// Block timecodes are signed 16-bit offsets from their cluster's timecode.
const MAX_CLUSTER_SPAN_MS: u64 = 30_000;

/// What the track needs to say about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// Muxes VP9 packets (and, when given, one alpha packet per frame) into a WebM file.
pub fn mux(track: Track, video: &[Packet], alpha: Option<&[Packet]>) -> Vec<u8> {
    let has_alpha = alpha.is_some();
    let mut out = Vec::new();
    let header = [
        uint(id::EBML_VERSION, 1),
        uint(id::EBML_READ_VERSION, 1),
        uint(id::EBML_MAX_ID_LENGTH, 4),
        uint(id::EBML_MAX_SIZE_LENGTH, 8),
        string(id::DOC_TYPE, "webm"),
        // BlockAdditions and AlphaMode arrived with WebM v4.
        uint(id::DOC_TYPE_VERSION, if has_alpha { 4 } else { 2 }),
        uint(id::DOC_TYPE_READ_VERSION, 2),
    ]
    .concat();
    out.extend(element(id::EBML, &header));

    // Rounded to the nearest millisecond, as ffmpeg does; flooring drifts a frame early.
    let fps = track.fps.max(1) as u64;
    let frame_ms = |i: usize| (i as u64 * 1000 + fps / 2) / fps;
    let duration_ms = video.len() as f64 * 1000.0 / track.fps.max(1) as f64;
    let info = [
        uint(id::TIMECODE_SCALE, 1_000_000),
        float(id::DURATION, duration_ms),
        string(id::MUXING_APP, "loopsmith"),
        string(id::WRITING_APP, "loopsmith"),
    ]
    .concat();

    let mut video_settings = [
        uint(id::PIXEL_WIDTH, track.width.into()),
        uint(id::PIXEL_HEIGHT, track.height.into()),
    ]
    .concat();
    let mut entry = [
        uint(id::TRACK_NUMBER, 1),
        uint(id::TRACK_UID, 1),
        uint(id::TRACK_TYPE, 1),
        uint(id::FLAG_LACING, 0),
        string(id::CODEC_ID, "V_VP9"),
        uint(
            id::DEFAULT_DURATION,
            1_000_000_000 / track.fps.max(1) as u64,
        ),
    ]
    .concat();
    if has_alpha {
        entry.extend(uint(id::MAX_BLOCK_ADDITION_ID, 1));
        video_settings.extend(uint(id::ALPHA_MODE, 1));
    }
    entry.extend(element(id::VIDEO, &video_settings));
    let tracks = element(id::TRACK_ENTRY, &entry);

    let mut segment = element(id::INFO, &info);
    segment.extend(element(id::TRACKS, &tracks));

    let mut cue_points = Vec::new();
    let mut index = 0;
    while index < video.len() {
        let cluster_start = frame_ms(index);
        let mut cluster = uint(id::TIMECODE, cluster_start);
        while index < video.len() && frame_ms(index) - cluster_start < MAX_CLUSTER_SPAN_MS {
            let offset = (frame_ms(index) - cluster_start) as i16;
            let packet = &video[index];
            match alpha.and_then(|a| a.get(index)) {
                None => cluster.extend(element(
                    id::SIMPLE_BLOCK,
                    &block(offset, packet.keyframe, &packet.data),
                )),
                Some(alpha_packet) => {
                    let more = [
                        uint(id::BLOCK_ADD_ID, 1),
                        element(id::BLOCK_ADDITIONAL, &alpha_packet.data),
                    ]
                    .concat();
                    let mut group = element(id::BLOCK, &block(offset, false, &packet.data));
                    group.extend(element(
                        id::BLOCK_ADDITIONS,
                        &element(id::BLOCK_MORE, &more),
                    ));
                    if !packet.keyframe && index > 0 {
                        // A BlockGroup without ReferenceBlock counts as a keyframe.
                        let back = frame_ms(index) as i64 - frame_ms(index - 1) as i64;
                        group.extend(int(id::REFERENCE_BLOCK, -back));
                    }
                    cluster.extend(element(id::BLOCK_GROUP, &group));
                }
            }
            index += 1;
        }
        let cue = [
            uint(id::CUE_TIME, cluster_start),
            element(
                id::CUE_TRACK_POSITIONS,
                &[
                    uint(id::CUE_TRACK, 1),
                    uint(id::CUE_CLUSTER_POSITION, segment.len() as u64),
                ]
                .concat(),
            ),
        ]
        .concat();
        cue_points.extend(element(id::CUE_POINT, &cue));
        segment.extend(element(id::CLUSTER, &cluster));
    }
    segment.extend(element(id::CUES, &cue_points));
    out.extend(element(id::SEGMENT, &segment));
    out
}

fn block(offset: i16, keyframe: bool, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(data.len() + 4);
    b.push(0x81); // track number 1 as a one-byte vint
    b.extend(offset.to_be_bytes());
    b.push(if keyframe { 0x80 } else { 0x00 });
    b.extend_from_slice(data);
    b
}

fn element(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 12);
    let id_bytes = id.to_be_bytes();
    let skip = id_bytes.iter().take_while(|&&b| b == 0).count();
    out.extend_from_slice(&id_bytes[skip..]);
    out.extend(size_vint(payload.len() as u64));
    out.extend_from_slice(payload);
    out
}

/// EBML's variable-length size: the count of leading zero bits says how many bytes follow.
/// All-ones values are reserved ("unknown size"), hence the `- 1`.
fn size_vint(size: u64) -> Vec<u8> {
    let length = (1..=8).find(|&n| size < (1u64 << (7 * n)) - 1).unwrap_or(8);
    let marked = size | (1u64 << (7 * length));
    marked.to_be_bytes()[8 - length..].to_vec()
}

fn uint(id: u32, value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    element(id, &bytes[skip..])
}

fn int(id: u32, value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    // Drop leading bytes that only repeat the sign.
    let mut skip = 0;
    while skip < 7 {
        let (b, next) = (bytes[skip], bytes[skip + 1]);
        let redundant = (b == 0x00 && next & 0x80 == 0) || (b == 0xFF && next & 0x80 != 0);
        if !redundant {
            break;
        }
        skip += 1;
    }
    element(id, &bytes[skip..])
}

fn float(id: u32, value: f64) -> Vec<u8> {
    element(id, &value.to_be_bytes())
}

fn string(id: u32, value: &str) -> Vec<u8> {
    element(id, value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ids_follow_ebml() {
        assert_eq!(size_vint(0), [0x80]);
        assert_eq!(size_vint(126), [0xFE]);
        assert_eq!(
            size_vint(127),
            [0x40, 0x7F],
            "0xFF alone would mean unknown size"
        );
        assert_eq!(size_vint(300), [0x41, 0x2C]);
        assert_eq!(element(id::EBML, &[]), [0x1A, 0x45, 0xDF, 0xA3, 0x80]);
        assert_eq!(uint(id::TRACK_NUMBER, 1), [0xD7, 0x81, 0x01]);
        assert_eq!(uint(id::TIMECODE, 0), [0xE7, 0x81, 0x00]);
        assert_eq!(int(id::REFERENCE_BLOCK, -42), [0xFB, 0x81, 0xD6]);
        assert_eq!(int(id::REFERENCE_BLOCK, -200), [0xFB, 0x82, 0xFF, 0x38]);
    }

    #[test]
    fn blocks_carry_track_time_and_keyframe_flag() {
        assert_eq!(block(41, true, &[7, 8]), [0x81, 0x00, 0x29, 0x80, 7, 8]);
        assert_eq!(block(-1, false, &[]), [0x81, 0xFF, 0xFF, 0x00]);
    }
}
