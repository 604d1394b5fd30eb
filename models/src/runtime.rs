//! ONNX Runtime for the local pipeline: finding the library ([`discover`]), one process-wide
//! environment with an execution provider chosen once ([`Runtime`]), graphs loaded as sessions
//! ([`Graph`]), float16 conversion ([`Fp16`]) and the one thread all sessions live on
//! ([`ModelWorker`]).
//!
//! Nothing in `ort` may be called before [`Runtime::new`]: with `load-dynamic`, ort's first API
//! call loads whatever `ORT_DYLIB_PATH` names (or panics when it names nothing), so the runtime
//! must load the discovered library first.

mod discovery;
mod external;
mod fp16;
mod session;
mod worker;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::editor::{Graph as EditorGraph, Model, Node, ONNX_DOMAIN, Opset};
use ort::environment::Environment;
use ort::ep::{CUDA, ExecutionProvider};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::session::builder::SessionBuilder;
use ort::value::{Outlet, Shape, SymbolicDimensions, TensorElementType, ValueType};

pub use discovery::{
    Candidate, Discovery, DiscoveryOptions, Library, PROJECT_LIBRARY_DIR, ProbeError, PythonSearch,
    REQUIRED_MINOR, SYSTEM_DIRS, Source, Status, default_project_roots, discover, discover_with,
    probe_library, project_roots,
};
pub use fp16::Fp16;
pub use session::{
    Binding, Dim, Graph, GraphInfo, HostInput, HostTensor, Optimization, SessionSpec, TensorInfo,
};
pub use worker::{ModelWorker, Sessions, Ticket, WorkerHandle};

use crate::ModelError;

/// Where inference should run, as configured (`local.device`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// CUDA device 0 when usable, else CPU (with the reason reported).
    #[default]
    Auto,
    Cpu,
    /// This CUDA device, or an error: someone who asked for a GPU by number wants to hear that it
    /// is unusable, not to get a run a hundred times slower on the CPU.
    Cuda(u32),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Auto => f.write_str("auto"),
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// The execution provider sessions use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    Cuda {
        device: u32,
    },
    /// CPU, and why (asked for, or why CUDA was not usable).
    Cpu {
        reason: String,
    },
}

impl Provider {
    /// `cuda:0` or `cpu`.
    pub fn name(&self) -> String {
        match self {
            Provider::Cuda { device } => format!("cuda:{device}"),
            Provider::Cpu { .. } => "cpu".to_string(),
        }
    }

    /// Why the CPU is used; `None` on CUDA.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Provider::Cuda { .. } => None,
            Provider::Cpu { reason } => Some(reason),
        }
    }

    pub fn is_cuda(&self) -> bool {
        matches!(self, Provider::Cuda { .. })
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provider::Cuda { device } => write!(f, "cuda:{device}"),
            Provider::Cpu { reason } => write!(f, "cpu ({reason})"),
        }
    }
}

/// The loaded ONNX Runtime with its execution provider. Cheap to clone; every clone shares one
/// environment.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    environment: Environment,
    library: Library,
    provider: Provider,
    intra_op_threads: Option<usize>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.inner.library)
            .field("provider", &self.inner.provider)
            .field("intra_op_threads", &self.inner.intra_op_threads)
            .finish_non_exhaustive()
    }
}

/// The library and environment this process loaded. ort keeps the library and the environment
/// in process-wide slots that can be filled once; a second, different library would be silently
/// ignored by ort, so we refuse it with a clear error instead.
static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

struct Loaded {
    /// Canonical, so a link and its target count as the same library.
    path: PathBuf,
    environment: Environment,
}

impl Runtime {
    /// Loads `library` (once per process) and picks the execution provider for `device`:
    ///
    /// - `Cpu`: CPU.
    /// - `Auto`: CUDA device 0 when this ONNX Runtime build has the CUDA provider and it starts on
    ///   the device; otherwise CPU, with the reason logged and kept in [`Runtime::provider`].
    /// - `Cuda(n)`: CUDA device `n`, or [`ModelError::Device`] saying why not.
    ///
    /// `intra_op_threads` is the default for sessions that don't set their own; `None` lets ONNX
    /// Runtime choose (one per core).
    pub fn new(
        library: &Library,
        device: Device,
        intra_op_threads: Option<usize>,
    ) -> Result<Runtime, ModelError> {
        let environment = load_environment(library.path())?;
        let provider = match device {
            Device::Cpu => Provider::Cpu {
                reason: "CPU requested".to_string(),
            },
            Device::Auto => match cuda_usable(&environment, 0) {
                Ok(()) => Provider::Cuda { device: 0 },
                Err(why) => {
                    tracing::info!(reason = %why, "CUDA unavailable; running on the CPU");
                    Provider::Cpu {
                        reason: format!("CUDA unavailable: {why}"),
                    }
                }
            },
            Device::Cuda(n) => match cuda_usable(&environment, n) {
                Ok(()) => Provider::Cuda { device: n },
                Err(why) => {
                    return Err(ModelError::Device(format!(
                        "cuda:{n} was requested but cannot be used: {why}"
                    )));
                }
            },
        };
        tracing::info!(library = %library, provider = %provider, "ONNX Runtime ready");
        Ok(Runtime {
            inner: Arc::new(Inner {
                environment,
                library: library.clone(),
                provider,
                intra_op_threads: intra_op_threads.filter(|&n| n > 0),
            }),
        })
    }

    pub fn provider(&self) -> &Provider {
        &self.inner.provider
    }

    pub fn library(&self) -> &Library {
        &self.inner.library
    }

    pub fn intra_op_threads(&self) -> Option<usize> {
        self.inner.intra_op_threads
    }

