//! Model bundles: parsing errors with specific messages, missing files, hashes, verification
//! against real (tiny) graphs, info and listing.
//!
//! The verify tests load ONNX Runtime from `ORT_DYLIB_PATH` (`cargo xtask test` sets it) and
//! fail without it.

use std::fs;
use std::path::{Path, PathBuf};

use loopsmith_models::ModelError;
use loopsmith_models::bundle::{
    Bundle, Family, GraphRole, VerifyReport, human_size, list, sha256_file,
};
use loopsmith_models::runtime::{Device, Library, Runtime};
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn runtime() -> Runtime {
    let path = std::env::var_os("ORT_DYLIB_PATH").unwrap_or_else(|| {
        panic!("ORT_DYLIB_PATH must name libonnxruntime.so.1.31.x (`cargo xtask test` sets it)")
    });
    let library = Library::probe(Path::new(&path)).expect("the ORT_DYLIB_PATH library is usable");
    Runtime::new(&library, Device::Cpu, Some(1)).expect("runtime")
}

fn hash(path: &Path) -> String {
    let bytes = fs::read(path).expect("read");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const FILES: [(&str, &str); 4] = [
    ("tokenizer.json", "tokenizer.json"),
    ("text_encoder.onnx", "graphs/text_encoder.onnx"),
    ("denoiser.onnx", "graphs/denoiser.onnx"),
    ("vae_decoder.onnx", "graphs/vae_decoder.onnx"),
];

/// model.toml for the fixture graphs: max_length 8, hidden_size 4, 4 latent channels.
fn manifest_text(dir: &Path) -> String {
    let mut hashes = String::new();
    for (name, _) in FILES {
        hashes.push_str(&format!("\"{name}\" = \"{}\"\n", hash(&dir.join(name))));
    }
    format!(
        r#"format = 1
name = "tiny-test"
family = "animatediff"
licence = "Apache-2.0"
description = "Hand-made graphs with fixed weights."

[video]
width = 64
height = 64
frames = 16
fps = 8

[latent]
channels = 4
downscale = 8
scaling_factor = 0.18215

[scheduler]
kind = "euler_discrete"
num_train_timesteps = 1000
beta_schedule = "linear"

[defaults]
steps = 4
guidance = 1.0

[text]
max_length = 8
pad_id = 0
hidden_size = 4

[tensors]
text_input_ids = "input_ids"
text_output = "last_hidden_state"
denoiser_sample = "sample"
denoiser_timestep = "timestep"
denoiser_context = "encoder_hidden_states"
denoiser_output = "out_sample"
vae_input = "latent_sample"
vae_output = "sample"

[files]
tokenizer = "tokenizer.json"
text_encoder = "text_encoder.onnx"
denoiser = "denoiser.onnx"
vae_decoder = "vae_decoder.onnx"

[sha256]
{hashes}"#
    )
}

/// A valid bundle in a fresh folder.
fn make_bundle(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir_all(&dir).expect("mkdir");
    for (target, source) in FILES {
        fs::copy(fixtures().join(source), dir.join(target)).expect("copy fixture");
    }
    fs::write(dir.join("model.toml"), manifest_text(&dir)).expect("write manifest");
    dir
}

fn edit_manifest(dir: &Path, from: &str, to: &str) {
    let path = dir.join("model.toml");
    let text = fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "model.toml has no {from:?}");
    fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

fn open_error(dir: &Path) -> String {
    match Bundle::open(dir) {
        Ok(_) => panic!("the bundle opened"),
        Err(ModelError::Bundle { path, message }) => {
            assert!(path.starts_with(&dir.display().to_string()), "{path}");
            message
        }
        Err(other) => panic!("expected a bundle error, got {other}"),
    }
}

#[test]
fn a_valid_bundle_opens_with_every_field() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "tiny");
    let bundle = Bundle::open(&dir).unwrap_or_else(|e| panic!("{e}"));
    let m = bundle.manifest();
    assert_eq!(m.name, "tiny-test");
    assert_eq!(m.family, Family::AnimateDiff);
    assert_eq!((m.video.width, m.video.frames, m.video.fps), (64, 16, 8));
    assert_eq!(m.latent.scaling_factor, 0.18215);
    assert_eq!(
        m.scheduler.get("kind").and_then(|v| v.as_str()),
        Some("euler_discrete")
    );
    assert_eq!(m.tensors.vae_output.as_deref(), Some("sample"));
    let roles: Vec<(GraphRole, String)> = bundle
        .session_specs()
        .into_iter()
        .map(|(role, spec)| (role, spec.name))
        .collect();
    assert_eq!(
        roles,
        vec![
            (GraphRole::TextEncoder, "text_encoder".to_string()),
            (GraphRole::Denoiser, "denoiser".to_string()),
            (GraphRole::VaeDecoder, "vae_decoder".to_string()),
        ]
    );
    assert_eq!(bundle.tokenizer_path(), dir.join("tokenizer.json"));
}

