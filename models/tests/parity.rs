//! The Rust pipeline against diffusers: the committed tiny AnimateDiff bundle and the frames
//! diffusers made from the same token ids and initial latents (models/export/make_parity_fixture.py),
//! for DDIM and Euler-trailing, with and without classifier-free guidance.

mod common;

use std::path::{Path, PathBuf};

use loopsmith_models::bundle::Bundle;
use loopsmith_models::pipeline::{Generate, Pipeline};
use loopsmith_models::runtime::Runtime;
use loopsmith_models::scheduler::SchedulerConfig;
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-animatediff")
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn runtime() -> Runtime {
    common::cpu_runtime(Some(1))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn the_pipeline_matches_diffusers_for_ddim_and_euler() {
    let dir = fixture();
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference/index.json")).expect("index"),
    )
    .expect("json");
    let reference = dir.join("reference");
    let bundle = Bundle::open(&dir).expect("the fixture is a valid bundle");
    let pipeline = Pipeline::load(&bundle, runtime()).expect("loads");

    let prompts = index["prompts"].as_array().expect("prompts");
    for prompt in prompts {
        let text = prompt["text"].as_str().expect("text");
        let ids: Vec<i64> = prompt["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_i64().expect("id"))
            .collect();
        assert_eq!(
            pipeline.tokenize(text).expect("tokenizes"),
            ids,
            "token ids for {text:?}"
        );
    }

    let latents: Vec<Vec<f32>> = index["latents"]
        .as_array()
        .expect("latents")
        .iter()
        .map(|l| read_f32(&reference.join(l["file"].as_str().expect("file"))))
        .collect();
    let mut worst: f32 = 0.0;
    let mut kinds = std::collections::BTreeSet::new();
    for case in index["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let scheduler: SchedulerConfig =
            serde_json::from_value(case["scheduler"].clone()).expect("scheduler config");
        kinds.insert(
            case["scheduler"]["kind"]
                .as_str()
                .expect("kind")
                .to_string(),
        );
        // Without guidance the negative prompt is never encoded, and the case names none.
        let text = |i: &str| {
            case[i].as_u64().map_or(String::new(), |i| {
                prompts[i as usize]["text"]
                    .as_str()
                    .expect("text")
                    .to_string()
            })
        };
        let request = Generate {
            prompt: text("prompt_index"),
            negative_prompt: text("negative_prompt_index"),
            steps: Some(case["steps"].as_u64().expect("steps") as usize),
            guidance: Some(case["guidance"].as_f64().expect("guidance") as f32),
            seed: 0,
            scheduler: Some(scheduler),
            latents: Some(
                latents[case["latents_index"].as_u64().expect("latents") as usize].clone(),
            ),
        };
        let generated = pipeline
            .generate(&request, |_, _| {}, || false)
            .expect("generates");
        let expected =
            read_f32(&reference.join(case["frames"]["file"].as_str().expect("frames file")));
        let ours: Vec<f32> = generated.frames.concat();
        let err = max_abs_diff(&ours, &expected);
        eprintln!("{name}: max abs error {err:.2e}");
        assert!(err <= 1e-3, "{name}: max abs error {err} > 1e-3");
        worst = worst.max(err);
    }
    assert!(
        kinds.contains("ddim") && kinds.contains("euler_discrete"),
        "{kinds:?}"
    );
    eprintln!("worst max abs error over every case: {worst:.2e}");
}

#[test]
fn progress_is_reported_per_step_and_cancellation_stops_between_steps() {
    let bundle = Bundle::open(&fixture()).expect("bundle");
    let pipeline = Pipeline::load(&bundle, runtime()).expect("loads");
    let request = Generate {
        prompt: "a red ball".into(),
        negative_prompt: String::new(),
        steps: Some(4),
        guidance: Some(1.0),
        seed: 7,
        scheduler: None,
        latents: None,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let first = pipeline
        .generate(
            &request,
            move |done, total| tx.send((done, total)).expect("send"),
            || false,
        )
        .expect("generates");
    let ticks: Vec<_> = rx.try_iter().collect();
    assert_eq!(ticks, vec![(1, 4), (2, 4), (3, 4), (4, 4)]);
    assert_eq!(
        (first.width, first.height, first.frames.len()),
        (16, 16, 16)
    );
    assert_eq!(first.timings.denoiser.len(), 4);
    // The same seed renders the same frames.
    let again = pipeline
        .generate(&request, |_, _| {}, || false)
        .expect("generates");
    assert_eq!(again.frames, first.frames);

    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let err = pipeline
        .generate(
            &request,
            |_, _| {},
            move || seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 2,
        )
        .expect_err("cancelled");
    assert!(
        matches!(err, loopsmith_models::ModelError::Cancelled),
        "{err}"
    );
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "checked before each step, stopped at the third"
    );
}
