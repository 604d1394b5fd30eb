//! The pure-Rust media reader against small files ffmpeg made (see
//! tests/fixtures/media/README.txt), cross-checked with ffprobe where it is installed, and
//! against hostile input: truncations, corruptions, random bytes, huge claimed sizes and deep
//! nesting must give `MediaError::Malformed` or a valid reading, never a panic, and quickly.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::ffprobe;
use loopsmith_engine::media::MediaError;
use loopsmith_engine::media::inspect::{Container, MediaInfo, inspect};
use proptest::prelude::*;

const FIXTURES: [&str; 12] = [
    "vp9_yuv420p.webm",
    "vp9_alpha.webm",
    "vp9_yuv444p.webm",
    "vp8.webm",
    "vp9_opus.webm",
    "vp9_live.webm",
    "h264_high_faststart.mp4",
    "h264_baseline.mp4",
    "h264_high444.mp4",
    "h264_fragmented.mp4",
    "anim.apng",
    "anim.gif",
];

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/media")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The reading every fixture shares; each test overrides what differs.
fn video(container: Container, codec: &str, bytes: usize) -> MediaInfo {
    MediaInfo {
        container,
        codec: codec.to_string(),
        profile: Some(0),
        chroma_420: Some(true),
        width: 64,
        height: 64,
        frames: 10,
        keyframes: 1,
        duration_secs: 1.0,
        fps: 10.0,
        audio_tracks: 0,
        video_tracks: 1,
        alpha: false,
        fast_start: None,
        loops: None,
        bytes,
    }
}

