//! The embedded model follows its prompts: every prompt in models/tiny/eval_prompts.json (40
//! colour × shape × motion labels, each in a phrasing used in training and in a word order
//! held out from it) is rendered by the shipped bundle through the Rust pipeline, at the
//! bundle's own steps and guidance, and scored by the automatic check (background colour,
//! subject colour, motion; `tiny_check`). At least `REQUIRED` (90%, the target) must
//! pass. The matrix is printed with `-- --nocapture`.

mod common;
mod tiny_check;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use loopsmith_models::bundle::Bundle;
use loopsmith_models::pipeline::{Generate, Pipeline};
use serde::Deserialize;
use tiny_check::{COLOUR_ORDER, Clip, Constants, Expected, Named, Subject, check, palette};

/// The share of prompts that must pass: issue #5's target. The committed bundle passes 76 of
/// 80 here (95.0%; the layered denoiser at step 6,667, 95 trained CPU minutes;
/// models/tiny/README.md).
const REQUIRED: f64 = 0.90;

#[derive(Deserialize)]
struct EvalSet {
    check: Constants,
    colours: BTreeMap<String, [f64; 3]>,
    prompts: Vec<EvalPrompt>,
}

#[derive(Deserialize)]
struct EvalPrompt {
    prompt: String,
    /// `canonical` (a word order used in training) or `heldout`.
    phrasing: String,
    background: Named,
    subject: Subject,
}

fn tiny_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny")
}

#[test]
fn the_embedded_model_draws_what_the_prompt_says() {
    let dir = tiny_dir();
    let set: EvalSet = serde_json::from_reader(
        File::open(dir.join("eval_prompts.json")).expect("eval_prompts.json"),
    )
    .expect("eval_prompts.json parses");
    assert!(
        set.prompts.len() >= 80,
        "the issue asks for ≥ 40 labels in two phrasings"
    );
    let bundle = Bundle::open(&dir.join("bundle"))
        .expect("the embedded bundle is committed at models/tiny/bundle");
    let pipeline = Pipeline::load(&bundle, common::cpu_runtime(None)).expect("the bundle loads");
    let pal = palette(&set.colours, &COLOUR_ORDER);

    let mut rows = Vec::new();
    let (mut passed, mut passed_heldout, mut heldout) = (0usize, 0usize, 0usize);
    let mut by_part = [0usize; 3];
    for (i, p) in set.prompts.iter().enumerate() {
        let out = pipeline
            .generate(
                &Generate {
                    prompt: p.prompt.clone(),
                    negative_prompt: String::new(),
                    steps: None,
                    guidance: None,
                    seed: i as u32,
                    scheduler: None,
                    latents: None,
                },
                |_, _| {},
                || false,
            )
            .unwrap_or_else(|e| panic!("{}: {e}", p.prompt));
        let clip = Clip::from_rgb8(out.width as usize, out.height as usize, &out.rgb8());
        let want = Expected {
            background: &p.background.name,
            subject_colour: &p.subject.colour,
            motion: &p.subject.motion,
        };
        let v = check(&clip, &want, &set.check, &pal);
        let ok = v.ok;
        let held_out = p.phrasing == "heldout";
        passed += ok as usize;
        heldout += held_out as usize;
        passed_heldout += (ok && held_out) as usize;
        by_part[0] += v.bg as usize;
        by_part[1] += v.fg as usize;
        by_part[2] += v.motion as usize;
        rows.push(format!(
            "{:<4} {:<3} {:<3} {:<3} {:<8} {:<9} {:<6} {:<10} {}{}",
            if ok { "pass" } else { "FAIL" },
            mark(v.bg),
            mark(v.fg),
            mark(v.motion),
            p.background.name,
            p.subject.colour,
            p.subject.shape,
            p.subject.motion,
            p.prompt,
            if held_out { "  (held out)" } else { "" },
        ));
    }
    let n = set.prompts.len();
    println!("ok   bg  fg  mot background subject  shape  motion     prompt");
    for row in &rows {
        println!("{row}");
    }
    println!(
        "passed {passed}/{n} ({:.1}%); held-out phrasings {passed_heldout}/{heldout}; background {}/{n}, subject colour {}/{n}, motion {}/{n}",
        100.0 * passed as f64 / n as f64,
        by_part[0],
        by_part[1],
        by_part[2],
    );
    assert!(
        passed as f64 >= REQUIRED * n as f64,
        "only {passed}/{n} prompts pass; the issue asks for ≥ {:.0}%:\n{}",
        REQUIRED * 100.0,
        rows.join("\n")
    );
}

fn mark(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}
