//! Library discovery (with fake files, then the real library), the execution provider choice,
//! graphs on the worker thread, float16 conversion and IO binding.
//!
//! Tests that load ONNX Runtime need `ORT_DYLIB_PATH` to name libonnxruntime.so.1.31.x
//! (`cargo xtask test` sets it); without it they fail, on purpose, since CI always has it.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use loopsmith_models::ModelError;
use loopsmith_models::runtime::{
    Device, Dim, DiscoveryOptions, Fp16, HostInput, Library, ModelWorker, ProbeError, Provider,
    PythonSearch, Runtime, SessionSpec, Source, Status, discover, discover_with, probe_library,
};
use ort::value::TensorElementType;

fn library_path() -> PathBuf {
    let path = std::env::var_os("ORT_DYLIB_PATH").unwrap_or_else(|| {
        panic!("ORT_DYLIB_PATH must name libonnxruntime.so.1.31.x (`cargo xtask test` sets it)")
    });
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "ORT_DYLIB_PATH={} is not a file",
        path.display()
    );
    path
}

fn runtime() -> Runtime {
    let library = Library::probe(&library_path()).expect("the ORT_DYLIB_PATH library is usable");
    Runtime::new(&library, Device::Auto, Some(1)).expect("runtime")
}

fn graph(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/graphs")
        .join(name)
}

fn touch(path: &Path) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, b"not a real library").expect("write");
}

/// Accepts files whose name contains `good`, calls `old` ones version 1.30, refuses the rest.
fn fake_probe(path: &Path) -> Result<String, ProbeError> {
    let name = path.to_string_lossy();
    if name.contains("good") {
        Ok("1.31.1".to_string())
    } else if name.contains("old") {
        Err(ProbeError::WrongVersion("1.30".to_string()))
    } else {
        Err(ProbeError::LoadFailed("not ELF".to_string()))
    }
}

fn project_lib(root: &Path, name: &str) -> PathBuf {
    root.join(".loopsmith/onnxruntime").join(name)
}

#[test]
fn discovery_goes_in_order_and_says_why_each_candidate_was_skipped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let empty_root = tmp.path().join("empty");
    fs::create_dir_all(&empty_root).expect("mkdir");
    let folder_root = tmp.path().join("folder");
    fs::create_dir_all(project_lib(&folder_root, "libonnxruntime.so")).expect("mkdir");
    let old_root = tmp.path().join("old");
    touch(&project_lib(&old_root, "libonnxruntime.so.1.30.0"));
    let broken_root = tmp.path().join("broken");
    touch(&project_lib(&broken_root, "libonnxruntime.so"));
    let good_root = tmp.path().join("good");
    touch(&project_lib(&good_root, "libonnxruntime.so.1.31.1"));
    let later_root = tmp.path().join("later-good");
    touch(&project_lib(&later_root, "libonnxruntime.so.1.31.1"));

    let mut options = DiscoveryOptions::none();
    options.project_roots = vec![
        empty_root.clone(),
        folder_root,
        old_root,
        broken_root,
        good_root.clone(),
        later_root,
    ];
    options.system_dirs = vec![tmp.path().join("usr/lib")];
    let discovery = discover_with(&options, fake_probe);

    let statuses: Vec<&Status> = discovery.candidates().iter().map(|c| &c.status).collect();
    assert_eq!(
        statuses,
        vec![
            &Status::Missing,
            &Status::NotAFile,
            &Status::WrongVersion {
                found: "1.30".to_string()
            },
            &Status::LoadFailed("not ELF".to_string()),
            &Status::Chosen {
                version: "1.31.1".to_string()
            },
        ],
        "{discovery}"
    );
    assert_eq!(
        discovery.candidates()[0].path,
        Some(project_lib(&empty_root, "libonnxruntime.so*"))
    );
    let library = discovery.library().expect("chosen");
    assert_eq!(
        library.path(),
        project_lib(&good_root, "libonnxruntime.so.1.31.1")
    );
    assert_eq!(library.version(), "1.31.1");
    assert_eq!(
        library.source(),
        &Source::Project {
            root: good_root.clone()
        }
    );
    let report = discovery.to_string();
    assert!(report.contains("skipped: missing"), "{report}");
    assert!(report.contains("skipped: not a file"), "{report}");
    assert!(
        report.contains("wrong version (ONNX Runtime 1.30; loopsmith needs 1.31.x)"),
        "{report}"
    );
    assert!(report.contains("failed to load (not ELF)"), "{report}");
    assert!(report.contains("used: ONNX Runtime 1.31.1"), "{report}");
    assert!(
        report.contains("stopped at the first usable library"),
        "{report}"
    );
}

