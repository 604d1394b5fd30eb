//! `loopsmith models verify`: hashes, the tokenizer, and every graph loaded and matched against
//! the tensor names and sizes in `model.toml`.

use std::fmt;
use std::io::Read;
use std::path::Path;

use ort::value::TensorElementType;
use sha2::{Digest, Sha256};

use super::{Bundle, GraphRole};
use crate::ModelError;
use crate::runtime::{Dim, GraphInfo, Runtime, TensorInfo};

/// One verification step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `sha256 denoiser.onnx`, `denoiser input sample`.
    pub name: String,
    pub passed: bool,
    /// What was found (on a pass) or what is wrong (on a failure).
    pub message: String,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "ok  " } else { "FAIL" };
        write!(f, "{mark} {}: {}", self.name, self.message)
    }
}

/// Every check, in the order run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub checks: Vec<Check>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(f, "{check}")?;
        }
        let failed = self.failures().count();
        if failed == 0 {
            writeln!(f, "all {} checks passed", self.checks.len())
        } else {
            writeln!(f, "{failed} of {} checks failed", self.checks.len())
        }
    }
}

/// The sha256 of a file as lowercase hex, read in 1 MiB pieces: graphs run to gigabytes.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let io_error = |source| ModelError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        hasher.update(&buffer[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

struct Recorder<'a> {
    checks: Vec<Check>,
    on_check: &'a mut dyn FnMut(&Check),
}

impl Recorder<'_> {
    fn record(&mut self, name: String, outcome: Result<String, String>) {
        let (passed, message) = match outcome {
            Ok(message) => (true, message),
            Err(message) => (false, message),
        };
        let check = Check {
            name,
            passed,
            message,
        };
        (self.on_check)(&check);
        self.checks.push(check);
    }
}