    /// The ort environment, for anything this module doesn't wrap.
    pub fn environment(&self) -> &Environment {
        &self.inner.environment
    }

    /// Loads one graph on the calling thread. The engine loads through a [`ModelWorker`] instead,
    /// so sessions stay on its thread; `verify` and tests call this directly.
    pub fn load(&self, spec: &SessionSpec) -> Result<Graph, ModelError> {
        session::load(self, spec)
    }

    /// A session builder with this runtime's provider and threads; `intra_op_threads` overrides
    /// the runtime's default.
    pub fn session_builder(
        &self,
        optimization: Optimization,
        intra_op_threads: Option<usize>,
    ) -> Result<SessionBuilder, ModelError> {
        let fail = |e: &dyn fmt::Display| ModelError::Runtime(format!("session options: {e}"));
        let mut builder = Session::builder(&self.inner.environment)
            .map_err(|e| fail(&e))?
            .with_optimization_level(optimization.level())
            .map_err(|e| fail(&e))?;
        if let Some(threads) = intra_op_threads.or(self.inner.intra_op_threads) {
            builder = builder.with_intra_threads(threads).map_err(|e| fail(&e))?;
        }
        if let Provider::Cuda { device } = self.inner.provider {
            builder = builder
                .with_execution_providers([cuda_provider(device)])
                .map_err(|e| fail(&e))?;
        }
        Ok(builder)
    }

    /// Where session outputs should stay between runs: the CUDA device's memory, or plain CPU
    /// memory. Bind outputs here ([`Graph::binding`]) to keep tensors off the host.
    pub fn device_memory(&self) -> Result<MemoryInfo<'static>, ModelError> {
        let (device, id) = match self.inner.provider {
            Provider::Cuda { device } => (AllocationDevice::CUDA, device_index(device)?),
            Provider::Cpu { .. } => (AllocationDevice::CPU, 0),
        };
        MemoryInfo::new(device, id, AllocatorType::Device, MemoryType::Default)
            .map_err(|e| ModelError::Runtime(format!("device memory description: {e}")))
    }
}

fn device_index(device: u32) -> Result<i32, ModelError> {
    i32::try_from(device).map_err(|_| ModelError::Device(format!("no CUDA device {device}")))
}

/// The CUDA provider for a session. `error_on_failure` because ort's default is to log and
/// carry on without it, which would quietly run a "GPU" session on the CPU.
fn cuda_provider(device: u32) -> ort::ep::ExecutionProviderDispatch {
    CUDA::default()
        .with_device_id(i32::try_from(device).unwrap_or(i32::MAX))
        .build()
        .error_on_failure()
}

fn load_environment(path: &Path) -> Result<Environment, ModelError> {
    let canonical = std::fs::canonicalize(path).map_err(|source| ModelError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut loaded = LOADED
        .lock()
        .map_err(|_| ModelError::Runtime("an earlier load of ONNX Runtime panicked".to_string()))?;
    if let Some(existing) = loaded.as_ref() {
        if existing.path == canonical {
            return Ok(existing.environment.clone());
        }
        return Err(ModelError::Runtime(format!(
            "this process already loaded ONNX Runtime from {}; it cannot also load {} \
             (one library per process: restart to switch)",
            existing.path.display(),
            canonical.display()
        )));
    }
    let environment = ort::init_from(&canonical)
        .map_err(|e| ModelError::Runtime(format!("loading {}: {e}", canonical.display())))?
        .with_name("loopsmith")
        // Self-hosted: nothing about what people render leaves the machine.
        .with_telemetry(false)
        .build()
        .map_err(|e| {
            ModelError::Runtime(format!(
                "creating the ONNX Runtime environment from {}: {e}",
                canonical.display()
            ))
        })?;
    *loaded = Some(Loaded {
        path: canonical,
        environment: environment.clone(),
    });
    Ok(environment)
}

/// Whether CUDA device `device` works, or why not. Two steps, because each fails differently:
/// the CPU-only wheel has no CUDA provider at all (`GetAvailableProviders`), while the GPU wheel
/// can still fail to load its CUDA/cuDNN libraries or open the device, which only shows when a
/// session is created with the provider, so one is created for a one-node graph.
fn cuda_usable(environment: &Environment, device: u32) -> Result<(), String> {
    match CUDA::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return Err("this ONNX Runtime build has no CUDA execution provider \
                        (the CPU-only `onnxruntime` package; `onnxruntime-gpu` has it)"
                .to_string());
        }
        Err(e) => return Err(format!("cannot list execution providers: {e}")),
    }
    let index = i32::try_from(device).map_err(|_| format!("no CUDA device {device}"))?;
    let builder = Session::builder(environment)
        .map_err(|e| e.to_string())?
        .with_execution_providers([CUDA::default()
            .with_device_id(index)
            .build()
            .error_on_failure()])
        .map_err(|e| e.to_string())?;
    identity_model()
        .and_then(|model| model.into_session(&builder))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `y = Identity(x)` on a float vector, built in memory with ort's model editor.
fn identity_model() -> ort::Result<Model> {
    let tensor = || ValueType::Tensor {
        ty: TensorElementType::Float32,
        shape: Shape::new([-1]),
        dimension_symbols: SymbolicDimensions::new(["n".to_string()]),
    };
    let mut graph = EditorGraph::new()?;
    graph.set_inputs([Outlet::new("x", tensor())])?;
    graph.set_outputs([Outlet::new("y", tensor())])?;
    graph.add_node(Node::new(
        "Identity",
        ONNX_DOMAIN,
        "identity",
        ["x"],
        ["y"],
        [],
    )?)?;
    let mut model = Model::new([Opset::new(ONNX_DOMAIN, 17)?])?;
    model.set_graph(graph)?;
    Ok(model)
}
