//! One ONNX graph loaded as a session, what its inputs and outputs look like, and two ways to run
//! it: with host tensors in and out ([`Graph::run_host`], converting float16 as needed) or with an
//! IO binding whose outputs stay in device memory between runs ([`Graph::binding`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use ort::memory::AllocationDevice;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{IoBinding, Session, SessionInputValue};
use ort::value::{
    DynTensor, DynTensorValueType, DynValue, TensorElementType, TensorRef, ValueType,
};

use super::{Fp16, Runtime};
use crate::ModelError;

/// How much ONNX Runtime rewrites a graph when loading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Optimization {
    Disabled,
    /// Constant folding and redundant-node removal.
    Basic,
    /// Plus fusions (attention, GELU, layer norm) on the CPU and CUDA providers.
    Extended,
    /// Everything, including layout changes. ONNX Runtime's own default.
    #[default]
    All,
}

impl Optimization {
    pub(crate) fn level(self) -> GraphOptimizationLevel {
        match self {
            Optimization::Disabled => GraphOptimizationLevel::Disable,
            Optimization::Basic => GraphOptimizationLevel::Level1,
            Optimization::Extended => GraphOptimizationLevel::Level2,
            Optimization::All => GraphOptimizationLevel::All,
        }
    }
}

/// What to load: a graph file under a name the pipeline refers to it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    pub name: String,
    /// The `.onnx` file; external weight files are found beside it.
    pub path: PathBuf,
    pub optimization: Optimization,
    /// Overrides the runtime's default.
    pub intra_op_threads: Option<usize>,
}

impl SessionSpec {
    /// Full optimization, the runtime's thread count.
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> SessionSpec {
        SessionSpec {
            name: name.into(),
            path: path.into(),
            optimization: Optimization::default(),
            intra_op_threads: None,
        }
    }

    pub fn with_optimization(mut self, optimization: Optimization) -> SessionSpec {
        self.optimization = optimization;
        self
    }

    pub fn with_intra_op_threads(mut self, threads: usize) -> SessionSpec {
        self.intra_op_threads = Some(threads);
        self
    }
}

/// One dimension of a declared input or output shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    Fixed(i64),
    /// Chosen per run; the name the graph gives it, when it has one (`batch`, `frames`).
    Dynamic(Option<String>),
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Dynamic(Some(name)) => f.write_str(name),
            Dim::Dynamic(None) => f.write_str("?"),
        }
    }
}

/// A graph input or output as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// `None` for a non-tensor value (sequence, map), which the pipeline never uses.
    pub element: Option<TensorElementType>,
    pub dims: Vec<Dim>,
}

impl TensorInfo {
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// Float32 or float16: the element types the pipeline feeds floats through.
    pub fn is_float(&self) -> bool {
        matches!(
            self.element,
            Some(TensorElementType::Float32 | TensorElementType::Float16)
        )
    }

    fn from_outlet(name: &str, dtype: &ValueType) -> TensorInfo {
        match dtype {
            ValueType::Tensor {
                ty,
                shape,
                dimension_symbols,
            } => TensorInfo {
                name: name.to_string(),
                element: Some(*ty),
                dims: shape
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        if d >= 0 {
                            Dim::Fixed(d)
                        } else {
                            let symbol = dimension_symbols.get(i).filter(|s| !s.is_empty());
                            Dim::Dynamic(symbol.cloned())
                        }
                    })
                    .collect(),
            },
            _ => TensorInfo {
                name: name.to_string(),
                element: None,
                dims: Vec::new(),
            },
        }
    }
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let element = self
            .element
            .map_or_else(|| "non-tensor".to_string(), |e| e.to_string());
        let dims: Vec<String> = self.dims.iter().map(Dim::to_string).collect();
        write!(f, "{} {element}[{}]", self.name, dims.join(", "))
    }
}

/// Everything known about a loaded graph without running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphInfo {
    pub name: String,
    pub path: PathBuf,
    pub inputs: Vec<TensorInfo>,
    pub outputs: Vec<TensorInfo>,
}