#[test]
fn verify_passes_on_a_small_valid_bundle() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "tiny");
    let bundle = Bundle::open(&dir).expect("open");
    let mut seen = Vec::new();
    let report = bundle.verify_with(&runtime(), &mut |check| seen.push(check.name.clone()));
    assert!(report.passed(), "{report}");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "sha256 denoiser.onnx",
            "sha256 text_encoder.onnx",
            "sha256 tokenizer.json",
            "sha256 vae_decoder.onnx",
            "tokenizer tokenizer.json",
            "graph text_encoder.onnx",
            "text_encoder input input_ids",
            "text_encoder output last_hidden_state",
            "graph denoiser.onnx",
            "denoiser input sample",
            "denoiser input timestep",
            "denoiser input encoder_hidden_states",
            "denoiser output out_sample",
            "graph vae_decoder.onnx",
            "vae_decoder input latent_sample",
            "vae_decoder output sample",
        ]
    );
    assert_eq!(seen, names, "the callback sees every check, in order");
    let text = report.to_string();
    assert!(
        text.contains("ok   text_encoder input input_ids: i64[batch, 8]"),
        "{text}"
    );
    assert!(
        text.contains("ok   tokenizer tokenizer.json: loads (5 tokens"),
        "{text}"
    );
    assert!(text.ends_with("all 16 checks passed\n"), "{text}");
}

fn failure<'r>(report: &'r VerifyReport, name: &str) -> &'r str {
    let check = report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name}:\n{report}"));
    assert!(!check.passed, "{name} passed:\n{report}");
    &check.message
}

#[test]
fn a_wrong_hash_fails_that_file_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "tiny");
    let actual = hash(&dir.join("denoiser.onnx"));
    let wrong = "0".repeat(64);
    edit_manifest(&dir, &actual, &wrong);
    let report = Bundle::open(&dir).expect("open").verify(&runtime());
    assert!(!report.passed());
    assert_eq!(report.failures().count(), 1, "{report}");
    assert_eq!(
        failure(&report, "sha256 denoiser.onnx"),
        format!(
            "denoiser.onnx does not match the sha256 in model.toml (expected {wrong}, found {actual})"
        )
    );
    assert!(report.to_string().ends_with("1 of 16 checks failed\n"));
}

#[test]
fn graphs_are_checked_against_the_tensor_names_and_sizes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "tiny");
    edit_manifest(
        &dir,
        "denoiser_sample = \"sample\"",
        "denoiser_sample = \"latents\"",
    );
    edit_manifest(&dir, "max_length = 8", "max_length = 16");
    edit_manifest(&dir, "vae_output = \"sample\"", "vae_output = \"image\"");
    let report = Bundle::open(&dir).expect("open").verify(&runtime());
    assert_eq!(
        failure(&report, "denoiser input latents"),
        "the graph has no input named latents (tensors.denoiser_sample); \
         its inputs: sample, timestep, encoder_hidden_states"
    );
    assert_eq!(
        failure(&report, "text_encoder input input_ids"),
        "is i64[batch, 8]; dimension 1 should be 16 (text.max_length)"
    );
    assert_eq!(
        failure(&report, "vae_decoder output image"),
        "the graph has no output named image (tensors.vae_output); its outputs: sample"
    );
    // The context input's sequence axis is fixed at 8 too.
    assert_eq!(
        failure(&report, "denoiser input encoder_hidden_states"),
        "is f32[batch_frames, 8, 4]; dimension 1 should be 16 (text.max_length)"
    );
}