/// Compares every field, durations and rates within a millisecond's worth.
fn assert_reads(name: &str, expected: &MediaInfo) {
    let info = inspect(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6 * b.abs().max(1.0) + 1e-9;
    assert!(
        close(info.duration_secs, expected.duration_secs),
        "{name}: duration {} ≠ {}",
        info.duration_secs,
        expected.duration_secs
    );
    assert!(
        close(info.fps, expected.fps),
        "{name}: fps {} ≠ {}",
        info.fps,
        expected.fps
    );
    let exact = MediaInfo {
        duration_secs: expected.duration_secs,
        fps: expected.fps,
        ..info
    };
    assert_eq!(&exact, expected, "{name}");
}

#[test]
fn vp9_profile_0() {
    let expected = video(Container::WebM, "vp9", 6517);
    assert_reads("vp9_yuv420p.webm", &expected);
}

#[test]
fn vp9_with_alpha_in_block_groups() {
    let expected = MediaInfo {
        alpha: true,
        ..video(Container::WebM, "vp9", 6807)
    };
    assert_reads("vp9_alpha.webm", &expected);
}

#[test]
fn vp9_profile_1_is_not_420() {
    let expected = MediaInfo {
        profile: Some(1),
        chroma_420: Some(false),
        ..video(Container::WebM, "vp9", 8069)
    };
    assert_reads("vp9_yuv444p.webm", &expected);
}

#[test]
fn vp8() {
    assert_reads("vp8.webm", &video(Container::WebM, "vp8", 9863));
}

#[test]
fn webm_with_an_audio_track() {
    // The Segment Duration covers the Opus track too (1.007 s); the frame rate comes from the
    // video track's DefaultDuration.
    let expected = MediaInfo {
        audio_tracks: 1,
        duration_secs: 1.007,
        ..video(Container::WebM, "vp9", 6763)
    };
    assert_reads("vp9_opus.webm", &expected);
}

#[test]
fn live_webm_without_duration() {
    // Unknown-size Segment, no Duration, no Cues: the duration is the last block's time plus
    // DefaultDuration.
    assert_reads("vp9_live.webm", &video(Container::WebM, "vp9", 6446));
}

#[test]
fn live_webm_with_an_unknown_size_cluster() {
    let mut bytes = fixture("vp9_live.webm");
    let at = bytes
        .windows(4)
        .position(|w| w == [0x1F, 0x43, 0xB6, 0x75])
        .expect("a Cluster");
    // Rewrite the Cluster's size as "unknown" in the same width, as live muxers write it.
    let first = bytes[at + 4];
    let len = first.leading_zeros() as usize + 1;
    bytes[at + 4] = first | (0xFF >> len);
    for b in &mut bytes[at + 5..at + 4 + len] {
        *b = 0xFF;
    }
    let info = inspect(&bytes).expect("reads");
    assert_eq!((info.frames, info.keyframes), (10, 1));
    assert_eq!(info.duration_secs, 1.0);
    // Another Cluster after an unknown-size one ends it; its blocks count too.
    let cluster = &bytes[at..];
    let mut doubled = bytes[..at].to_vec();
    doubled.extend_from_slice(cluster);
    doubled.extend_from_slice(cluster);
    let info = inspect(&doubled).expect("reads");
    assert_eq!((info.frames, info.keyframes), (20, 2));
}

#[test]
fn h264_high_fast_start() {
    let expected = MediaInfo {
        profile: Some(100),
        width: 128,
        height: 72,
        frames: 12,
        fps: 12.0,
        fast_start: Some(true),
        ..video(Container::Mp4, "h264", 4268)
    };
    assert_reads("h264_high_faststart.mp4", &expected);
}

#[test]
fn h264_baseline_not_fast_start() {
    let expected = MediaInfo {
        profile: Some(66),
        width: 128,
        height: 72,
        frames: 12,
        fps: 12.0,
        fast_start: Some(false),
        ..video(Container::Mp4, "h264", 4382)
    };
    assert_reads("h264_baseline.mp4", &expected);
}

#[test]
fn h264_high_444_reads_chroma_from_the_sps() {
    let expected = MediaInfo {
        profile: Some(244),
        chroma_420: Some(false),
        width: 64,
        height: 48,
        frames: 8,
        fps: 8.0,
        fast_start: Some(true),
        ..video(Container::Mp4, "h264", 2172)
    };
    assert_reads("h264_high444.mp4", &expected);
}

#[test]
fn fragmented_mp4_counts_samples_in_fragments() {
    let expected = MediaInfo {
        profile: Some(77),
        width: 128,
        height: 72,
        frames: 12,
        keyframes: 3,
        fps: 12.0,
        fast_start: Some(true),
        ..video(Container::Mp4, "h264", 5935)
    };
    assert_reads("h264_fragmented.mp4", &expected);
}

#[test]
fn apng() {
    let expected = MediaInfo {
        profile: None,
        chroma_420: None,
        width: 32,
        height: 32,
        frames: 8,
        keyframes: 8,
        duration_secs: 0.8,
        fps: 10.0,
        alpha: true,
        loops: Some(3),
        ..video(Container::Png, "apng", 940)
    };
    assert_reads("anim.apng", &expected);
}

#[test]
fn gif_with_transparency_and_a_loop_count() {
    let expected = MediaInfo {
        profile: None,
        chroma_420: None,
        width: 32,
        height: 32,
        frames: 8,
        keyframes: 8,
        duration_secs: 0.8,
        fps: 10.0,
        alpha: true,
        loops: Some(2),
        ..video(Container::Gif, "gif", 1007)
    };
    assert_reads("anim.gif", &expected);
}

#[test]
fn still_png_made_by_the_png_crate() {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, 3, 2);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("header");
        writer.write_image_data(&[7; 18]).expect("data");
    }
    let info = inspect(&bytes).expect("reads");
    assert_eq!(
        (info.container, info.codec.as_str(), info.width, info.height),
        (Container::Png, "png", 3, 2)
    );
    assert_eq!((info.frames, info.loops, info.alpha), (1, None, false));
    // A CRC error is caught.
    let mut bad = bytes.clone();
    bad[20] ^= 1; // inside IHDR's width
    let err = inspect(&bad).unwrap_err().to_string();
    assert!(err.contains("CRC"), "{err}");
}

#[test]
fn gif_made_by_the_gif_crate_without_a_loop_extension() {
    let mut bytes = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut bytes, 4, 4, &[0, 0, 0, 255, 255, 255]).expect("encoder");
        for delay in [5, 7, 9] {
            let mut frame = gif::Frame::from_indexed_pixels(4, 4, vec![1; 16], None);
            frame.delay = delay;
            encoder.write_frame(&frame).expect("frame");
        }
    }
    let info = inspect(&bytes).expect("reads");
    assert_eq!((info.frames, info.loops, info.alpha), (3, None, false));
    assert!((info.duration_secs - 0.21).abs() < 1e-9);
}

/// ffprobe's name for an H.264 `profile_idc`.
fn h264_profile_names(idc: u8) -> &'static [&'static str] {
    match idc {
        66 => &["Baseline", "Constrained Baseline"],
        77 => &["Main"],
        100 => &["High"],
        244 => &["High 4:4:4 Predictive"],
        _ => &[],
    }
}