#[test]
fn configured_path_comes_before_the_environment_and_the_project() {
    let tmp = tempfile::tempdir().expect("tmp");
    let configured = tmp.path().join("configured/good-libonnxruntime.so");
    touch(&configured);
    let env = tmp.path().join("env/good-libonnxruntime.so");
    touch(&env);
    let root = tmp.path().join("root");
    touch(&project_lib(&root, "libonnxruntime.so.good"));

    let mut options = DiscoveryOptions::none();
    options.configured = Some(configured.clone());
    options.env_path = Some(env.clone());
    options.project_roots = vec![root.clone()];
    options.list_all = true;
    let discovery = discover_with(&options, fake_probe);
    let found: Vec<(&Source, &Status)> = discovery
        .candidates()
        .iter()
        .map(|c| (&c.source, &c.status))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                &Source::Configured,
                &Status::Chosen {
                    version: "1.31.1".to_string()
                }
            ),
            (
                &Source::EnvVar,
                &Status::NotTried("the configured path takes precedence".to_string())
            ),
            (
                &Source::Project { root },
                &Status::Usable {
                    version: "1.31.1".to_string()
                }
            ),
        ]
    );
    assert_eq!(discovery.library().expect("chosen").path(), configured);

    // Without a configured path, ORT_DYLIB_PATH wins over the project folder.
    options.configured = None;
    options.list_all = false;
    let discovery = discover_with(&options, fake_probe);
    assert_eq!(discovery.library().expect("chosen").path(), env);
    assert_eq!(discovery.candidates().len(), 1, "{discovery}");
}

#[test]
fn an_unusable_explicit_path_is_an_error_not_a_skip() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    touch(&project_lib(&root, "libonnxruntime.so.good"));
    let mut options = DiscoveryOptions::none();
    options.env_path = Some(tmp.path().join("nowhere/libonnxruntime.so"));
    options.project_roots = vec![root];
    let discovery = discover_with(&options, fake_probe);
    assert_eq!(discovery.candidates()[0].status, Status::Missing);
    assert!(matches!(
        discovery.candidates()[1].status,
        Status::NotTried(_)
    ));
    assert!(discovery.chosen().is_none());
    let Err(ModelError::LibraryNotFound(message)) = discovery.library() else {
        panic!("expected LibraryNotFound");
    };
    assert!(
        message.contains("nowhere/libonnxruntime.so (ORT_DYLIB_PATH): skipped: missing"),
        "{message}"
    );
    assert!(
        message.contains("not tried: an explicit path was given"),
        "{message}"
    );
    assert!(message.contains("cargo xtask setup"), "{message}");
}

#[test]
fn one_file_reached_two_ways_is_listed_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("root");
    let real = project_lib(&root, "libonnxruntime.so.1.31.1");
    touch(&real);
    std::os::unix::fs::symlink(
        "libonnxruntime.so.1.31.1",
        project_lib(&root, "libonnxruntime.so"),
    )
    .expect("symlink");
    let mut options = DiscoveryOptions::none();
    options.project_roots = vec![root];
    options.list_all = true;
    let discovery = discover_with(&options, |_: &Path| Ok("1.31.1".to_string()));
    assert_eq!(discovery.candidates().len(), 1, "{discovery}");
    assert_eq!(
        discovery.candidates()[0].path.as_deref(),
        Some(real.as_path())
    );
}

