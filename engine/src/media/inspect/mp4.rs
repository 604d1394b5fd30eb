//! ISO base media (MP4): ftyp, moov → mvhd, trak → tkhd, mdia → mdhd, hdlr, minf → stbl →
//! stsd (the first sample entry, with avcC or vpcC), stsz/stz2, stss, stts, stco/co64; and, for
//! fragmented files, moof → traf → tfhd, trun (with mvex → trex defaults). Sample sizes and chunk
//! offsets are checked against the `mdat` boxes and the file length, so a file cut short is
//! noticed. Everything else is skipped by size: edit lists, sample-to-chunk, composition
//! offsets, user data, metadata, and the sample data itself.

use super::{
    Budget, Container, Cursor, MAX_DEPTH, MAX_TRACKS, MP4, MediaError, MediaInfo, count_u32, h264,
    malformed, rate,
};

/// One box: its type, its body and the file offset of its header.
#[derive(Debug)]
struct Mp4Box<'a> {
    kind: [u8; 4],
    body: Cursor<'a>,
    offset: usize,
}

fn name(kind: [u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// Reads the next box header from `c` and returns the box, its body bounded by its size.
fn next_box<'a>(c: &mut Cursor<'a>, budget: &mut Budget) -> Result<Mp4Box<'a>, MediaError> {
    budget.spend()?;
    let offset = c.offset();
    let size32 = c.be_u32("a box size")?;
    let kind = c.array::<4>("a box type")?;
    let mut header = 8u64;
    let size = match size32 {
        0 => None, // to the end of the enclosing box or file
        1 => {
            header += 8;
            Some(c.be_u64("a 64-bit box size")?)
        }
        n => Some(u64::from(n)),
    };
    if &kind == b"uuid" {
        c.skip(16, "a uuid box's extended type")?;
        header += 16;
    }
    let body_len = match size {
        None => c.remaining(),
        Some(size) if size < header => {
            return Err(malformed(
                MP4,
                format!(
                    "box '{}' at offset {offset} has size {size}, smaller than its {header}-byte header",
                    name(kind)
                ),
            ));
        }
        Some(size) => match usize::try_from(size - header) {
            Ok(n) if n <= c.remaining() => n,
            _ => {
                return Err(malformed(
                    MP4,
                    format!(
                        "box '{}' at offset {offset} claims {size} bytes but only {} remain",
                        name(kind),
                        c.remaining().saturating_add(header as usize)
                    ),
                ));
            }
        },
    };
    let body = c.sub(body_len, "a box body")?;
    Ok(Mp4Box { kind, body, offset })
}

/// Skips the version and flags of a full box, returning them.
fn full_box(c: &mut Cursor<'_>) -> Result<(u8, u32), MediaError> {
    let v = c.be_u32("a full box's version and flags")?;
    Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
}

/// Checks that `count` entries of `size` bytes fit in what remains of `c`.
fn entries(c: &Cursor<'_>, count: u32, size: usize, what: &str) -> Result<usize, MediaError> {
    let count = count as usize;
    match count.checked_mul(size) {
        Some(need) if need <= c.remaining() => Ok(count),
        _ => Err(malformed(
            MP4,
            format!(
                "'{what}' claims {count} entries of {size} bytes but only {} bytes remain",
                c.remaining()
            ),
        )),
    }
}

#[derive(Debug, Default)]
struct Track<'a> {
    id: u32,
    handler: [u8; 4],
    timescale: u32,
    duration: u64,
    entry: Option<Mp4Box<'a>>,
    samples: Option<u64>,
    /// Bytes the sample size table adds up to, and the largest chunk offset.
    sample_bytes: u64,
    max_chunk_offset: Option<u64>,
    syncs: Option<u64>,
    /// Sum of stts sample counts × deltas, and the delta when there is only one.
    stts_ticks: u64,
    stts_delta: Option<u32>,
    stts_mixed: bool,
    /// From trex.
    default_duration: u32,
    default_flags: u32,
    /// From fragments.
    frag_samples: u64,
    frag_syncs: u64,
    frag_ticks: u64,
}

