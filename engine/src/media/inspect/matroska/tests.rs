//! Matroska reader tests on hand-built EBML.

use super::*;

/// An element with an 8-byte size, as ffmpeg writes many of them.
fn el(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = id
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    out.extend_from_slice(&(body.len() as u64 | (1 << 56)).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn uint(id: u32, v: u64) -> Vec<u8> {
    el(id, &v.to_be_bytes())
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn file(doc_type: &str, segment: &[Vec<u8>]) -> Vec<u8> {
    cat(&[
        el(EBML, &el(DOC_TYPE, doc_type.as_bytes())),
        el(SEGMENT, &cat(segment)),
    ])
}

fn track(number: u64, kind: u64, codec: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut parts = vec![
        uint(TRACK_NUMBER, number),
        uint(TRACK_TYPE, kind),
        el(CODEC_ID, codec.as_bytes()),
    ];
    parts.extend_from_slice(extra);
    el(TRACK_ENTRY, &cat(&parts))
}

fn simple_block(track: u8, time: i16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![0x80 | track];
    body.extend_from_slice(&time.to_be_bytes());
    body.push(flags);
    body.extend_from_slice(payload);
    el(SIMPLE_BLOCK, &body)
}

const VP8_KEY: [u8; 10] = [0x10, 0x00, 0x00, 0x9D, 0x01, 0x2A, 16, 0, 8, 0];

fn video_track(extra: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![el(
        VIDEO,
        &cat(&[
            uint(PIXEL_WIDTH, 16),
            uint(PIXEL_HEIGHT, 8),
            uint(ALPHA_MODE, 1),
        ]),
    )];
    v.extend_from_slice(extra);
    track(1, 1, "V_VP8", &v)
}

fn error(bytes: &[u8]) -> String {
    match inspect(bytes) {
        Err(MediaError::Malformed { what, message }) => {
            assert_eq!(what, WEBM);
            message
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn reads_vints() {
    let read = |bytes: &[u8]| read_vint(&mut Cursor::new(bytes, WEBM), "a size");
    assert_eq!(read(&[0x81]).unwrap(), (1, false));
    assert_eq!(read(&[0xFF]).unwrap(), (127, true));
    assert_eq!(read(&[0x40, 0x02]).unwrap(), (2, false));
    let (_, unknown) = read(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap();
    assert!(unknown);
    assert_eq!(read(&[0x01, 0, 0, 0, 0, 0, 0, 5]).unwrap(), (5, false));
    assert!(read(&[0x00]).is_err());
    assert!(read(&[0x40]).is_err());
    let mut c = Cursor::new(&[0x1A, 0x45, 0xDF, 0xA3], WEBM);
    assert_eq!(read_id(&mut c).unwrap(), EBML);
    assert!(read_id(&mut Cursor::new(&[0x08, 1, 2, 3, 4], WEBM)).is_err());
}

#[test]
fn reads_simple_blocks_laces_and_block_groups() {
    let laced = {
        // Xiph lacing of three frames: count byte 2, then two sizes.
        let mut p = vec![2, 1, 1];
        p.extend_from_slice(&[0xAA; 3]);
        p
    };
    let bytes = file(
        "webm",
        &[
            el(
                INFO,
                &cat(&[
                    uint(TIMECODE_SCALE, 1_000_000),
                    el(DURATION, &500f32.to_be_bytes()),
                ]),
            ),
            el(
                TRACKS,
                &cat(&[video_track(&[]), track(2, 2, "A_OPUS", &[])]),
            ),
            el(
                CLUSTER,
                &cat(&[
                    uint(TIMECODE, 0),
                    simple_block(1, 0, 0x80, &VP8_KEY),
                    simple_block(2, 0, 0x80, &[1, 2, 3]),
                    simple_block(1, 100, 0x02, &laced),
                    el(
                        BLOCK_GROUP,
                        &cat(&[
                            el(BLOCK, &[0x81, 0, 200, 0, 0x31, 0, 0]),
                            uint(REFERENCE_BLOCK, 1),
                        ]),
                    ),
                    el(BLOCK_GROUP, &el(BLOCK, &[0x81, 1, 44, 0, 0x10, 0, 0])),
                ]),
            ),
        ],
    );
    let info = inspect(&bytes).unwrap();
    assert_eq!(info.codec, "vp8");
    assert_eq!((info.width, info.height, info.alpha), (16, 8, true));
    assert_eq!((info.frames, info.keyframes), (6, 2));
    assert_eq!((info.video_tracks, info.audio_tracks), (1, 1));
    assert_eq!((info.profile, info.chroma_420), (Some(0), Some(true)));
    assert_eq!(info.duration_secs, 0.5);
    assert_eq!(info.fps, 12.0);
}

#[test]
fn falls_back_to_block_times_and_frame_sizes() {
    // No Duration, no DefaultDuration, no PixelWidth/Height: the size comes from the key
    // frame and the duration from the last block plus the average interval.
    let v = el(VIDEO, &[]);
    let bytes = file(
        "matroska",
        &[
            el(TRACKS, &track(1, 1, "V_VP8", &[v])),
            el(
                CLUSTER,
                &cat(&[
                    uint(TIMECODE, 1000),
                    simple_block(1, 0, 0x80, &VP8_KEY),
                    simple_block(1, 40, 0, &[0x31, 0, 0]),
                    simple_block(1, 80, 0, &[0x31, 0, 0]),
                ]),
            ),
        ],
    );
    let info = inspect(&bytes).unwrap();
    assert_eq!((info.width, info.height), (16, 8));
    assert!(
        (info.duration_secs - 1.12).abs() < 1e-9,
        "{}",
        info.duration_secs
    );
    assert!((info.fps - 3.0 / 1.12).abs() < 1e-9);
}

#[test]
fn reads_h264_codec_private_and_names_unknown_codecs() {
    let avcc = [
        1,
        100,
        0,
        30,
        0xFF,
        0xE1,
        0,
        5,
        0x67,
        100,
        0,
        30,
        0b1001_0000,
    ];
    let bytes = file(
        "matroska",
        &[el(
            TRACKS,
            &track(
                1,
                1,
                "V_MPEG4/ISO/AVC",
                &[
                    el(CODEC_PRIVATE, &avcc),
                    el(VIDEO, &cat(&[uint(PIXEL_WIDTH, 2), uint(PIXEL_HEIGHT, 2)])),
                ],
            ),
        )],
    );
    let info = inspect(&bytes).unwrap();
    assert_eq!(
        (info.codec.as_str(), info.profile, info.chroma_420),
        ("h264", Some(100), Some(false))
    );
    assert_eq!(info.frames, 0);
    let bytes = file(
        "webm",
        &[el(
            TRACKS,
            &track(
                1,
                1,
                "V_THEORA",
                &[el(
                    VIDEO,
                    &cat(&[uint(PIXEL_WIDTH, 2), uint(PIXEL_HEIGHT, 2)]),
                )],
            ),
        )],
    );
    let info = inspect(&bytes).unwrap();
    assert_eq!(
        (info.codec.as_str(), info.profile, info.chroma_420),
        ("V_THEORA", None, None)
    );
}

#[test]
fn refuses_what_does_not_add_up() {
    let tracks = el(TRACKS, &video_track(&[]));
    assert!(error(&file("mkv", &[])).contains("DocType \"mkv\""));
    assert!(error(&el(EBML, &el(DOC_TYPE, b"webm"))).contains("no Segment"));
    assert!(error(&file("webm", &[])).contains("no video track"));
    let early = el(CLUSTER, &simple_block(1, 0, 0x80, &VP8_KEY));
    assert!(
        error(&file("webm", &[tracks.clone(), early])).contains("before its Cluster's Timecode")
    );
    let empty_group = el(CLUSTER, &cat(&[uint(TIMECODE, 0), el(BLOCK_GROUP, &[])]));
    assert!(error(&file("webm", &[tracks.clone(), empty_group])).contains("no Block"));
    let twice = el(TRACKS, &cat(&[video_track(&[]), video_track(&[])]));
    assert!(error(&file("webm", &[twice])).contains("TrackNumber 1"));
    let zero = el(TRACKS, &track(0, 1, "V_VP8", &[]));
    assert!(error(&file("webm", &[zero])).contains("TrackNumber"));
    let nan = el(INFO, &el(DURATION, &f64::NAN.to_be_bytes()));
    assert!(error(&file("webm", &[nan, tracks.clone()])).contains("NaN"));
    let odd = el(INFO, &el(DURATION, &[0; 3]));
    assert!(error(&file("webm", &[odd, tracks.clone()])).contains("3 bytes"));
    let wide = el(INFO, &el(TIMECODE_SCALE, &[1; 9]));
    assert!(error(&file("webm", &[wide, tracks.clone()])).contains("9 bytes"));
    let no_size = el(TRACKS, &track(1, 1, "V_VP8", &[el(VIDEO, &[])]));
    assert!(error(&file("webm", &[no_size])).contains("no PixelWidth"));
    let many: Vec<Vec<u8>> = (1..=65).map(|n| track(n, 2, "A_OPUS", &[])).collect();
    assert!(error(&file("webm", &[el(TRACKS, &cat(&many))])).contains("more than 64"));
}