#[test]
fn a_graph_or_tokenizer_that_does_not_load_fails_its_check() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "tiny");
    fs::write(dir.join("vae_decoder.onnx"), b"not a protobuf").expect("write");
    fs::write(dir.join("tokenizer.json"), b"{\"model\": 3}").expect("write");
    fs::write(dir.join("model.toml"), manifest_text(&dir)).expect("rehash");
    let report = Bundle::open(&dir).expect("open").verify(&runtime());
    let graph = failure(&report, "graph vae_decoder.onnx");
    assert!(
        graph.starts_with("ONNX Runtime: loading graph vae_decoder from"),
        "{graph}"
    );
    let tokenizer = failure(&report, "tokenizer tokenizer.json");
    assert!(
        tokenizer.starts_with("does not load as a `tokenizers` JSON file"),
        "{tokenizer}"
    );
    // No tensor checks for a graph that did not load; the others still pass.
    assert!(
        !report
            .checks
            .iter()
            .any(|c| c.name.starts_with("vae_decoder "))
    );
    assert_eq!(report.failures().count(), 2, "{report}");
}

#[test]
fn a_missing_field_is_named_with_its_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "tiny");
    edit_manifest(&dir, "licence = \"Apache-2.0\"\n", "");
    assert_eq!(open_error(&dir), "line 1: missing field `licence`");
    let dir = make_bundle(tmp.path(), "no-steps");
    edit_manifest(&dir, "steps = 4\n", "");
    let message = open_error(&dir);
    assert!(message.ends_with("missing field `steps`"), "{message}");
}

#[test]
fn an_unknown_key_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "tiny");
    edit_manifest(&dir, "fps = 8\n", "fps = 8\ncolour = \"red\"\n");
    let message = open_error(&dir);
    assert!(
        message.starts_with("line 12: unknown field `colour`, expected one of"),
        "{message}"
    );
    let dir = make_bundle(tmp.path(), "top");
    edit_manifest(&dir, "format = 1\n", "format = 1\nauthor = \"me\"\n");
    let message = open_error(&dir);
    assert!(message.contains("unknown field `author`"), "{message}");
}

#[test]
fn only_format_1_is_read() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "two");
    // A format 2 bundle may have fields format 1 lacks: the version is what to complain about.
    edit_manifest(&dir, "format = 1\n", "format = 2\nnew_field = true\n");
    assert_eq!(
        open_error(&dir),
        "format 2 is not supported; this loopsmith reads format 1"
    );
    let dir = make_bundle(tmp.path(), "none");
    edit_manifest(&dir, "format = 1\n", "");
    assert_eq!(
        open_error(&dir),
        "missing `format` (this loopsmith reads format 1)"
    );
    let dir = make_bundle(tmp.path(), "text");
    edit_manifest(&dir, "format = 1\n", "format = \"1\"\n");
    assert_eq!(
        open_error(&dir),
        "`format` must be the integer 1, not string"
    );
    let dir = make_bundle(tmp.path(), "broken");
    edit_manifest(&dir, "[video]", "[video");
    let message = open_error(&dir);
    assert!(message.starts_with("line 7: "), "{message}");
}

#[test]
fn a_missing_file_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "tiny");
    fs::remove_file(dir.join("denoiser.onnx")).expect("rm");
    assert_eq!(
        open_error(&dir),
        "denoiser.onnx (listed as files.denoiser) is missing"
    );
    let dir = make_bundle(tmp.path(), "data");
    edit_manifest(
        &dir,
        "[sha256]\n",
        &format!("[sha256]\n\"weights.pb\" = \"{}\"\n", "a".repeat(64)),
    );
    assert_eq!(
        open_error(&dir),
        "weights.pb (listed under [sha256]) is missing"
    );
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).expect("mkdir");
    let Err(ModelError::Io { path, .. }) = Bundle::open(&empty) else {
        panic!("a folder without model.toml opened");
    };
    assert!(path.ends_with("empty/model.toml"), "{path}");
}