fn fake_python(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("python3");
    fs::write(&script, format!("#!/bin/sh\n{body}\n")).expect("write script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

#[test]
fn python_package_folder_is_searched_and_its_failures_explained() {
    let tmp = tempfile::tempdir().expect("tmp");
    let package = tmp.path().join("site-packages/onnxruntime");
    touch(&package.join("capi/libonnxruntime.so.1.31.1.good"));
    let mut options = DiscoveryOptions::none();
    options.python = PythonSearch::Interpreter {
        program: fake_python(tmp.path(), &format!("echo {}", package.display())),
        timeout: Duration::from_secs(5),
    };
    let discovery = discover_with(&options, fake_probe);
    let chosen = discovery.chosen().expect("chosen");
    assert_eq!(chosen.source, Source::Python);
    assert_eq!(
        chosen.path.as_deref(),
        Some(package.join("capi/libonnxruntime.so.1.31.1.good").as_path())
    );

    let missing = tempfile::tempdir().expect("tmp");
    options.python = PythonSearch::Interpreter {
        program: fake_python(
            missing.path(),
            "echo \"ModuleNotFoundError: No module named 'onnxruntime'\" >&2; exit 1",
        ),
        timeout: Duration::from_secs(5),
    };
    let discovery = discover_with(&options, fake_probe);
    let Status::Unavailable(why) = &discovery.candidates()[0].status else {
        panic!("{discovery}");
    };
    assert!(why.ends_with("has no onnxruntime package"), "{why}");

    let slow = tempfile::tempdir().expect("tmp");
    options.python = PythonSearch::Interpreter {
        program: fake_python(slow.path(), "exec sleep 30"),
        timeout: Duration::from_millis(200),
    };
    let started = std::time::Instant::now();
    let discovery = discover_with(&options, fake_probe);
    assert!(started.elapsed() < Duration::from_secs(10));
    let Status::Unavailable(why) = &discovery.candidates()[0].status else {
        panic!("{discovery}");
    };
    assert!(why.contains("gave up after 200 ms"), "{why}");
}

#[test]
fn nothing_found_lists_every_place() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut options = DiscoveryOptions::none();
    options.project_roots = vec![tmp.path().to_path_buf()];
    options.system_dirs = vec![tmp.path().join("lib")];
    let discovery = discover_with(&options, fake_probe);
    assert_eq!(discovery.candidates().len(), 2);
    let Err(ModelError::LibraryNotFound(message)) = discovery.library() else {
        panic!("expected LibraryNotFound");
    };
    assert!(
        message.contains(".loopsmith/onnxruntime/libonnxruntime.so*"),
        "{message}"
    );
    assert!(
        message.contains("(system folder): skipped: missing"),
        "{message}"
    );
}

#[test]
fn the_real_library_is_found_through_ort_dylib_path_and_its_version_read() {
    let path = library_path();
    let mut options = DiscoveryOptions::standard(None, Vec::new());
    options.env_path = Some(path.clone());
    let discovery = discover(&options);
    let library = discovery.library().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(library.source(), &Source::EnvVar);
    assert!(library.version().starts_with("1.31"), "{library}");
    assert_eq!(probe_library(&path), Ok(library.version().to_string()));
}

#[test]
fn a_file_that_is_not_onnx_runtime_fails_the_version_check() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fake = tmp.path().join("libonnxruntime.so.1.31.1");
    fs::write(&fake, b"\x7fELF but not really").expect("write");
    assert!(matches!(
        probe_library(&fake),
        Err(ProbeError::LoadFailed(_))
    ));
    let Err(ModelError::LibraryNotFound(message)) = Library::probe(&fake) else {
        panic!("a fake library was accepted");
    };
    assert!(message.contains("failed to load"), "{message}");
}

#[test]
fn auto_falls_back_to_the_cpu_and_says_why() {
    let runtime = runtime();
    let provider = runtime.provider();
    // The CI and development machines have the CPU-only wheel and no GPU.
    let Provider::Cpu { reason } = provider else {
        panic!("expected the CPU here, got {provider}");
    };
    assert!(reason.starts_with("CUDA unavailable: "), "{reason}");
    assert_eq!(provider.name(), "cpu");
    assert!(provider.to_string().starts_with("cpu (CUDA unavailable"));
}

#[test]
fn an_explicitly_requested_gpu_that_is_unusable_is_an_error() {
    let library = Library::probe(&library_path()).expect("library");
    let err = Runtime::new(&library, Device::Cuda(0), None).expect_err("no GPU here");
    let ModelError::Device(message) = &err else {
        panic!("expected a device error, got {err}");
    };
    assert!(
        message.starts_with("cuda:0 was requested but cannot be used: "),
        "{message}"
    );
    let cpu = Runtime::new(&library, Device::Cpu, None).expect("cpu");
    assert_eq!(cpu.provider().reason(), Some("CPU requested"));
}

#[test]
fn a_second_different_library_in_one_process_is_refused() {
    let _first = runtime();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tmp");
    let other = dir.path().join("libonnxruntime.so.1.31.1");
    // ORT_DYLIB_PATH may name the unversioned symlink; link the file it points at, not the
    // (relative, so dangling elsewhere) symlink itself.
    let source = fs::canonicalize(library_path()).expect("resolve the library path");
    // A hard link is a second path to the same file; the loader treats it as the same library,
    // so probing it does not load a second copy, but the runtime must still refuse the switch.
    if fs::hard_link(&source, &other).is_err() {
        fs::copy(&source, &other).expect("copy the library");
    }
    let library = Library::probe(&other).expect("probe");
    let err = Runtime::new(&library, Device::Cpu, None).expect_err("a second library");
    let message = err.to_string();
    assert!(
        message.contains("already loaded ONNX Runtime from"),
        "{message}"
    );
    assert!(message.contains("restart to switch"), "{message}");
}