pub(super) fn verify(
    bundle: &Bundle,
    runtime: &Runtime,
    on_check: &mut dyn FnMut(&Check),
) -> VerifyReport {
    let mut recorder = Recorder {
        checks: Vec::new(),
        on_check,
    };
    let manifest = bundle.manifest();
    for (file, expected) in &manifest.sha256 {
        let outcome = sha256_file(&bundle.dir().join(file))
            .map_err(|e| e.to_string())
            .and_then(|actual| {
                if actual.eq_ignore_ascii_case(expected) {
                    Ok("matches model.toml".to_string())
                } else {
                    Err(ModelError::Hash {
                        file: file.clone(),
                        expected: expected.clone(),
                        actual,
                    }
                    .to_string())
                }
            });
        recorder.record(format!("sha256 {file}"), outcome);
    }

    let tokenizer = &manifest.files.tokenizer;
    let outcome = tokenizers::Tokenizer::from_file(bundle.dir().join(tokenizer))
        .map(|t| {
            format!(
                "loads ({} tokens in its vocabulary)",
                t.get_vocab_size(true)
            )
        })
        .map_err(|e| format!("does not load as a `tokenizers` JSON file: {e}"));
    recorder.record(format!("tokenizer {tokenizer}"), outcome);

    for (role, spec) in bundle.session_specs() {
        let file = spec
            .path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        match runtime.load(&spec) {
            Ok(graph) => {
                let info = graph.info();
                recorder.record(
                    format!("graph {file}"),
                    Ok(format!(
                        "loads ({} inputs, {} outputs)",
                        info.inputs.len(),
                        info.outputs.len()
                    )),
                );
                for expectation in expectations(bundle, role) {
                    let outcome = expectation.check(info);
                    recorder.record(expectation.title(role), outcome);
                }
            }
            Err(e) => recorder.record(format!("graph {file}"), Err(e.to_string())),
        }
    }
    VerifyReport {
        checks: recorder.checks,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Float,
    Integer,
    FloatOrInteger,
}

impl Kind {
    fn accepts(self, element: TensorElementType) -> bool {
        let float = matches!(
            element,
            TensorElementType::Float32 | TensorElementType::Float16
        );
        let integer = matches!(element, TensorElementType::Int64 | TensorElementType::Int32);
        match self {
            Kind::Float => float,
            Kind::Integer => integer,
            Kind::FloatOrInteger => float || integer,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Float => "f32 or f16",
            Kind::Integer => "i64 or i32",
            Kind::FloatOrInteger => "f32, f16, i64 or i32",
        }
    }
}

/// What one named tensor must look like.
struct Expectation {
    input: bool,
    /// The `[tensors]` key that names it.
    key: &'static str,
    name: String,
    kind: Kind,
    ranks: &'static [usize],
    /// (axis, value, where the value comes from): checked only where the graph fixes that axis.
    sizes: Vec<(usize, u32, &'static str)>,
}

impl Expectation {
    fn title(&self, role: GraphRole) -> String {
        let side = if self.input { "input" } else { "output" };
        format!("{} {side} {}", role.name(), self.name)
    }

    fn check(&self, info: &GraphInfo) -> Result<String, String> {
        let side = if self.input { "input" } else { "output" };
        let list = if self.input {
            &info.inputs
        } else {
            &info.outputs
        };
        let Some(tensor) = list.iter().find(|t| t.name == self.name) else {
            let names: Vec<&str> = list.iter().map(|t| t.name.as_str()).collect();
            return Err(format!(
                "the graph has no {side} named {} (tensors.{}); its {side}s: {}",
                self.name,
                self.key,
                names.join(", ")
            ));
        };
        let shown = shape_text(tensor);
        match tensor.element {
            Some(element) if self.kind.accepts(element) => {}
            _ => {
                return Err(format!(
                    "is {shown}; expected {} elements",
                    self.kind.describe()
                ));
            }
        }
        if !self.ranks.contains(&tensor.rank()) {
            let ranks: Vec<String> = self.ranks.iter().map(usize::to_string).collect();
            return Err(format!("is {shown}; expected rank {}", ranks.join(" or ")));
        }
        for &(axis, value, source) in &self.sizes {
            if let Some(Dim::Fixed(actual)) = tensor.dims.get(axis)
                && *actual != i64::from(value)
            {
                return Err(format!(
                    "is {shown}; dimension {axis} should be {value} ({source})"
                ));
            }
        }
        Ok(shown)
    }
}

fn shape_text(tensor: &TensorInfo) -> String {
    let element = tensor
        .element
        .map_or_else(|| "non-tensor".to_string(), |e| e.to_string());
    let dims: Vec<String> = tensor.dims.iter().map(Dim::to_string).collect();
    format!("{element}[{}]", dims.join(", "))
}

/// The tensors `BUNDLE.md` describes, per graph.
fn expectations(bundle: &Bundle, role: GraphRole) -> Vec<Expectation> {
    let m = bundle.manifest();
    let t = &m.tensors;
    let (max_length, hidden, channels) = (m.text.max_length, m.text.hidden_size, m.latent.channels);
    match role {
        GraphRole::TextEncoder => vec![
            Expectation {
                input: true,
                key: "text_input_ids",
                name: t.text_input_ids.clone(),
                kind: Kind::Integer,
                ranks: &[2],
                sizes: vec![(1, max_length, "text.max_length")],
            },
            Expectation {
                input: false,
                key: "text_output",
                name: t.text_output.clone(),
                kind: Kind::Float,
                ranks: &[3],
                sizes: vec![
                    (1, max_length, "text.max_length"),
                    (2, hidden, "text.hidden_size"),
                ],
            },
        ],
        GraphRole::Denoiser => vec![
            Expectation {
                input: true,
                key: "denoiser_sample",
                name: t.denoiser_sample.clone(),
                kind: Kind::Float,
                ranks: &[5],
                sizes: vec![(1, channels, "latent.channels")],
            },
            Expectation {
                input: true,
                key: "denoiser_timestep",
                name: t.denoiser_timestep.clone(),
                kind: Kind::FloatOrInteger,
                // Some exports take one scalar timestep for the whole batch.
                ranks: &[0, 1],
                sizes: Vec::new(),
            },
            Expectation {
                input: true,
                key: "denoiser_context",
                name: t.denoiser_context.clone(),
                kind: Kind::Float,
                ranks: &[3],
                sizes: vec![
                    (1, max_length, "text.max_length"),
                    (2, hidden, "text.hidden_size"),
                ],
            },
            Expectation {
                input: false,
                key: "denoiser_output",
                name: t.denoiser_output.clone(),
                kind: Kind::Float,
                ranks: &[5],
                sizes: vec![(1, channels, "latent.channels")],
            },
        ],
        GraphRole::VaeDecoder => vec![
            Expectation {
                input: true,
                key: "vae_input",
                name: t.vae_input.clone().unwrap_or_default(),
                kind: Kind::Float,
                // Image VAEs decode frame by frame (rank 4); video VAEs take the clip (rank 5).
                ranks: &[4, 5],
                sizes: vec![(1, channels, "latent.channels")],
            },
            Expectation {
                input: false,
                key: "vae_output",
                name: t.vae_output.clone().unwrap_or_default(),
                kind: Kind::Float,
                ranks: &[4, 5],
                sizes: vec![(1, 3, "RGB")],
            },
        ],
    }
}