#[derive(Debug)]
struct State<'a> {
    budget: Budget,
    movie_timescale: u32,
    movie_duration: u64,
    tracks: Vec<Track<'a>>,
}

pub(super) fn inspect(data: &[u8]) -> Result<MediaInfo, MediaError> {
    let mut state = State {
        budget: Budget::new(MP4),
        movie_timescale: 0,
        movie_duration: 0,
        tracks: Vec::new(),
    };
    let mut c = Cursor::new(data, MP4);
    let mut moov_at = None;
    let mut mdat_at = None;
    let mut mdat_bytes = 0u64;
    let mut fragments = Vec::new();
    while !c.is_empty() {
        let b = next_box(&mut c, &mut state.budget)?;
        match &b.kind {
            b"moov" if moov_at.is_none() => {
                moov_at = Some(b.offset);
                parse_moov(&mut state, b.body)?;
            }
            b"mdat" => {
                mdat_at = mdat_at.or(Some(b.offset));
                mdat_bytes = mdat_bytes.saturating_add(b.body.remaining() as u64);
            }
            b"moof" => fragments.push(b.body),
            _ => {}
        }
    }
    let Some(moov_at) = moov_at else {
        return Err(malformed(MP4, "no 'moov' box"));
    };
    // A sample table describing data the file does not hold means the file was cut short.
    let described = state
        .tracks
        .iter()
        .fold(0u64, |sum, t| sum.saturating_add(t.sample_bytes));
    if described > mdat_bytes {
        return Err(malformed(
            MP4,
            format!("the sample tables describe {described} bytes but 'mdat' holds {mdat_bytes}"),
        ));
    }
    if let Some(offset) = state.tracks.iter().filter_map(|t| t.max_chunk_offset).max()
        && offset >= data.len() as u64
    {
        return Err(malformed(
            MP4,
            format!(
                "a chunk offset ({offset}) lies beyond the file's {} bytes",
                data.len()
            ),
        ));
    }
    // Fragments refer to tracks (and trex defaults) that moov declared, wherever it was.
    for moof in fragments {
        parse_moof(&mut state, moof)?;
    }
    finish(state, moov_at, mdat_at, data.len())
}

/// Visits the children of `c`, descending into the containers named in `descend`, calling
/// `leaf` for every other box.
fn walk<'a>(
    budget: &mut Budget,
    mut c: Cursor<'a>,
    descend: &[&[u8; 4]],
    depth: usize,
    leaf: &mut dyn FnMut(&mut Budget, Mp4Box<'a>) -> Result<(), MediaError>,
) -> Result<(), MediaError> {
    if depth > MAX_DEPTH {
        return Err(malformed(
            MP4,
            format!("boxes nest deeper than {MAX_DEPTH}"),
        ));
    }
    while !c.is_empty() {
        let b = next_box(&mut c, budget)?;
        if descend.contains(&&b.kind) {
            walk(budget, b.body, descend, depth + 1, leaf)?;
        } else {
            leaf(budget, b)?;
        }
    }
    Ok(())
}

