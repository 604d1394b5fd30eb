//! The Rust port of the embedded model's conditioning check reaches the same verdicts and
//! statistics as the Python original (`check_clip` in models/tiny/dataset.py) on the same
//! pixels: 120 synthetic clips, each scored against a label it matches, a label whose motion
//! differs, or another label entirely. Fixture: models/tests/fixtures/tiny-check (its script
//! says how it was made).

mod tiny_check;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use serde::Deserialize;
use tiny_check::{COLOUR_ORDER, Clip, Constants, Expected, Named, Subject, check, palette};

#[derive(Deserialize)]
struct Fixture {
    check: Constants,
    colours: BTreeMap<String, [f64; 3]>,
    clips: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    kind: String,
    label: Label,
    result: PyResult,
}

#[derive(Deserialize)]
struct Label {
    background: Named,
    subject: Subject,
}

#[derive(Deserialize)]
struct PyResult {
    bg_rgb: [f64; 3],
    bg_name: String,
    bg: bool,
    fg: bool,
    motion: bool,
    ok: bool,
    stats: Option<BTreeMap<String, f64>>,
}

const FRAMES: usize = 16;
const SIDE: usize = 32;

fn clips(dir: &Path) -> Vec<Clip> {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        File::open(dir.join("clips.png")).expect("clips.png"),
    ));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let (width, height) = (info.width as usize, info.height as usize);
    assert_eq!(width, FRAMES * SIDE);
    (0..height / SIDE)
        .map(|row| {
            let frames: Vec<Vec<u8>> = (0..FRAMES)
                .map(|f| {
                    let mut frame = Vec::with_capacity(SIDE * SIDE * 3);
                    for y in 0..SIDE {
                        let start = ((row * SIDE + y) * width + f * SIDE) * 3;
                        frame.extend_from_slice(&buf[start..start + SIDE * 3]);
                    }
                    frame
                })
                .collect();
            Clip::from_rgb8(SIDE, SIDE, &frames)
        })
        .collect()
}

#[test]
fn the_rust_check_matches_the_python_one() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-check");
    let fixture: Fixture = serde_json::from_reader(std::io::BufReader::new(
        File::open(dir.join("expected.json")).expect("expected.json"),
    ))
    .expect("parse expected.json");
    let palette = palette(&fixture.colours, &COLOUR_ORDER);
    let clips = clips(&dir);
    assert_eq!(clips.len(), fixture.clips.len());
    let mut passes = 0;
    for (clip, case) in clips.iter().zip(&fixture.clips) {
        let want = Expected {
            background: &case.label.background.name,
            subject_colour: &case.label.subject.colour,
            motion: &case.label.subject.motion,
        };
        let v = check(clip, &want, &fixture.check, &palette);
        let name = format!("{} ({})", case.id, case.kind);
        let py = &case.result;
        assert_eq!(
            (v.bg, v.fg, v.motion, v.ok),
            (py.bg, py.fg, py.motion, py.ok),
            "{name}: verdicts (bg, fg, motion, ok) differ; ours {v:?}"
        );
        assert_eq!(v.bg_name, py.bg_name, "{name}");
        for c in 0..3 {
            assert!((v.bg_rgb[c] - py.bg_rgb[c]).abs() < 1e-3, "{name}: {v:?}");
        }
        if let (Some(ours), Some(theirs)) = (&v.stats, &py.stats) {
            let pairs = [
                ("frames_present", ours.frames_present as f64),
                ("dx", ours.dx),
                ("dy", ours.dy),
                ("xrange", ours.xrange),
                ("yrange", ours.yrange),
                ("area_end", ours.area_end),
                ("area_minmax", ours.area_minmax),
                ("area_bulge", ours.area_bulge),
                ("y_up", ours.y_up),
                ("y_down", ours.y_down),
                ("sweep", ours.sweep),
                ("iou_min", ours.iou_min),
            ];
            for (key, value) in pairs {
                let want = theirs[key];
                // Python rounded its figures to 3 decimals.
                assert!(
                    (value - want).abs() <= 6e-4,
                    "{name}: {key} {value} vs {want}"
                );
            }
        }
        passes += usize::from(v.ok);
    }
    // The fixture is meant to exercise both outcomes.
    assert_eq!(passes, fixture.clips.iter().filter(|c| c.result.ok).count());
    assert!(passes > 30 && passes < 90, "{passes}");
}