#[test]
fn rules_beyond_the_types_are_checked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cases: [(&str, &str, &str); 9] = [
        (
            "guidance = 1.0",
            "guidance = 0.5",
            "`defaults.guidance` must be at least 1.0 (1.0 = no classifier-free guidance)",
        ),
        (
            "frames = 16",
            "frames = 0",
            "`video.frames` must be at least 1",
        ),
        (
            "width = 64",
            "width = 60",
            "video size 60×64 is not a multiple of latent.downscale 8",
        ),
        (
            "family = \"animatediff\"",
            "family = \"pixel\"",
            "family pixel has no VAE: remove `files.vae_decoder`, `tensors.vae_input` and `tensors.vae_output`",
        ),
        (
            "vae_decoder = \"vae_decoder.onnx\"\n",
            "",
            "family animatediff needs `files.vae_decoder`",
        ),
        (
            "denoiser = \"denoiser.onnx\"",
            "denoiser = \"../denoiser.onnx\"",
            "`files.denoiser` = \"../denoiser.onnx\": must be a path inside the bundle folder",
        ),
        (
            "tokenizer = \"tokenizer.json\"",
            "tokenizer = \"vocab.json\"",
            "`files.tokenizer` = \"vocab.json\" has no entry under [sha256]",
        ),
        (
            "\"tokenizer.json\" = \"",
            "\"tokenizer.json\" = \"zz",
            "is not a sha256 (64 hex digits)",
        ),
        (
            "family = \"animatediff\"",
            "family = \"unet\"",
            "unknown variant `unet`, expected `animatediff` or `pixel`",
        ),
    ];
    for (i, (from, to, expected)) in cases.into_iter().enumerate() {
        let dir = make_bundle(tmp.path(), &format!("case{i}"));
        edit_manifest(&dir, from, to);
        let message = open_error(&dir);
        assert!(message.ends_with(expected), "case {i}: {message}");
    }
}

#[test]
fn info_shows_sizes_and_settings() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = make_bundle(tmp.path(), "tiny");
    let info = Bundle::open(&dir).expect("open").info();
    let sizes: u64 = FILES
        .iter()
        .map(|(name, _)| fs::metadata(dir.join(name)).expect("stat").len())
        .sum();
    assert_eq!(info.total_size(), sizes);
    let roles: Vec<&str> = info.files.iter().map(|f| f.role.as_str()).collect();
    assert_eq!(
        roles,
        vec!["tokenizer", "text_encoder", "denoiser", "vae_decoder"]
    );
    let text = info.to_string();
    assert!(text.starts_with("tiny-test ("), "{text}");
    assert!(
        text.contains("video:    64×64, 16 frames at 8 fps"),
        "{text}"
    );
    assert!(text.contains("defaults: 4 steps, guidance 1"), "{text}");
    assert!(text.contains("licence:  Apache-2.0"), "{text}");
}

#[test]
fn list_finds_bundles_and_reports_broken_ones() {
    let tmp = tempfile::tempdir().expect("tmp");
    let models = tmp.path().join("models");
    make_bundle(&models, "b-second");
    make_bundle(&models, "a-first");
    let broken = make_bundle(&models, "c-broken");
    edit_manifest(&broken, "format = 1", "format = 9");
    fs::create_dir_all(models.join("not-a-bundle")).expect("mkdir");
    let single = make_bundle(tmp.path(), "single");
    let found = list(&[models.clone(), single.clone(), tmp.path().join("absent")]);
    let paths: Vec<&PathBuf> = found.iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        vec![
            &models.join("a-first"),
            &models.join("b-second"),
            &models.join("c-broken"),
            &single,
        ]
    );
    let summary = found[0].1.as_ref().expect("a-first opens");
    assert_eq!(summary.name, "tiny-test");
    assert!(
        summary
            .to_string()
            .starts_with("tiny-test  animatediff  64×64, 16 frames at 8 fps, 4 steps")
    );
    let Err(err) = &found[2].1 else {
        panic!("the broken bundle opened");
    };
    assert!(
        err.to_string().contains("format 9 is not supported"),
        "{err}"
    );
}

#[test]
fn sha256_streams_files_of_any_size() {
    let tmp = tempfile::tempdir().expect("tmp");
    let small = tmp.path().join("abc");
    fs::write(&small, b"abc").expect("write");
    assert_eq!(
        sha256_file(&small).expect("hash"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    // Past the 1 MiB read buffer, with a ragged end.
    let big = tmp.path().join("big");
    let bytes: Vec<u8> = (0..(3 << 20) + 17).map(|i: u32| (i % 251) as u8).collect();
    fs::write(&big, &bytes).expect("write");
    assert_eq!(sha256_file(&big).expect("hash"), hash(&big));
    assert!(matches!(
        sha256_file(&tmp.path().join("absent")),
        Err(ModelError::Io { .. })
    ));
}

#[test]
fn sizes_read_like_people_write_them() {
    assert_eq!(human_size(0), "0 B");
    assert_eq!(human_size(999), "999 B");
    assert_eq!(human_size(1_500), "1.5 KB");
    assert_eq!(human_size(2_300_000_000), "2.3 GB");
}