#[test]
fn a_graph_runs_on_the_worker_thread_and_returns_the_right_numbers() {
    let runtime = runtime();
    let worker = ModelWorker::spawn(
        runtime,
        vec![SessionSpec::new("affine", graph("matmul_add.onnx"))],
        4,
    )
    .expect("worker");
    let caller = std::thread::current().id();
    let (thread_name, on_other_thread, outputs) = worker
        .call(move |sessions| {
            let here = std::thread::current();
            let graph = sessions.graph("affine")?;
            let outputs = graph.run_host(&[(
                "x",
                HostInput::F32 {
                    shape: &[2, 4],
                    data: &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0],
                },
            )])?;
            Ok((
                here.name().map(str::to_string),
                here.id() != caller,
                outputs,
            ))
        })
        .expect("call");
    assert_eq!(thread_name.as_deref(), Some("loopsmith-models"));
    assert!(on_other_thread);
    let y = &outputs["y"];
    assert_eq!(y.shape, vec![2, 3]);
    // Row 1 picks W's first row, row 2 adds its second and third; then b = [0.5, -1, 2].
    assert_eq!(y.data, vec![1.5, 1.0, 5.0, 11.5, 12.0, 17.0]);
    worker.shutdown().expect("shutdown");
}

#[test]
fn graph_info_lists_names_types_and_shapes() {
    let runtime = runtime();
    let graph = runtime
        .load(&SessionSpec::new("affine", graph("matmul_add.onnx")))
        .expect("load");
    let info = graph.info();
    assert_eq!(info.inputs.len(), 1);
    let x = &info.inputs[0];
    assert_eq!(x.name, "x");
    assert_eq!(x.element, Some(TensorElementType::Float32));
    assert_eq!(
        x.dims,
        vec![Dim::Dynamic(Some("batch".to_string())), Dim::Fixed(4)]
    );
    assert_eq!(x.to_string(), "x f32[batch, 4]");
    assert_eq!(info.output("y").map(|t| t.rank()), Some(2));
}

#[test]
fn worker_reports_load_errors_panics_and_stopping() {
    let runtime = runtime();
    let missing = graph("no-such.onnx");
    let err = ModelWorker::spawn(
        runtime.clone(),
        vec![SessionSpec::new("gone", missing.clone())],
        1,
    )
    .expect_err("a missing graph");
    let message = err.to_string();
    assert!(message.contains("loading graph gone from"), "{message}");
    assert!(message.contains("no-such.onnx"), "{message}");

    let worker = ModelWorker::spawn(runtime, Vec::new(), 1).expect("worker");
    let err = worker
        .call(|_| -> Result<(), ModelError> { panic!("boom") })
        .expect_err("a panicking job");
    assert!(err.to_string().contains("panicked: boom"), "{err}");
    // Still serving after the panic.
    assert_eq!(worker.call(|s| Ok(s.names().count())).expect("call"), 0);
    let err = worker
        .call(|s| s.graph("denoiser").map(drop))
        .expect_err("nothing loaded");
    assert!(
        err.to_string()
            .contains("no graph named denoiser is loaded (loaded: none)")
    );

    let handle = worker.handle();
    worker.shutdown().expect("shutdown");
    assert!(matches!(
        handle.call(|_| Ok(())),
        Err(ModelError::WorkerStopped)
    ));
}

#[test]
fn a_full_queue_turns_jobs_away_without_blocking() {
    let worker = ModelWorker::spawn(runtime(), Vec::new(), 1).expect("worker");
    let handle = worker.handle();
    let (release, hold) = mpsc::channel::<()>();
    let (started, has_started) = mpsc::channel::<()>();
    let busy = handle
        .submit(move |_| {
            let _ = started.send(());
            let _ = hold.recv();
            Ok(1)
        })
        .expect("first");
    has_started.recv().expect("the first job runs");
    let queued = handle.try_submit(|_| Ok(2)).expect("one fits in the queue");
    assert!(matches!(
        handle.try_submit(|_| Ok(3)),
        Err(ModelError::WorkerBusy)
    ));
    assert!(busy.wait_timeout(Duration::from_millis(50)).is_none());
    release.send(()).expect("release");
    assert_eq!(busy.wait().expect("first"), 1);
    assert_eq!(queued.wait().expect("second"), 2);
}

