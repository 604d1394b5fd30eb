//! The local ONNX text-to-video pipeline: runtime, model bundles, tokenizer, schedulers.
//!
//! Empty for now; the local-pipeline work fills it. Its `ort` dependency (load-dynamic,
//! `=2.0.0-rc.15`) is declared already so the workspace's pinned versions resolve and build
//! together from the first commit.
