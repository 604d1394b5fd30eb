//! The local pipeline's own overhead, and its speed next to the same bundle driven from Python.
//!
//! - Per-stage breakdown of the Rust pipeline (text encoder, each denoiser call, scheduler,
//!   VAE decode) and its overhead: total wall time minus the time inside session runs.
//! - The same bundle, prompt count, steps and guidance through `models/export/reference_loop.py`
//!   (onnxruntime + numpy, the usual way such models are driven), in the same run.
//!
//! Bundle: the committed tiny AnimateDiff fixture (CPU; the only model this machine can hold).
//! Each run uses a new prompt so the text-embedding cache does not flatter us; Python encodes
//! every run too. Needs ORT_DYLIB_PATH (set by `cargo xtask test`/`setup`), and python3 with
//! numpy, onnxruntime and tokenizers for the comparison.
//! Run: `ORT_DYLIB_PATH=$PWD/.loopsmith/onnxruntime/libonnxruntime.so.1.31.1 cargo bench -p loopsmith-models --bench pipeline`

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use loopsmith_models::bundle::Bundle;
use loopsmith_models::pipeline::{Generate, Pipeline};
use loopsmith_models::runtime::{self, Device, DiscoveryOptions, Runtime};

const RUNS: usize = 30;
const WARMUP: usize = 3;
const STEPS: usize = 4;
/// One intra-op thread on both sides: on a graph this small, a second spinning thread costs
/// more than it gives, and the comparison must use the same ONNX Runtime settings.
const THREADS: usize = 1;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bundle_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-animatediff");
    let discovery = runtime::discover(&DiscoveryOptions::standard(
        None,
        runtime::default_project_roots(),
    ));
    let library = discovery
        .library()
        .unwrap_or_else(|e| panic!("{e}\n{discovery}"));
    let runtime = Runtime::new(&library, Device::Cpu, Some(THREADS)).expect("runtime");
    let bundle = Bundle::open(&bundle_dir).expect("bundle");
    let pipeline = Pipeline::load(&bundle, runtime).expect("pipeline");
    let guidance = bundle.manifest().defaults.guidance;

    let request = |i: usize| Generate {
        prompt: format!("a red ball bouncing {i}"),
        negative_prompt: String::new(),
        steps: Some(STEPS),
        guidance: Some(guidance),
        seed: i as u32,
        scheduler: None,
        latents: None,
    };
    for i in 0..WARMUP {
        pipeline
            .generate(&request(10_000 + i), |_, _| {}, || false)
            .expect("warm-up");
    }
    let runs: Vec<_> = (0..RUNS)
        .map(|i| {
            pipeline
                .generate(&request(i), |_, _| {}, || false)
                .expect("generates")
                .timings
        })
        .collect();
    let total = median(runs.iter().map(|t| t.total).collect());
    let sessions = median(runs.iter().map(|t| t.session_time()).collect());
    let overhead: Vec<f64> = runs
        .iter()
        .map(|t| (t.total.as_secs_f64() - t.session_time().as_secs_f64()) / t.total.as_secs_f64())
        .collect();
    let mut sorted = overhead.clone();
    sorted.sort_by(f64::total_cmp);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "tiny AnimateDiff fixture, CPU, {THREADS} intra-op thread, {STEPS} steps, guidance {guidance}, median of {RUNS} runs"
    );
    println!(
        "  text encoder      {:>8.3} ms",
        ms(median(runs.iter().map(|t| t.text_encoder).collect()))
    );
    for step in 0..STEPS {
        println!(
            "  denoiser call {step}   {:>8.3} ms",
            ms(median(runs.iter().map(|t| t.denoiser[step]).collect()))
        );
    }
    println!(
        "  scheduler (all)   {:>8.3} ms",
        ms(median(runs.iter().map(|t| t.scheduler).collect()))
    );
    println!(
        "  VAE decode        {:>8.3} ms",
        ms(median(runs.iter().map(|t| t.decode).collect()))
    );
    println!(
        "  total             {:>8.3} ms  (sessions {:.3} ms)",
        ms(total),
        ms(sessions)
    );
    println!(
        "  overhead beyond session runs: median {:.1} %",
        100.0 * sorted[sorted.len() / 2]
    );

    let python = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("export/reference_loop.py"))
        .args(["--bundle"])
        .arg(&bundle_dir)
        .args([
            "--prompt",
            "a red ball bouncing",
            "--steps",
            &STEPS.to_string(),
        ])
        .args([
            "--runs",
            &RUNS.to_string(),
            "--warmup",
            &WARMUP.to_string(),
            "--provider",
            "cpu",
        ])
        .args(["--threads", &THREADS.to_string()])
        .output();
    match python {
        Ok(out) if out.status.success() => {
            let report: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("reference_loop prints JSON");
            let py_total = report["median"]["total"].as_f64().expect("median total");
            println!(
                "Python reference loop (onnxruntime + numpy): total {:.3} ms",
                py_total * 1000.0
            );
            println!(
                "Rust is {:.2}x the speed of the Python loop",
                py_total / total.as_secs_f64()
            );
        }
        Ok(out) => println!(
            "Python reference loop not run: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("it failed")
        ),
        Err(e) => println!("Python reference loop not run: {e}"),
    }
}
