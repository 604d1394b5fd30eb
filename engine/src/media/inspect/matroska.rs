//! Matroska / WebM: the EBML header, Segment → Info, Tracks and Clusters (SimpleBlock and
//! BlockGroup). Everything else (SeekHead, Cues, Tags, Chapters, Attachments, Void, CRC-32,
//! BlockAdditions…) is skipped by size.
//!
//! Segment and Cluster may have the "unknown" size that live muxers write: an unknown-size
//! Segment runs to the end of the file (or the next EBML header), an unknown-size Cluster runs
//! until the first element that cannot be its child. Any other element of unknown size is
//! refused.

use super::{
    Budget, Container, Cursor, MAX_TRACKS, MediaError, MediaInfo, WEBM, count_u32, h264, malformed,
    rate, vp9,
};

const EBML: u32 = 0x1A45_DFA3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const DEFAULT_DURATION: u32 = 0x23_E383;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const ALPHA_MODE: u32 = 0x53C0;
const CLUSTER: u32 = 0x1F43_B675;
const TIMECODE: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const BLOCK_GROUP: u32 = 0xA0;
const BLOCK: u32 = 0xA1;
const REFERENCE_BLOCK: u32 = 0xFB;
const BLOCK_DURATION: u32 = 0x9B;
/// Children a Cluster may have besides the blocks: Position, PrevSize, SilentTracks,
/// EncryptedBlock, Void, CRC-32.
const OTHER_CLUSTER_CHILDREN: [u32; 6] = [0xA7, 0xAB, 0x5854, 0xAF, 0xEC, 0xBF];

/// The longest string element read (CodecID, DocType).
const MAX_STRING: usize = 1024;

/// An element header: its ID and its data size, `None` for "unknown".
#[derive(Debug, Clone, Copy)]
struct Header {
    id: u32,
    size: Option<u64>,
}

/// Reads an element ID (1 to 4 bytes, marker bits kept).
fn read_id(c: &mut Cursor<'_>) -> Result<u32, MediaError> {
    let offset = c.offset();
    let first = c.u8("an EBML element ID")?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return Err(malformed(
            WEBM,
            format!("invalid EBML element ID byte 0x{first:02X} at offset {offset}"),
        ));
    }
    let mut id = u32::from(first);
    for _ in 1..len {
        id = (id << 8) | u32::from(c.u8("an EBML element ID")?);
    }
    Ok(id)
}

/// Reads a variable-length integer (1 to 8 bytes, marker removed). Returns the value and
/// whether every value bit was one (the "unknown" size).
fn read_vint(c: &mut Cursor<'_>, context: &str) -> Result<(u64, bool), MediaError> {
    let offset = c.offset();
    let first = c.u8(context)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return Err(malformed(
            WEBM,
            format!("invalid {context} byte 0x00 at offset {offset}"),
        ));
    }
    let mask: u8 = 0xFFu8.checked_shr(len as u32).unwrap_or(0);
    let mut value = u64::from(first & mask);
    let mut all_ones = first & mask == mask;
    for _ in 1..len {
        let b = c.u8(context)?;
        all_ones &= b == 0xFF;
        value = (value << 8) | u64::from(b);
    }
    Ok((value, all_ones))
}

fn read_header(c: &mut Cursor<'_>) -> Result<Header, MediaError> {
    let id = read_id(c)?;
    let (size, unknown) = read_vint(c, "an EBML element size")?;
    Ok(Header {
        id,
        size: (!unknown).then_some(size),
    })
}

/// The body of a known-size element, checked against what remains.
fn body<'a>(c: &mut Cursor<'a>, h: Header) -> Result<Cursor<'a>, MediaError> {
    let Some(size) = h.size else {
        return Err(malformed(
            WEBM,
            format!(
                "EBML element 0x{:X} at offset {} has an unknown size; only Segment and Cluster may",
                h.id,
                c.offset()
            ),
        ));
    };
    match usize::try_from(size) {
        Ok(n) if n <= c.remaining() => c.sub(n, "an EBML element"),
        _ => Err(malformed(
            WEBM,
            format!(
                "EBML element 0x{:X} at offset {} claims {size} bytes but only {} remain",
                h.id,
                c.offset(),
                c.remaining()
            ),
        )),
    }
}

