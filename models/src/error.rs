/// Everything that can go wrong loading or running a model. Messages name the file, tensor or
/// setting involved.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("model bundle {path}: {message}")]
    Bundle { path: String, message: String },
    #[error("{file} does not match the sha256 in model.toml (expected {expected}, found {actual})")]
    Hash {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("ONNX Runtime library not found; {0}")]
    LibraryNotFound(String),
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("scheduler: {0}")]
    Scheduler(String),
    #[error("{0}")]
    Shape(String),
    #[error("cancelled")]
    Cancelled,
    #[error("device: {0}")]
    Device(String),
    #[error("the model worker has stopped")]
    WorkerStopped,
    #[error("the model worker's queue is full")]
    WorkerBusy,
}