impl GraphInfo {
    pub fn input(&self, name: &str) -> Option<&TensorInfo> {
        self.inputs.iter().find(|t| t.name == name)
    }

    pub fn output(&self, name: &str) -> Option<&TensorInfo> {
        self.outputs.iter().find(|t| t.name == name)
    }
}

/// Host data for one input. Floats are converted to float16 when the graph wants that, and
/// integers to int32 likewise; nothing else is converted.
#[derive(Debug, Clone, Copy)]
pub enum HostInput<'a> {
    F32 { shape: &'a [usize], data: &'a [f32] },
    I64 { shape: &'a [usize], data: &'a [i64] },
}

/// An output brought back to the host as float32.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A loaded session. `Session::run` takes `&mut self` (ONNX Runtime's run is not thread-safe), so
/// a graph belongs to one owner, in the engine the [`ModelWorker`](super::ModelWorker) thread.
pub struct Graph {
    info: GraphInfo,
    session: Session,
    runtime: Runtime,
    /// Built on first use by a graph with float16 inputs or outputs.
    fp16: Option<Fp16>,
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

pub(super) fn load(runtime: &Runtime, spec: &SessionSpec) -> Result<Graph, ModelError> {
    let fail = |e: &dyn fmt::Display| {
        ModelError::Runtime(format!(
            "loading graph {} from {}: {e}",
            spec.name,
            spec.path.display()
        ))
    };
    if !spec.path.is_file() {
        return Err(fail(&"no such file"));
    }
    let mut builder = runtime.session_builder(spec.optimization, spec.intra_op_threads)?;
    let session = builder.commit_from_file(&spec.path).map_err(|e| fail(&e))?;
    let info = GraphInfo {
        name: spec.name.clone(),
        path: spec.path.clone(),
        inputs: session
            .inputs()
            .iter()
            .map(|o| TensorInfo::from_outlet(o.name(), o.dtype()))
            .collect(),
        outputs: session
            .outputs()
            .iter()
            .map(|o| TensorInfo::from_outlet(o.name(), o.dtype()))
            .collect(),
    };
    tracing::debug!(graph = %spec.name, path = %spec.path.display(), "graph loaded");
    Ok(Graph {
        info,
        session,
        runtime: runtime.clone(),
        fp16: None,
    })
}

impl Graph {
    pub fn name(&self) -> &str {
        &self.info.name
    }

    pub fn path(&self) -> &Path {
        &self.info.path
    }

    pub fn info(&self) -> &GraphInfo {
        &self.info
    }

    /// The ort session, for anything not wrapped here.
    pub fn session(&mut self) -> &mut Session {
        &mut self.session
    }

    fn fp16(&mut self) -> Result<&mut Fp16, ModelError> {
        if self.fp16.is_none() {
            self.fp16 = Some(Fp16::new(&self.runtime)?);
        }
        self.fp16
            .as_mut()
            .ok_or_else(|| ModelError::Runtime("float16 converter missing".to_string()))
    }

    fn declared_input(&self, name: &str) -> Result<&TensorInfo, ModelError> {
        self.info.input(name).ok_or_else(|| {
            let known: Vec<&str> = self.info.inputs.iter().map(|t| t.name.as_str()).collect();
            ModelError::Shape(format!(
                "graph {} has no input named {name} (inputs: {})",
                self.info.name,
                known.join(", ")
            ))
        })
    }