fn read_uint(b: &Cursor<'_>, id: u32) -> Result<u64, MediaError> {
    let bytes = b.rest();
    if bytes.len() > 8 {
        return Err(malformed(
            WEBM,
            format!(
                "unsigned integer element 0x{id:X} has {} bytes (at most 8)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
}

fn read_float(b: &Cursor<'_>, id: u32) -> Result<f64, MediaError> {
    let value = match b.rest() {
        [] => 0.0,
        &[a, b, c, d] => f64::from(f32::from_be_bytes([a, b, c, d])),
        &[a, b, c, d, e, f, g, h] => f64::from_be_bytes([a, b, c, d, e, f, g, h]),
        other => {
            return Err(malformed(
                WEBM,
                format!(
                    "float element 0x{id:X} has {} bytes (0, 4 or 8)",
                    other.len()
                ),
            ));
        }
    };
    if value.is_finite() {
        Ok(value)
    } else {
        Err(malformed(
            WEBM,
            format!("float element 0x{id:X} is {value}"),
        ))
    }
}

fn read_string(b: &Cursor<'_>, id: u32) -> Result<String, MediaError> {
    let bytes = b.rest();
    if bytes.len() > MAX_STRING {
        return Err(malformed(
            WEBM,
            format!(
                "string element 0x{id:X} has {} bytes (at most {MAX_STRING})",
                bytes.len()
            ),
        ));
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Ok(String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).into_owned())
}

#[derive(Debug, Default)]
struct Track<'a> {
    number: u64,
    kind: u64,
    codec_id: String,
    codec_private: Option<&'a [u8]>,
    default_duration_ns: Option<u64>,
    width: Option<u64>,
    height: Option<u64>,
    alpha_mode: u64,
}

/// What the blocks of one track number added up to.
#[derive(Debug)]
struct Tally<'a> {
    track: u64,
    frames: u64,
    keyframes: u64,
    /// The first frame, when the first block was not laced.
    first_frame: Option<&'a [u8]>,
    /// The latest block start and its BlockDuration, in TimecodeScale units.
    last_start: i128,
    last_duration: Option<u64>,
    first_start: i128,
    blocks: u64,
}

#[derive(Debug)]
struct State<'a> {
    budget: Budget,
    timecode_scale: u64,
    duration: Option<f64>,
    seen_info: bool,
    seen_tracks: bool,
    tracks: Vec<Track<'a>>,
    tallies: Vec<Tally<'a>>,
}

pub(super) fn inspect(data: &[u8]) -> Result<MediaInfo, MediaError> {
    let mut state = State {
        budget: Budget::new(WEBM),
        timecode_scale: 1_000_000,
        duration: None,
        seen_info: false,
        seen_tracks: false,
        tracks: Vec::new(),
        tallies: Vec::new(),
    };
    let mut c = Cursor::new(data, WEBM);
    let h = read_header(&mut c)?;
    if h.id != EBML {
        return Err(malformed(
            WEBM,
            "the file does not start with an EBML header",
        ));
    }
    let mut header = body(&mut c, h)?;
    let mut doc_type = String::from("matroska");
    while !header.is_empty() {
        state.budget.spend()?;
        let h = read_header(&mut header)?;
        let b = body(&mut header, h)?;
        if h.id == DOC_TYPE {
            doc_type = read_string(&b, h.id)?;
        }
    }
    if doc_type != "webm" && doc_type != "matroska" {
        return Err(malformed(
            WEBM,
            format!("DocType {doc_type:?} is neither webm nor matroska"),
        ));
    }
    let mut found_segment = false;
    while !c.is_empty() {
        state.budget.spend()?;
        let h = read_header(&mut c)?;
        if h.id == SEGMENT {
            let segment = match h.size {
                Some(_) => body(&mut c, h)?,
                None => {
                    let rest = c.remaining();
                    c.sub(rest, "a Segment")?
                }
            };
            parse_segment(&mut state, segment, h.size.is_none())?;
            found_segment = true;
            break;
        }
        body(&mut c, h)?; // Void or anything else before the Segment
    }
    if !found_segment {
        return Err(malformed(WEBM, "no Segment after the EBML header"));
    }
    finish(state, data.len())
}

fn parse_segment<'a>(
    state: &mut State<'a>,
    mut c: Cursor<'a>,
    unknown_size: bool,
) -> Result<(), MediaError> {
    while !c.is_empty() {
        state.budget.spend()?;
        let h = read_header(&mut c)?;
        match h.id {
            CLUSTER if h.size.is_none() => parse_cluster(state, &mut c, true)?,
            CLUSTER => parse_cluster(state, &mut body(&mut c, h)?, false)?,
            INFO if !state.seen_info => {
                state.seen_info = true;
                parse_info(state, body(&mut c, h)?)?;
            }
            TRACKS if !state.seen_tracks => {
                state.seen_tracks = true;
                parse_tracks(state, body(&mut c, h)?)?;
            }
            // A chained second file: the unknown-size Segment ended.
            EBML if unknown_size => return Ok(()),
            _ => {
                body(&mut c, h)?;
            }
        }
    }
    Ok(())
}