#[test]
fn float16_graphs_take_and_give_float32_on_the_host() {
    let runtime = runtime();
    let mut graph = runtime
        .load(&SessionSpec::new("half", graph("half_io.onnx")))
        .expect("load");
    assert_eq!(
        graph.info().inputs[0].element,
        Some(TensorElementType::Float16)
    );
    let outputs = graph
        .run_host(&[(
            "x",
            HostInput::F32 {
                shape: &[4],
                data: &[1.5, 0.1, -3.0, 40000.0],
            },
        )])
        .expect("run");
    let y = &outputs["y"];
    assert_eq!(y.shape, vec![4]);
    // 0.1 rounds to 0.0999755859375 in float16; 80000 is past float16's 65504 maximum.
    assert_eq!(y.data[..3], [3.0, 0.199_951_17, -6.0]);
    assert_eq!(y.data[3], f32::INFINITY);
}

#[test]
fn float16_conversion_rounds_like_ieee() {
    let runtime = runtime();
    let mut fp16 = Fp16::new(&runtime).expect("fp16");
    let input = [1.0, 0.1, 1e-7, 70000.0, -0.0, 65504.0, 2049.0, 2051.0];
    let half = fp16.to_f16(&[2, 4], &input).expect("to f16");
    let tensor = half
        .downcast::<ort::value::DynTensorValueType>()
        .expect("tensor");
    assert_eq!(**tensor.shape(), [2, 4]);
    let back = fp16.to_f32(&tensor).expect("to f32");
    // 1e-7 becomes the subnormal 2 × 2⁻²⁴; 2049 and 2051 sit halfway between float16 neighbours
    // (spacing 2) and round to the even one.
    let expected = [
        1.0,
        0.099_975_586,
        1.192_092_9e-7,
        f32::INFINITY,
        -0.0,
        65504.0,
        2048.0,
        2052.0,
    ];
    assert_eq!(back, expected);
    assert!(back[4].is_sign_negative());
    let nan = fp16.to_f16(&[1], &[f32::NAN]).expect("nan");
    let nan = nan
        .downcast::<ort::value::DynTensorValueType>()
        .expect("tensor");
    assert!(fp16.to_f32(&nan).expect("back")[0].is_nan());
}

#[test]
fn io_binding_keeps_values_bound_and_feeds_outputs_back() {
    let runtime = runtime();
    let mut graph = runtime
        .load(
            &SessionSpec::new("step", graph("step.onnx"))
                .with_optimization(loopsmith_models::runtime::Optimization::Disabled)
                .with_intra_op_threads(1),
        )
        .expect("load");
    let cond = graph
        .input_value(
            "cond",
            HostInput::F32 {
                shape: &[1, 4],
                data: &[1.0, 2.0, 3.0, 4.0],
            },
        )
        .expect("cond");
    let mut latent = graph
        .input_value(
            "latent",
            HostInput::F32 {
                shape: &[1, 4],
                data: &[0.0; 4],
            },
        )
        .expect("latent");
    let mut binding = graph.binding().expect("binding");
    // Bound once, used by every step.
    binding.bind_input("cond", &cond).expect("bind cond");
    for _ in 0..3 {
        binding.bind_input("latent", &latent).expect("bind latent");
        let mut outputs = graph.run_binding(&binding).expect("run");
        latent = outputs.remove("next").expect("next");
    }
    let host = graph.to_host("next", &latent).expect("to host");
    assert_eq!(host.shape, vec![1, 4]);
    // next = latent / 2 + cond, three times from zero.
    assert_eq!(host.data, vec![1.75, 3.5, 5.25, 7.0]);
}

#[test]
fn inputs_of_the_wrong_type_or_name_are_refused_with_the_names_involved() {
    let runtime = runtime();
    let mut graph = runtime
        .load(&SessionSpec::new("affine", graph("matmul_add.onnx")))
        .expect("load");
    let err = graph
        .input_value(
            "x",
            HostInput::I64 {
                shape: &[1, 4],
                data: &[1, 2, 3, 4],
            },
        )
        .expect_err("int64 into a float input");
    assert_eq!(
        err.to_string(),
        "graph affine input x: given int64 data, the graph wants f32"
    );
    let err = graph
        .run_host(&[(
            "sample",
            HostInput::F32 {
                shape: &[1],
                data: &[0.0],
            },
        )])
        .expect_err("unknown input");
    assert_eq!(
        err.to_string(),
        "graph affine has no input named sample (inputs: x)"
    );
}