fn parse_moov<'a>(state: &mut State<'a>, moov: Cursor<'a>) -> Result<(), MediaError> {
    let mut c = moov;
    while !c.is_empty() {
        let mut b = next_box(&mut c, &mut state.budget)?;
        match &b.kind {
            b"mvhd" => {
                let (version, _) = full_box(&mut b.body)?;
                if version == 1 {
                    b.body.skip(16, "mvhd times")?;
                    state.movie_timescale = b.body.be_u32("the mvhd timescale")?;
                    state.movie_duration = b.body.be_u64("the mvhd duration")?;
                } else {
                    b.body.skip(8, "mvhd times")?;
                    state.movie_timescale = b.body.be_u32("the mvhd timescale")?;
                    state.movie_duration = u64::from(b.body.be_u32("the mvhd duration")?);
                }
            }
            b"trak" => {
                if state.tracks.len() >= MAX_TRACKS {
                    return Err(malformed(MP4, format!("more than {MAX_TRACKS} tracks")));
                }
                let track = parse_trak(&mut state.budget, b.body)?;
                state.tracks.push(track);
            }
            b"mvex" => {
                let mut m = b.body;
                while !m.is_empty() {
                    let mut t = next_box(&mut m, &mut state.budget)?;
                    if &t.kind == b"trex" {
                        full_box(&mut t.body)?;
                        let id = t.body.be_u32("the trex track ID")?;
                        t.body.skip(4, "the trex sample description index")?;
                        let duration = t.body.be_u32("the trex sample duration")?;
                        t.body.skip(4, "the trex sample size")?;
                        let flags = t.body.be_u32("the trex sample flags")?;
                        if let Some(track) = state.tracks.iter_mut().find(|tr| tr.id == id) {
                            track.default_duration = duration;
                            track.default_flags = flags;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_trak<'a>(budget: &mut Budget, trak: Cursor<'a>) -> Result<Track<'a>, MediaError> {
    let mut t = Track::default();
    let descend: [&[u8; 4]; 3] = [b"mdia", b"minf", b"stbl"];
    walk(budget, trak, &descend, 1, &mut |budget, mut b| {
        let c = &mut b.body;
        match &b.kind {
            b"tkhd" => {
                let (version, _) = full_box(c)?;
                c.skip(if version == 1 { 16 } else { 8 }, "tkhd times")?;
                t.id = c.be_u32("the tkhd track ID")?;
            }
            b"mdhd" => {
                let (version, _) = full_box(c)?;
                c.skip(if version == 1 { 16 } else { 8 }, "mdhd times")?;
                t.timescale = c.be_u32("the mdhd timescale")?;
                t.duration = if version == 1 {
                    c.be_u64("the mdhd duration")?
                } else {
                    u64::from(c.be_u32("the mdhd duration")?)
                };
            }
            // Only the media handler: QuickTime files also have a data handler in 'minf'.
            b"hdlr" if t.handler == [0; 4] => {
                full_box(c)?;
                c.skip(4, "hdlr pre_defined")?;
                t.handler = c.array("the hdlr handler type")?;
            }
            b"stsd" => {
                full_box(c)?;
                let count = c.be_u32("the stsd entry count")?;
                if count == 0 {
                    return Err(malformed(MP4, "'stsd' has no sample entries"));
                }
                t.entry = Some(next_box(c, budget)?);
            }
            b"stsz" => {
                full_box(c)?;
                let size = c.be_u32("the stsz sample size")?;
                let count = c.be_u32("the stsz sample count")?;
                if size == 0 {
                    for _ in 0..entries(c, count, 4, "stsz")? {
                        budget.spend()?;
                        let n = c.be_u32("an stsz entry")?;
                        t.sample_bytes = t.sample_bytes.saturating_add(u64::from(n));
                    }
                } else {
                    t.sample_bytes = u64::from(size).saturating_mul(u64::from(count));
                }
                t.samples = Some(u64::from(count));
            }
            b"stz2" => {
                full_box(c)?;
                c.skip(3, "stz2 reserved")?;
                let field = c.u8("the stz2 field size")?;
                let count = c.be_u32("the stz2 sample count")?;
                let bits = u64::from(count) * u64::from(field);
                if ![4, 8, 16].contains(&field) || bits.div_ceil(8) > c.remaining() as u64 {
                    return Err(malformed(
                        MP4,
                        format!("'stz2' of {count} {field}-bit entries does not fit its box"),
                    ));
                }
                t.samples = Some(u64::from(count));
            }
            b"stco" | b"co64" => {
                full_box(c)?;
                let count = c.be_u32("the chunk offset count")?;
                let wide = &b.kind == b"co64";
                for _ in 0..entries(c, count, if wide { 8 } else { 4 }, "stco")? {
                    budget.spend()?;
                    let offset = if wide {
                        c.be_u64("a chunk offset")?
                    } else {
                        u64::from(c.be_u32("a chunk offset")?)
                    };
                    t.max_chunk_offset = t.max_chunk_offset.max(Some(offset));
                }
            }
            b"stss" => {
                full_box(c)?;
                let count = c.be_u32("the stss entry count")?;
                t.syncs = Some(entries(c, count, 4, "stss")? as u64);
            }
            b"stts" => {
                full_box(c)?;
                let count = c.be_u32("the stts entry count")?;
                for _ in 0..entries(c, count, 8, "stts")? {
                    budget.spend()?;
                    let n = c.be_u32("an stts sample count")?;
                    let delta = c.be_u32("an stts sample delta")?;
                    t.stts_ticks = t
                        .stts_ticks
                        .saturating_add(u64::from(n).saturating_mul(u64::from(delta)));
                    if n > 0 {
                        match t.stts_delta {
                            Some(d) if d != delta => t.stts_mixed = true,
                            _ => t.stts_delta = Some(delta),
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(t)
}

fn parse_moof(state: &mut State<'_>, moof: Cursor<'_>) -> Result<(), MediaError> {
    let tracks = &mut state.tracks;
    let mut current: Option<usize> = None;
    let (mut duration, mut flags) = (0u32, 0u32);
    walk(
        &mut state.budget,
        moof,
        &[b"traf"],
        1,
        &mut |budget, mut b| {
            let c = &mut b.body;
            match &b.kind {
                b"tfhd" => {
                    let (_, f) = full_box(c)?;
                    let id = c.be_u32("the tfhd track ID")?;
                    current = tracks.iter().position(|t| t.id == id);
                    let track = current.and_then(|i| tracks.get(i));
                    duration = track.map_or(0, |t| t.default_duration);
                    flags = track.map_or(0, |t| t.default_flags);
                    for (bit, len) in [(0x01, 8), (0x02, 4)] {
                        if f & bit != 0 {
                            c.skip(len, "tfhd optional fields")?;
                        }
                    }
                    if f & 0x08 != 0 {
                        duration = c.be_u32("the tfhd sample duration")?;
                    }
                    if f & 0x10 != 0 {
                        c.skip(4, "the tfhd sample size")?;
                    }
                    if f & 0x20 != 0 {
                        flags = c.be_u32("the tfhd sample flags")?;
                    }
                }
                b"trun" => {
                    let Some(track) = current.and_then(|i| tracks.get_mut(i)) else {
                        return Err(malformed(
                            MP4,
                            "'trun' for a track no 'tfhd'/'trak' declared",
                        ));
                    };
                    let (_, f) = full_box(c)?;
                    let count = c.be_u32("the trun sample count")?;
                    if f & 0x01 != 0 {
                        c.skip(4, "the trun data offset")?;
                    }
                    let first_flags = if f & 0x04 != 0 {
                        Some(c.be_u32("the trun first sample flags")?)
                    } else {
                        None
                    };
                    let per_sample = [0x100, 0x200, 0x400, 0x800]
                        .iter()
                        .filter(|&&bit| f & bit != 0)
                        .count()
                        * 4;
                    entries(c, count, per_sample, "trun")?;
                    for i in 0..count {
                        budget.spend()?;
                        let d = if f & 0x100 != 0 {
                            c.be_u32("a trun sample duration")?
                        } else {
                            duration
                        };
                        if f & 0x200 != 0 {
                            c.skip(4, "a trun sample size")?;
                        }
                        let mut sf = if f & 0x400 != 0 {
                            c.be_u32("a trun sample flags")?
                        } else {
                            flags
                        };
                        if i == 0 {
                            sf = first_flags.unwrap_or(sf);
                        }
                        if f & 0x800 != 0 {
                            c.skip(4, "a trun composition offset")?;
                        }
                        track.frag_samples = track.frag_samples.saturating_add(1);
                        track.frag_ticks = track.frag_ticks.saturating_add(u64::from(d));
                        // sample_is_non_sync_sample
                        if sf & 0x0001_0000 == 0 {
                            track.frag_syncs = track.frag_syncs.saturating_add(1);
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        },
    )
}

fn finish(
    state: State<'_>,
    moov_at: usize,
    mdat_at: Option<usize>,
    bytes: usize,
) -> Result<MediaInfo, MediaError> {
    let count = |h: &[u8; 4]| state.tracks.iter().filter(|t| &t.handler == h).count() as u64;
    let Some(video) = state.tracks.iter().find(|t| &t.handler == b"vide") else {
        return Err(malformed(MP4, "no video track (handler 'vide')"));
    };
    let Some(entry) = &video.entry else {
        return Err(malformed(MP4, "the video track has no sample entry"));
    };
    let mut c = entry.body.clone();
    c.skip(24, "a visual sample entry")?;
    let width = u32::from(c.be_u16("the sample entry width")?);
    let height = u32::from(c.be_u16("the sample entry height")?);
    c.skip(50, "a visual sample entry")?;
    if width == 0 || height == 0 {
        return Err(malformed(
            MP4,
            format!("the video sample entry says {width}×{height}"),
        ));
    }
    let mut config: Option<Mp4Box<'_>> = None;
    let mut budget = Budget::new(MP4);
    while !c.is_empty() && config.is_none() {
        let b = next_box(&mut c, &mut budget)?;
        if matches!(&b.kind, b"avcC" | b"vpcC") {
            config = Some(b);
        }
    }
    let (codec, profile, chroma_420) = match (&entry.kind, config) {
        (b"avc1" | b"avc3", Some(b)) if &b.kind == b"avcC" => {
            let avc = h264::avc_config(b.body.rest(), MP4)?;
            ("h264".to_string(), Some(avc.profile), avc.chroma_420)
        }
        (b"avc1" | b"avc3", _) => {
            return Err(malformed(MP4, "an H.264 sample entry has no 'avcC'"));
        }
        (b"vp09", Some(mut b)) if &b.kind == b"vpcC" => {
            full_box(&mut b.body)?;
            let profile = b.body.u8("the vpcC profile")?;
            b.body.skip(1, "the vpcC level")?;
            let chroma = (b.body.u8("the vpcC chroma subsampling")? >> 1) & 7;
            ("vp9".to_string(), Some(profile), Some(chroma <= 1))
        }
        (kind, _) => {
            let codec = match kind {
                b"vp09" => "vp9".to_string(),
                b"hvc1" | b"hev1" => "hevc".to_string(),
                b"av01" => "av1".to_string(),
                b"mp4v" => "mpeg4".to_string(),
                other => name(*other),
            };
            (codec, None, None)
        }
    };

    let fragmented = video.frag_samples > 0;
    let samples = video
        .samples
        .unwrap_or(0)
        .saturating_add(video.frag_samples);
    let syncs = match video.syncs {
        Some(s) if !fragmented => s,
        Some(s) => s.saturating_add(video.frag_syncs),
        None => video.samples.unwrap_or(0).saturating_add(video.frag_syncs),
    };
    let secs = |ticks: u64, scale: u32| {
        if scale == 0 {
            0.0
        } else {
            ticks as f64 / f64::from(scale)
        }
    };
    let ticks = video.stts_ticks.saturating_add(video.frag_ticks);
    // The movie's (presentation) duration, else the video track's, else what fragments add up to.
    let duration_secs = if state.movie_duration > 0 && state.movie_timescale > 0 {
        secs(state.movie_duration, state.movie_timescale)
    } else if video.duration > 0 && video.timescale > 0 {
        secs(video.duration, video.timescale)
    } else {
        secs(ticks, video.timescale)
    };
    let frames = count_u32(samples);
    let fps = match video.stts_delta {
        Some(d) if d > 0 && !video.stts_mixed && !fragmented && video.timescale > 0 => {
            f64::from(video.timescale) / f64::from(d)
        }
        _ if ticks > 0 => rate(frames, secs(ticks, video.timescale)),
        _ => rate(frames, duration_secs),
    };
    Ok(MediaInfo {
        container: Container::Mp4,
        codec,
        profile,
        chroma_420,
        width,
        height,
        frames,
        keyframes: count_u32(syncs),
        duration_secs,
        fps,
        audio_tracks: count_u32(count(b"soun")),
        video_tracks: count_u32(count(b"vide")),
        alpha: false,
        fast_start: Some(mdat_at.is_none_or(|mdat| moov_at < mdat)),
        loops: None,
        bytes,
    })
}

#[cfg(test)]
mod tests;
