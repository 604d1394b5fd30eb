//! What several of this crate's test binaries share.

use loopsmith_models::runtime::{self, Device, DiscoveryOptions, Runtime};

/// ONNX Runtime on the CPU from `ORT_DYLIB_PATH`, with `threads` intra-op threads (`None`: all
/// cores).
pub fn cpu_runtime(threads: Option<usize>) -> Runtime {
    assert!(
        std::env::var_os("ORT_DYLIB_PATH").is_some(),
        "ORT_DYLIB_PATH must name libonnxruntime.so.1.31.x (`cargo xtask test` sets it)"
    );
    let discovery = runtime::discover(&DiscoveryOptions::standard(None, vec![]));
    let library = discovery.library().expect("ONNX Runtime found");
    Runtime::new(&library, Device::Cpu, threads).expect("runtime")
}