    /// Makes an owned value for input `name` from host data, in the element type the graph
    /// declares (float32 → float16, int64 → int32 where needed). Use it for values bound once
    /// and reused, like the text embedding in a denoising loop.
    pub fn input_value(
        &mut self,
        name: &str,
        input: HostInput<'_>,
    ) -> Result<DynValue, ModelError> {
        let wanted = self.declared_input(name)?.element;
        let graph = self.info.name.clone();
        let mismatch = |given: &str| {
            ModelError::Shape(format!(
                "graph {graph} input {name}: given {given} data, the graph wants {}",
                wanted.map_or_else(|| "a non-tensor".to_string(), |e| e.to_string())
            ))
        };
        match (input, wanted) {
            (HostInput::F32 { shape, data }, Some(TensorElementType::Float32)) => {
                tensor((shape.to_vec(), data.to_vec()), name)
            }
            (HostInput::F32 { shape, data }, Some(TensorElementType::Float16)) => {
                self.fp16()?.to_f16(shape, data)
            }
            (HostInput::I64 { shape, data }, Some(TensorElementType::Int64)) => {
                tensor((shape.to_vec(), data.to_vec()), name)
            }
            (HostInput::I64 { shape, data }, Some(TensorElementType::Int32)) => {
                let narrowed = data
                    .iter()
                    .map(|&v| i32::try_from(v))
                    .collect::<Result<Vec<i32>, _>>()
                    .map_err(|_| mismatch("int64 (out of int32 range)"))?;
                tensor((shape.to_vec(), narrowed), name)
            }
            (HostInput::F32 { .. }, _) => Err(mismatch("float32")),
            (HostInput::I64 { .. }, _) => Err(mismatch("int64")),
        }
    }

