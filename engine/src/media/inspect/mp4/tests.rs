//! MP4 reader tests on hand-built boxes.

use super::*;

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn full(kind: &[u8; 4], version: u8, body: &[u8]) -> Vec<u8> {
    let mut b = vec![version, 0, 0, 0];
    b.extend_from_slice(body);
    bx(kind, &b)
}

fn visual_entry(kind: &[u8; 4], width: u16, height: u16, children: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 24];
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&[0u8; 50]);
    b.extend_from_slice(children);
    bx(kind, &b)
}

const AVCC: [u8; 13] = [1, 66, 0, 30, 0xFF, 0xE1, 0, 5, 0x67, 66, 0, 30, 0x80];

fn be(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// ftyp, then moov with one track of `sizes.len()` samples, then an mdat of `mdat` bytes.
fn movie(handler: &[u8; 4], entry: &[u8], sizes: &[u32], chunk: u32, mdat: usize) -> Vec<u8> {
    let mut stsz = be(&[0, sizes.len() as u32]);
    stsz.extend(be(sizes));
    let stbl = [
        full(b"stsd", 0, &[be(&[1]), entry.to_vec()].concat()),
        full(b"stsz", 0, &stsz),
        full(b"stts", 0, &be(&[1, sizes.len() as u32, 3000])),
        full(b"stco", 0, &be(&[1, chunk])),
    ]
    .concat();
    let mut mdhd = vec![0u8; 16];
    mdhd.extend(be(&[90_000]));
    mdhd.extend_from_slice(&45_000u64.to_be_bytes());
    let mdia = [
        full(b"mdhd", 1, &mdhd),
        full(b"hdlr", 0, &[be(&[0]), handler.to_vec()].concat()),
        bx(b"minf", &bx(b"stbl", &stbl)),
    ]
    .concat();
    let trak = [full(b"tkhd", 0, &be(&[0, 0, 1])), bx(b"mdia", &mdia)].concat();
    let moov = [
        full(b"mvhd", 0, &be(&[0, 0, 1000, 500])),
        bx(b"trak", &trak),
    ]
    .concat();
    [
        bx(b"ftyp", b"isom\0\0\0\0"),
        bx(b"uuid", &[7u8; 20]),
        bx(b"moov", &moov),
        bx(b"mdat", &vec![0u8; mdat]),
    ]
    .concat()
}

fn error(bytes: &[u8]) -> String {
    match inspect(bytes) {
        Err(MediaError::Malformed { what, message }) => {
            assert_eq!(what, MP4);
            message
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn reads_a_minimal_movie() {
    let entry = visual_entry(b"avc1", 320, 240, &bx(b"avcC", &AVCC));
    let bytes = movie(b"vide", &entry, &[10, 20, 30], 20, 60);
    let info = inspect(&bytes).unwrap();
    assert_eq!(
        (info.codec.as_str(), info.profile, info.chroma_420),
        ("h264", Some(66), Some(true))
    );
    assert_eq!((info.width, info.height), (320, 240));
    assert_eq!((info.frames, info.keyframes), (3, 3));
    assert_eq!((info.duration_secs, info.fps), (0.5, 30.0));
    assert_eq!(
        (info.fast_start, info.video_tracks, info.audio_tracks),
        (Some(true), 1, 0)
    );
}

#[test]
fn reads_size_zero_and_64_bit_boxes() {
    let entry = visual_entry(b"avc1", 2, 2, &bx(b"avcC", &AVCC));
    let mut bytes = movie(b"vide", &entry, &[4], 20, 0);
    bytes.truncate(bytes.len() - 8);
    // An mdat whose size 0 means "to the end of the file".
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    bytes.extend_from_slice(b"mdat");
    bytes.extend_from_slice(&[1; 4]);
    assert_eq!(inspect(&bytes).unwrap().frames, 1);
    let mut bytes = movie(b"vide", &entry, &[4], 20, 0);
    bytes.truncate(bytes.len() - 8);
    bytes.extend_from_slice(&[0, 0, 0, 1]);
    bytes.extend_from_slice(b"mdat");
    bytes.extend_from_slice(&20u64.to_be_bytes());
    bytes.extend_from_slice(&[1; 4]);
    assert_eq!(inspect(&bytes).unwrap().frames, 1);
}

#[test]
fn reads_vp9_sample_entries() {
    let vpcc = full(b"vpcC", 1, &[1, 10, (8 << 4) | (3 << 1), 2, 2, 2, 0, 0]);
    let entry = visual_entry(b"vp09", 8, 8, &vpcc);
    let info = inspect(&movie(b"vide", &entry, &[1], 20, 1)).unwrap();
    assert_eq!(
        (info.codec.as_str(), info.profile, info.chroma_420),
        ("vp9", Some(1), Some(false))
    );
    let entry = visual_entry(b"hvc1", 8, 8, &[]);
    assert_eq!(
        inspect(&movie(b"vide", &entry, &[1], 20, 1)).unwrap().codec,
        "hevc"
    );
}

#[test]
fn refuses_what_does_not_add_up() {
    let entry = visual_entry(b"avc1", 2, 2, &bx(b"avcC", &AVCC));
    assert!(
        error(&movie(b"vide", &entry, &[10, 20], 20, 29))
            .contains("describe 30 bytes but 'mdat' holds 29")
    );
    assert!(error(&movie(b"vide", &entry, &[1], 5000, 1)).contains("chunk offset (5000)"));
    assert!(error(&movie(b"soun", &entry, &[1], 20, 1)).contains("no video track"));
    let bare = visual_entry(b"avc1", 2, 2, &[]);
    assert!(error(&movie(b"vide", &bare, &[1], 20, 1)).contains("no 'avcC'"));
    let empty = visual_entry(b"avc1", 0, 2, &bx(b"avcC", &AVCC));
    assert!(error(&movie(b"vide", &empty, &[1], 20, 1)).contains("0×2"));
    assert!(error(&bx(b"ftyp", b"isom\0\0\0\0")).contains("no 'moov'"));
    let mut small = bx(b"ftyp", b"isom\0\0\0\0");
    small.extend_from_slice(&[0, 0, 0, 7]);
    small.extend_from_slice(b"free");
    assert!(error(&small).contains("size 7, smaller than its 8-byte header"));
}