#[test]
fn agrees_with_ffprobe() {
    if !ffprobe::available() {
        eprintln!("ffprobe is not installed; skipping the cross-check");
        return;
    }
    for name in FIXTURES {
        let info = inspect(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let probe = ffprobe::probe(&path(name)).expect("ffprobe is available");
        assert_eq!(info.codec, probe.codec, "{name}: codec");
        assert_eq!(
            (info.width, info.height),
            (probe.width, probe.height),
            "{name}: size"
        );
        assert_eq!(Some(info.frames), probe.frames, "{name}: frames");
        assert_eq!(
            info.video_tracks, probe.video_streams,
            "{name}: video streams"
        );
        assert_eq!(
            info.audio_tracks, probe.audio_streams,
            "{name}: audio streams"
        );
        // ffprobe gives no duration for APNG.
        if let Some(d) = probe.duration_secs {
            assert!(
                (info.duration_secs - d).abs() < 0.002,
                "{name}: duration {} vs {d}",
                info.duration_secs
            );
        }
        if let Some(fps) = probe.fps {
            assert!(
                (info.fps - fps).abs() < 0.01,
                "{name}: fps {} vs {fps}",
                info.fps
            );
        }
        match (info.codec.as_str(), info.profile) {
            ("vp9", Some(p)) => {
                assert_eq!(
                    probe.profile,
                    Some(format!("Profile {p}")),
                    "{name}: profile"
                );
            }
            ("vp8", Some(p)) => assert_eq!(probe.profile, Some(p.to_string()), "{name}: profile"),
            ("h264", Some(p)) => {
                let named = probe.profile.clone().unwrap_or_default();
                assert!(
                    h264_profile_names(p).contains(&named.as_str()),
                    "{name}: profile {p} vs {named}"
                );
            }
            _ => assert_eq!(info.profile, None, "{name}: profile"),
        }
        if let (Some(is_420), Some(pix_fmt)) = (info.chroma_420, &probe.pix_fmt) {
            assert_eq!(
                is_420,
                pix_fmt.contains("420"),
                "{name}: chroma vs {pix_fmt}"
            );
        }
    }
}

/// Reads `bytes`, which must give a valid reading or `Malformed`, never a panic, quickly.
fn survives(bytes: &[u8]) -> Result<MediaInfo, String> {
    let started = Instant::now();
    let result = inspect(bytes);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "{} bytes took {took:?}",
        bytes.len()
    );
    match result {
        Ok(info) => Ok(info),
        Err(MediaError::Malformed { what, message }) => Err(format!("{what}: {message}")),
        Err(other) => panic!("not a Malformed error: {other:?}"),
    }
}

#[test]
fn empty_input_is_malformed() {
    assert!(survives(&[]).is_err());
}

#[test]
fn every_truncation_is_refused() {
    for name in FIXTURES {
        let bytes = fixture(name);
        for len in 0..bytes.len() {
            let result = survives(&bytes[..len]);
            // A live WebM (unknown-size Segment) may end after any element and a fragmented
            // MP4 after any fragment; everything else states its own length, so a cut is
            // always noticed.
            if name != "vp9_live.webm" && name != "h264_fragmented.mp4" {
                assert!(
                    result.is_err(),
                    "{name} cut to {len} bytes read as {result:?}"
                );
            }
        }
    }
}

#[test]
fn every_single_byte_corruption_survives() {
    for name in FIXTURES {
        let bytes = fixture(name);
        let mut copy = bytes.clone();
        for i in 0..bytes.len() {
            for flip in [0xFF, 0x80, 0x01] {
                copy[i] = bytes[i] ^ flip;
                let _ = survives(&copy);
            }
            copy[i] = bytes[i];
        }
    }
}