    /// Runs the graph on host data and returns every output as float32 on the host.
    ///
    /// Float32 and int64 inputs the graph takes as they are are passed without a copy.
    pub fn run_host(
        &mut self,
        inputs: &[(&str, HostInput<'_>)],
    ) -> Result<BTreeMap<String, HostTensor>, ModelError> {
        let mut values: Vec<(String, SessionInputValue<'_>)> = Vec::with_capacity(inputs.len());
        for &(name, input) in inputs {
            let wanted = self.declared_input(name)?.element;
            let value: SessionInputValue<'_> = match (input, wanted) {
                (HostInput::F32 { shape, data }, Some(TensorElementType::Float32)) => {
                    TensorRef::from_array_view((shape.to_vec(), data))
                        .map_err(|e| value_error(name, &e))?
                        .into()
                }
                (HostInput::I64 { shape, data }, Some(TensorElementType::Int64)) => {
                    TensorRef::from_array_view((shape.to_vec(), data))
                        .map_err(|e| value_error(name, &e))?
                        .into()
                }
                _ => self.input_value(name, input)?.into(),
            };
            values.push((name.to_string(), value));
        }
        let graph = self.info.name.clone();
        let outputs = self
            .session
            .run(values)
            .map_err(|e| ModelError::Runtime(format!("running graph {graph}: {e}")))?;
        let mut owned = Vec::with_capacity(outputs.len());
        for (name, value) in outputs {
            owned.push((name.to_string(), value));
        }
        let mut result = BTreeMap::new();
        for (name, value) in owned {
            let tensor = self.to_host(&name, &value)?;
            result.insert(name, tensor);
        }
        Ok(result)
    }

    /// Brings a value (an output, possibly in device memory, float32 or float16) to the host as
    /// float32.
    pub fn to_host(&mut self, name: &str, value: &DynValue) -> Result<HostTensor, ModelError> {
        let graph = self.info.name.clone();
        let fail =
            |e: &dyn fmt::Display| ModelError::Runtime(format!("graph {graph} output {name}: {e}"));
        let tensor = value
            .view()
            .downcast::<DynTensorValueType>()
            .map_err(|e| fail(&e))?;
        // Device memory (CUDA) is not readable from the host: copy it over first.
        let on_host;
        let tensor: &DynTensor = if tensor.memory_info().is_cpu_accessible() {
            &tensor
        } else {
            on_host = tensor.to(AllocationDevice::CPU, 0).map_err(|e| fail(&e))?;
            &on_host
        };
        let shape = shape_of(tensor.shape()).map_err(|e| fail(&e))?;
        match tensor.data_type() {
            TensorElementType::Float32 => {
                let (_, data) = tensor.try_extract_tensor::<f32>().map_err(|e| fail(&e))?;
                Ok(HostTensor {
                    shape,
                    data: data.to_vec(),
                })
            }
            TensorElementType::Float16 => {
                let data = self.fp16()?.to_f32(tensor)?;
                Ok(HostTensor { shape, data })
            }
            other => Err(ModelError::Shape(format!(
                "graph {graph} output {name} is {other}; only float32 and float16 outputs are read"
            ))),
        }
    }

    /// An IO binding with every output bound to the runtime's device memory
    /// ([`Runtime::device_memory`](super::Runtime::device_memory)): on CUDA, inputs are copied
    /// to the GPU once when bound and outputs stay there, so a value bound once (the prompt
    /// embedding) is not re-uploaded every step, and an output can be bound as the next run's
    /// input without a trip through the host. On the CPU the same calls work with host memory.
    pub fn binding(&mut self) -> Result<Binding, ModelError> {
        let graph = self.info.name.clone();
        let fail = |e: &dyn fmt::Display| ModelError::Runtime(format!("graph {graph}: {e}"));
        let memory = self.runtime.device_memory()?;
        let mut binding = self.session.create_binding().map_err(|e| fail(&e))?;
        for output in &self.info.outputs {
            binding
                .bind_output_to_device(output.name.clone(), &memory)
                .map_err(|e| fail(&e))?;
        }
        Ok(Binding {
            graph: self.info.name.clone(),
            binding,
        })
    }

    /// Runs with a binding from [`Graph::binding`] of this graph. The outputs are copies (on the
    /// device), so they stay valid after the next run reuses the bound output buffers.
    pub fn run_binding(
        &mut self,
        binding: &Binding,
    ) -> Result<BTreeMap<String, DynValue>, ModelError> {
        let graph = self.info.name.clone();
        if binding.graph != graph {
            return Err(ModelError::Runtime(format!(
                "a binding made for graph {} was run on graph {graph}",
                binding.graph
            )));
        }
        let fail =
            |e: &dyn fmt::Display| ModelError::Runtime(format!("running graph {graph}: {e}"));
        let outputs = self
            .session
            .run_binding(&binding.binding)
            .map_err(|e| fail(&e))?;
        let mut result = BTreeMap::new();
        for (name, value) in &outputs {
            let tensor = value
                .view()
                .downcast::<DynTensorValueType>()
                .map_err(|e| fail(&e))?;
            let info = tensor.memory_info();
            let copy = tensor
                .to(info.allocation_device(), info.device_id())
                .map_err(|e| fail(&e))?;
            result.insert(name.to_string(), copy.into_dyn());
        }
        Ok(result)
    }
}

/// An IO binding for one graph; see [`Graph::binding`].
#[derive(Debug)]
pub struct Binding {
    graph: String,
    binding: IoBinding,
}

impl Binding {
    /// Binds `value` to input `name` until bound again. Host data is copied to the device now,
    /// once; a value already on the device is used in place.
    pub fn bind_input(&mut self, name: &str, value: &DynValue) -> Result<(), ModelError> {
        self.binding
            .bind_input(name, value)
            .map_err(|e| ModelError::Runtime(format!("graph {} input {name}: {e}", self.graph)))
    }

    /// The ort binding, for anything not wrapped here.
    pub fn io_binding(&mut self) -> &mut IoBinding {
        &mut self.binding
    }
}

fn tensor<T>(data: (Vec<usize>, Vec<T>), name: &str) -> Result<DynValue, ModelError>
where
    T: ort::value::PrimitiveTensorElementType + fmt::Debug + Clone + 'static,
{
    ort::value::Tensor::from_array(data)
        .map(ort::value::Tensor::into_dyn)
        .map_err(|e| value_error(name, &e))
}

fn value_error(name: &str, e: &dyn fmt::Display) -> ModelError {
    ModelError::Shape(format!("input {name}: {e}"))
}

pub(super) fn shape_of(shape: &ort::value::Shape) -> Result<Vec<usize>, String> {
    shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
        .collect()
}
