//! float32 ↔ float16 for graphs whose inputs or outputs are float16.
//!
//! ort reads and writes float16 tensors only through the `half` crate (its `half` feature), which
//! is not among our dependencies, and writing float16 bits into a tensor by hand would need
//! `unsafe` pointer writes. So ONNX Runtime converts for us: a one-node `Cast` graph, built in
//! memory with ort's model editor, turns a float32 tensor into a float16 one and back. ONNX
//! Runtime's Cast rounds to nearest-even and handles infinities, NaN and subnormals, so there is
//! no hand-written bit twiddling to get wrong. The sessions run on the CPU, where the host data
//! already is; one per tensor rank, since graph inputs declare a rank.

use std::collections::BTreeMap;
use std::fmt;

use ort::editor::{Graph as EditorGraph, Model, Node, ONNX_DOMAIN, Opset};
use ort::operator::Attribute;
use ort::session::Session;
use ort::value::{
    DynTensor, DynValue, Outlet, Shape, SymbolicDimensions, TensorElementType, TensorRef, ValueType,
};

use super::Runtime;
use crate::ModelError;

/// ONNX's `TensorProto.DataType` numbers, which Cast's `to` attribute takes.
const ONNX_FLOAT: i64 = 1;
const ONNX_FLOAT16: i64 = 10;

/// Converts host float32 data to float16 tensors and float16 tensors back to float32.
pub struct Fp16 {
    runtime: Runtime,
    /// Keyed by (to float16?, rank).
    casts: BTreeMap<(bool, usize), Session>,
}

impl fmt::Debug for Fp16 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fp16")
            .field("loaded", &self.casts.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Fp16 {
    pub fn new(runtime: &Runtime) -> Result<Fp16, ModelError> {
        Ok(Fp16 {
            runtime: runtime.clone(),
            casts: BTreeMap::new(),
        })
    }

    fn cast(&mut self, to_half: bool, rank: usize) -> Result<&mut Session, ModelError> {
        if !self.casts.contains_key(&(to_half, rank)) {
            let session = cast_session(&self.runtime, to_half, rank)
                .map_err(|e| ModelError::Runtime(format!("building the float16 converter: {e}")))?;
            self.casts.insert((to_half, rank), session);
        }
        self.casts
            .get_mut(&(to_half, rank))
            .ok_or_else(|| ModelError::Runtime("float16 converter missing".to_string()))
    }

    /// A float16 tensor (in host memory) holding `data` rounded to nearest-even.
    pub fn to_f16(&mut self, shape: &[usize], data: &[f32]) -> Result<DynValue, ModelError> {
        let fail = |e: &dyn fmt::Display| ModelError::Runtime(format!("float32 → float16: {e}"));
        let input = TensorRef::from_array_view((shape.to_vec(), data)).map_err(|e| fail(&e))?;
        let session = self.cast(true, shape.len())?;
        let mut outputs = session.run(ort::inputs![input]).map_err(|e| fail(&e))?;
        outputs
            .remove("y")
            .ok_or_else(|| fail(&"the converter returned no output"))
    }

    /// The values of a float16 tensor in host memory, as float32 (exact: every float16 is a
    /// float32).
    pub fn to_f32(&mut self, tensor: &DynTensor) -> Result<Vec<f32>, ModelError> {
        let fail = |e: &dyn fmt::Display| ModelError::Runtime(format!("float16 → float32: {e}"));
        if *tensor.data_type() != TensorElementType::Float16 {
            return Err(fail(&format!("the tensor is {}", tensor.data_type())));
        }
        let session = self.cast(false, tensor.shape().len())?;
        let outputs = session.run(ort::inputs![tensor]).map_err(|e| fail(&e))?;
        let (_, data) = outputs["y"]
            .try_extract_tensor::<f32>()
            .map_err(|e| fail(&e))?;
        Ok(data.to_vec())
    }
}

fn cast_session(runtime: &Runtime, to_half: bool, rank: usize) -> ort::Result<Session> {
    let (from, to, onnx_to) = if to_half {
        (
            TensorElementType::Float32,
            TensorElementType::Float16,
            ONNX_FLOAT16,
        )
    } else {
        (
            TensorElementType::Float16,
            TensorElementType::Float32,
            ONNX_FLOAT,
        )
    };
    let symbols: Vec<String> = (0..rank).map(|i| format!("d{i}")).collect();
    let tensor = |ty| ValueType::Tensor {
        ty,
        shape: Shape::new(vec![-1; rank]),
        dimension_symbols: SymbolicDimensions::new(symbols.clone()),
    };
    let mut graph = EditorGraph::new()?;
    graph.set_inputs([Outlet::new("x", tensor(from))])?;
    graph.set_outputs([Outlet::new("y", tensor(to))])?;
    graph.add_node(Node::new(
        "Cast",
        ONNX_DOMAIN,
        "cast",
        ["x"],
        ["y"],
        [Attribute::new("to", onnx_to)?],
    )?)?;
    let mut model = Model::new([Opset::new(ONNX_DOMAIN, 17)?])?;
    model.set_graph(graph)?;
    // A plain CPU session: the data is on the host, and a CUDA session would add two copies.
    let builder = Session::builder(runtime.environment())?.with_intra_threads(1)?;
    model.into_session(&builder)
}