fn parse_info(state: &mut State<'_>, mut c: Cursor<'_>) -> Result<(), MediaError> {
    while !c.is_empty() {
        state.budget.spend()?;
        let h = read_header(&mut c)?;
        let b = body(&mut c, h)?;
        match h.id {
            TIMECODE_SCALE => {
                let scale = read_uint(&b, h.id)?;
                if scale == 0 {
                    return Err(malformed(WEBM, "TimecodeScale is 0"));
                }
                state.timecode_scale = scale;
            }
            DURATION => {
                let d = read_float(&b, h.id)?;
                if d < 0.0 {
                    return Err(malformed(WEBM, format!("Duration is negative ({d})")));
                }
                state.duration = Some(d);
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_tracks<'a>(state: &mut State<'a>, mut c: Cursor<'a>) -> Result<(), MediaError> {
    while !c.is_empty() {
        state.budget.spend()?;
        let h = read_header(&mut c)?;
        let mut entry = body(&mut c, h)?;
        if h.id != TRACK_ENTRY {
            continue;
        }
        if state.tracks.len() >= MAX_TRACKS {
            return Err(malformed(
                WEBM,
                format!("more than {MAX_TRACKS} TrackEntry elements"),
            ));
        }
        let mut track = Track::default();
        while !entry.is_empty() {
            state.budget.spend()?;
            let h = read_header(&mut entry)?;
            let mut b = body(&mut entry, h)?;
            match h.id {
                TRACK_NUMBER => track.number = read_uint(&b, h.id)?,
                TRACK_TYPE => track.kind = read_uint(&b, h.id)?,
                CODEC_ID => track.codec_id = read_string(&b, h.id)?,
                CODEC_PRIVATE => track.codec_private = Some(b.rest()),
                DEFAULT_DURATION => track.default_duration_ns = Some(read_uint(&b, h.id)?),
                VIDEO => {
                    while !b.is_empty() {
                        state.budget.spend()?;
                        let h = read_header(&mut b)?;
                        let v = body(&mut b, h)?;
                        match h.id {
                            PIXEL_WIDTH => track.width = Some(read_uint(&v, h.id)?),
                            PIXEL_HEIGHT => track.height = Some(read_uint(&v, h.id)?),
                            ALPHA_MODE => track.alpha_mode = read_uint(&v, h.id)?,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if track.number == 0 {
            return Err(malformed(WEBM, "a TrackEntry has no TrackNumber (or 0)"));
        }
        if state.tracks.iter().any(|t| t.number == track.number) {
            return Err(malformed(
                WEBM,
                format!("two TrackEntry elements have TrackNumber {}", track.number),
            ));
        }
        state.tracks.push(track);
    }
    Ok(())
}

/// Reads a Cluster's children. With `unknown_size`, `c` is the rest of the Segment and the
/// Cluster ends (unread) at the first element that cannot be its child.
fn parse_cluster<'a>(
    state: &mut State<'a>,
    c: &mut Cursor<'a>,
    unknown_size: bool,
) -> Result<(), MediaError> {
    let mut timecode: Option<u64> = None;
    while !c.is_empty() {
        state.budget.spend()?;
        let mut ahead = c.clone();
        let h = read_header(&mut ahead)?;
        let is_child = matches!(h.id, TIMECODE | SIMPLE_BLOCK | BLOCK_GROUP)
            || OTHER_CLUSTER_CHILDREN.contains(&h.id);
        if !is_child && unknown_size {
            return Ok(());
        }
        *c = ahead;
        let mut b = body(c, h)?;
        match h.id {
            TIMECODE => timecode = Some(read_uint(&b, h.id)?),
            SIMPLE_BLOCK => {
                let cluster = need_timecode(timecode, "SimpleBlock")?;
                block(state, b, cluster, None, None)?;
            }
            BLOCK_GROUP => {
                let cluster = need_timecode(timecode, "BlockGroup")?;
                let mut found: Option<Cursor<'a>> = None;
                let mut referenced = false;
                let mut duration = None;
                while !b.is_empty() {
                    state.budget.spend()?;
                    let h = read_header(&mut b)?;
                    let g = body(&mut b, h)?;
                    match h.id {
                        BLOCK if found.is_none() => found = Some(g),
                        REFERENCE_BLOCK => referenced = true,
                        BLOCK_DURATION => duration = Some(read_uint(&g, h.id)?),
                        _ => {}
                    }
                }
                let Some(found) = found else {
                    return Err(malformed(WEBM, "a BlockGroup has no Block"));
                };
                block(state, found, cluster, duration, Some(!referenced))?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn need_timecode(timecode: Option<u64>, what: &str) -> Result<u64, MediaError> {
    timecode.ok_or_else(|| {
        malformed(
            WEBM,
            format!("a {what} comes before its Cluster's Timecode"),
        )
    })
}

/// Tallies one SimpleBlock (`keyframe` is `None`: the flags say) or one BlockGroup's Block
/// (`keyframe` says whether it had no ReferenceBlock).
fn block<'a>(
    state: &mut State<'a>,
    mut b: Cursor<'a>,
    cluster: u64,
    duration: Option<u64>,
    keyframe: Option<bool>,
) -> Result<(), MediaError> {
    let (track, unknown) = read_vint(&mut b, "a block's track number")?;
    if unknown || track == 0 {
        return Err(malformed(WEBM, "a block has an invalid track number"));
    }
    let relative = i16::from_be_bytes(b.array("a block header")?);
    let flags = b.u8("a block header")?;
    let keyframe = keyframe.unwrap_or(flags & 0x80 != 0);
    let lacing = (flags >> 1) & 3;
    let frames = if lacing == 0 {
        1
    } else {
        u64::from(b.u8("a block's lace count")?) + 1
    };
    let start = i128::from(cluster) + i128::from(relative);
    let index = match state.tallies.iter().position(|t| t.track == track) {
        Some(i) => i,
        None => {
            if state.tallies.len() >= MAX_TRACKS {
                return Err(malformed(
                    WEBM,
                    format!("blocks for more than {MAX_TRACKS} track numbers"),
                ));
            }
            state.tallies.push(Tally {
                track,
                frames: 0,
                keyframes: 0,
                first_frame: (lacing == 0).then(|| b.rest()),
                last_start: start,
                last_duration: None,
                first_start: start,
                blocks: 0,
            });
            state.tallies.len() - 1
        }
    };
    if let Some(t) = state.tallies.get_mut(index) {
        t.frames = t.frames.saturating_add(frames);
        t.blocks = t.blocks.saturating_add(1);
        if keyframe {
            t.keyframes = t.keyframes.saturating_add(frames);
        }
        if start >= t.last_start {
            t.last_start = start;
            t.last_duration = duration;
        }
        t.first_start = t.first_start.min(start);
    }
    Ok(())
}

fn finish(state: State<'_>, bytes: usize) -> Result<MediaInfo, MediaError> {
    let video_tracks = state.tracks.iter().filter(|t| t.kind == 1).count();
    let audio_tracks = state.tracks.iter().filter(|t| t.kind == 2).count();
    let Some(video) = state.tracks.iter().find(|t| t.kind == 1) else {
        return Err(malformed(WEBM, "no video track (TrackType 1)"));
    };
    let tally = state.tallies.iter().find(|t| t.track == video.number);
    let first = tally.and_then(|t| t.first_frame);
    let codec = match video.codec_id.as_str() {
        "V_VP9" => "vp9",
        "V_VP8" => "vp8",
        "V_AV1" => "av1",
        "V_MPEG4/ISO/AVC" => "h264",
        "V_MPEGH/ISO/HEVC" => "hevc",
        other => other,
    };
    let header = match codec {
        "vp9" => first.and_then(vp9::vp9_header),
        "vp8" => first.and_then(vp9::vp8_header),
        _ => None,
    };
    let (private_profile, private_chroma) = match (codec, video.codec_private) {
        ("vp9", Some(p)) => vp9::vp9_codec_private(p),
        ("h264", Some(p)) => match h264::avc_config(p, WEBM) {
            Ok(avc) => (Some(avc.profile), avc.chroma_420),
            Err(_) => (None, None),
        },
        _ => (None, None),
    };
    let profile = header.map(|h| h.profile).or(private_profile);
    let chroma_420 = header.and_then(|h| h.chroma_420).or(private_chroma);
    let size = |stated: Option<u64>, coded: Option<u32>, name: &str| -> Result<u32, MediaError> {
        match (stated, coded) {
            (Some(n), _) => u32::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| malformed(WEBM, format!("{name} is {n}"))),
            (None, Some(n)) => Ok(n),
            (None, None) => Err(malformed(WEBM, format!("the video track has no {name}"))),
        }
    };
    let coded = header.and_then(|h| h.size);
    let width = size(video.width, coded.map(|s| s.0), "PixelWidth")?;
    let height = size(video.height, coded.map(|s| s.1), "PixelHeight")?;

    let scale_secs = state.timecode_scale as f64 / 1e9;
    let default_secs = video
        .default_duration_ns
        .filter(|&d| d > 0)
        .map(|d| d as f64 / 1e9);
    let frames = count_u32(tally.map_or(0, |t| t.frames));
    let duration_secs = match (state.duration, tally) {
        (Some(d), _) => d * scale_secs,
        (None, Some(t)) => {
            // No Duration (a live muxer): the last block's start plus its length.
            let last = t.last_start.max(0) as f64 * scale_secs;
            let length = t
                .last_duration
                .map(|d| d as f64 * scale_secs)
                .or(default_secs)
                .unwrap_or_else(|| {
                    let span = (t.last_start - t.first_start).max(0) as f64 * scale_secs;
                    if t.blocks > 1 {
                        span / (t.blocks - 1) as f64
                    } else {
                        0.0
                    }
                });
            last + length
        }
        (None, None) => 0.0,
    };
    let fps = match default_secs {
        Some(d) => 1.0 / d,
        None => rate(frames, duration_secs),
    };
    Ok(MediaInfo {
        container: Container::WebM,
        codec: codec.to_string(),
        profile,
        chroma_420,
        width,
        height,
        frames,
        keyframes: count_u32(tally.map_or(0, |t| t.keyframes)),
        duration_secs,
        fps,
        audio_tracks: count_u32(audio_tracks as u64),
        video_tracks: count_u32(video_tracks as u64),
        alpha: video.alpha_mode == 1,
        fast_start: None,
        loops: None,
        bytes,
    })
}

#[cfg(test)]
mod tests;