#[test]
fn huge_claimed_sizes_are_refused() {
    // An EBML header claiming nearly 2^56 bytes.
    let ebml = [
        0x1A, 0x45, 0xDF, 0xA3, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0x42,
    ];
    let err = survives(&ebml).unwrap_err();
    assert!(
        err.contains("claims 72057594037927934 bytes but only 1 remain"),
        "{err}"
    );
    // A Segment claiming 9,000,000 bytes.
    let mut webm = fixture("vp9_yuv420p.webm");
    let at = webm
        .windows(4)
        .position(|w| w == [0x18, 0x53, 0x80, 0x67])
        .expect("Segment");
    webm[at + 4..at + 12].copy_from_slice(&[0x01, 0, 0, 0, 0, 0x89, 0x54, 0x40]);
    let err = survives(&webm).unwrap_err();
    assert!(err.contains("claims 9000000 bytes"), "{err}");
    // MP4: a 32-bit size and a 64-bit largesize far beyond the file.
    let mut mp4 = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    mp4.extend_from_slice(b"\xFF\xFF\xFF\xF0moov");
    assert!(
        survives(&mp4)
            .unwrap_err()
            .contains("claims 4294967280 bytes")
    );
    let mut mp4 = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    mp4.extend_from_slice(b"\0\0\0\x01moov\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF");
    assert!(
        survives(&mp4)
            .unwrap_err()
            .contains("claims 18446744073709551615 bytes")
    );
    // An stts claiming four billion entries.
    let mut stts = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    let stts_box = b"\0\0\0\x10stts\0\0\0\0\xFF\xFF\xFF\xFF";
    let nest = |kind: &[u8; 4], inner: &[u8]| {
        let mut b = ((inner.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(inner);
        b
    };
    stts.extend(nest(
        b"moov",
        &nest(
            b"trak",
            &nest(b"mdia", &nest(b"minf", &nest(b"stbl", stts_box))),
        ),
    ));
    let err = survives(&stts).unwrap_err();
    assert!(err.contains("'stts' claims 4294967295 entries"), "{err}");
    // PNG: a chunk claiming 2^31 - 1 bytes.
    let mut png = b"\x89PNG\r\n\x1a\n\x7F\xFF\xFF\xFFIHDR".to_vec();
    png.extend_from_slice(&[0; 16]);
    assert!(
        survives(&png)
            .unwrap_err()
            .contains("claims 2147483647 bytes")
    );
    // GIF: a sub-block claiming more than remains.
    let gif = b"GIF89a\x01\0\x01\0\0\0\0\x2C\0\0\0\0\x01\0\x01\0\0\x02\xFF\x01";
    assert!(
        survives(gif)
            .unwrap_err()
            .contains("a data sub-block needs 255 bytes")
    );
}

#[test]
fn deep_nesting_is_refused_or_skipped_quickly() {
    // MP4: 100,000 nested 'mdia' boxes inside a trak.
    let depth = 100_000usize;
    let mut inner: Vec<u8> = Vec::new();
    let mut sizes = Vec::with_capacity(depth);
    let mut size = 0u32;
    for _ in 0..depth {
        size += 8;
        sizes.push(size);
    }
    let mut mp4 = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
    mp4.extend_from_slice(&(size + 16).to_be_bytes());
    mp4.extend_from_slice(b"moov");
    mp4.extend_from_slice(&(size + 8).to_be_bytes());
    mp4.extend_from_slice(b"trak");
    for s in sizes.iter().rev() {
        inner.extend_from_slice(&s.to_be_bytes());
        inner.extend_from_slice(b"mdia");
    }
    mp4.extend_from_slice(&inner);
    let err = survives(&mp4).unwrap_err();
    assert!(err.contains("nest deeper"), "{err}");

    // WebM: 100,000 Clusters nested in one another, and as many unknown-size ones in a row.
    let mut webm = fixture("vp9_live.webm");
    let at = webm
        .windows(4)
        .position(|w| w == [0x1F, 0x43, 0xB6, 0x75])
        .expect("a Cluster");
    webm.truncate(at);
    let mut nested = Vec::new();
    for i in 0..depth {
        let body = (depth - 1 - i) as u64 * 12;
        nested.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75]);
        nested.extend_from_slice(&(body | (1 << 56)).to_be_bytes());
    }
    let mut deep = webm.clone();
    deep.extend_from_slice(&nested);
    let info = survives(&deep).expect("empty clusters are valid");
    assert_eq!(info.frames, 0);
    let mut flat = webm;
    for _ in 0..depth {
        flat.extend_from_slice(&[0x1F, 0x43, 0xB6, 0x75, 0xFF]);
    }
    assert_eq!(survives(&flat).expect("valid").frames, 0);
}

#[test]
fn unknown_sizes_are_only_allowed_for_segment_and_cluster() {
    let mut webm = fixture("vp9_live.webm");
    // The last occurrence: the first is the SeekHead's reference to Tracks.
    let at = webm
        .windows(4)
        .rposition(|w| w == [0x16, 0x54, 0xAE, 0x6B])
        .expect("Tracks");
    webm[at + 4] = 0xFF;
    let err = survives(&webm).unwrap_err();
    assert!(
        err.contains("0x1654AE6B") && err.contains("unknown size"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = survives(&bytes);
    }

    #[test]
    fn random_bytes_after_each_magic_never_panic(
        magic in 0usize..5,
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let prefix: &[u8] = match magic {
            0 => &[0x1A, 0x45, 0xDF, 0xA3],
            1 => b"\0\0\0\x14ftypisom",
            2 => b"\x89PNG\r\n\x1a\n",
            3 => b"GIF89a",
            _ => b"GIF87a",
        };
        let mut bytes = prefix.to_vec();
        bytes.extend(tail);
        let _ = survives(&bytes);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0usize..FIXTURES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = fixture(FIXTURES[which]);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1).max(bytes.len() / 2);
        bytes.truncate(keep);
        let _ = survives(&bytes);
    }
}
