//! The schedulers against numbers diffusers computed (`tests/fixtures/schedulers.json`, written
//! by `export/scheduler_reference.py`), plus the configuration and error behaviour.
//!
//! Tolerances: whole-number timesteps exact, others 1e-4 relative; sigmas and init_noise_sigma
//! 1e-5 relative; scaled inputs and step outputs 1e-5 absolute. Run with `--nocapture` to see
//! the largest errors per scheduler.

use std::collections::BTreeMap;

use loopsmith_models::ModelError;
use loopsmith_models::scheduler::{
    self, BetaSchedule, PredictionType, Scheduler, SchedulerConfig, SchedulerKind, TimestepSpacing,
    linspace_sigmas,
};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Fixture {
    versions: BTreeMap<String, String>,
    sample: Vec<f32>,
    model_output: Vec<f32>,
    noise: Vec<f32>,
    sd_alphas_cumprod: BTreeMap<String, Vec<f32>>,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    config: serde_json::Value,
    image_seq_len: Option<usize>,
    sigmas: Option<String>,
    schedules: Vec<Schedule>,
    detail: Vec<Detail>,
}

#[derive(Debug, Deserialize)]
struct Schedule {
    steps: usize,
    #[serde(default)]
    diffusers_nan: bool,
    /// Read as f32: the JSON holds the shortest decimal of each f32 value.
    #[serde(default)]
    timesteps: Vec<f32>,
    sigmas: Option<Vec<f32>>,
    init_noise_sigma: Option<f32>,
}

#[derive(Debug, Deserialize)]
struct Detail {
    step_index: usize,
    scaled: Option<Vec<f32>>,
    prev_sample: Vec<f32>,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/schedulers.json"
    );
    let text = std::fs::read_to_string(path).expect("read the scheduler fixture");
    serde_json::from_str(&text).expect("parse the scheduler fixture")
}

fn build_case(
    case: &Case,
    config: &SchedulerConfig,
    steps: usize,
) -> Result<Box<dyn Scheduler>, ModelError> {
    match case.sigmas.as_deref() {
        Some("linspace") => {
            scheduler::build_with_sigmas(config, &linspace_sigmas(steps), case.image_seq_len)
        }
        Some(other) => panic!("{}: unknown sigma source {other}", case.name),
        None => scheduler::build(config, steps, case.image_seq_len),
    }
}

fn rel_err(actual: f64, expected: f64) -> f64 {
    if actual == expected {
        0.0
    } else {
        (actual - expected).abs() / expected.abs().max(1e-30)
    }
}

fn max_abs_err(actual: &[f32], expected: &[f32]) -> f64 {
    assert_eq!(actual.len(), expected.len());
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (f64::from(*a) - f64::from(*e)).abs())
        .fold(0.0, f64::max)
}

/// Largest errors seen, per scheduler kind.
#[derive(Debug, Default, Clone, Copy)]
struct Worst {
    timestep_rel: f64,
    sigma_rel: f64,
    init_rel: f64,
    scaled_abs: f64,
    step_abs: f64,
}

#[test]
fn matches_diffusers() {
    let fx = fixture();
    eprintln!("reference: {:?}", fx.versions);
    let mut worst: BTreeMap<&'static str, Worst> = BTreeMap::new();
    for case in &fx.cases {
        let config: SchedulerConfig = serde_json::from_value(case.config.clone())
            .unwrap_or_else(|e| panic!("{}: config: {e}", case.name));
        let w = worst.entry(config.kind.as_str()).or_default();
        for sched in &case.schedules {
            let at = format!("{} with {} steps", case.name, sched.steps);
            let built = build_case(case, &config, sched.steps);
            if sched.diffusers_nan {
                let err = built.expect_err(&at);
                assert!(matches!(err, ModelError::Scheduler(_)), "{at}: {err}");
                continue;
            }
            let s = built.unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(s.kind(), config.kind, "{at}");
            assert_eq!(
                s.timesteps().len(),
                sched.timesteps.len(),
                "{at}: timesteps"
            );
            for (&a, &e) in s.timesteps().iter().zip(&sched.timesteps) {
                if e.fract() == 0.0 && config.kind != SchedulerKind::FlowMatchEuler {
                    assert_eq!(a, e, "{at}: timesteps {:?}", s.timesteps());
                } else {
                    let r = rel_err(f64::from(a), f64::from(e));
                    w.timestep_rel = w.timestep_rel.max(r);
                    assert!(r <= 1e-4, "{at}: timestep {a} vs {e}");
                }
            }
            match (&sched.sigmas, s.sigmas()) {
                (Some(expected), Some(actual)) => {
                    assert_eq!(actual.len(), expected.len(), "{at}: sigmas");
                    for (a, e) in actual.iter().zip(expected) {
                        let r = rel_err(f64::from(*a), f64::from(*e));
                        w.sigma_rel = w.sigma_rel.max(r);
                        assert!(r <= 1e-5, "{at}: sigma {a} vs {e}");
                    }
                }
                (None, None) => {}
                (e, a) => panic!("{at}: sigmas expected {e:?}, got {a:?}"),
            }
            if let Some(e) = sched.init_noise_sigma {
                let r = rel_err(f64::from(s.init_noise_sigma()), f64::from(e));
                w.init_rel = w.init_rel.max(r);
                assert!(
                    r <= 1e-5,
                    "{at}: init_noise_sigma {} vs {e}",
                    s.init_noise_sigma()
                );
            }
        }

        let s = build_case(case, &config, 4).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(case.detail.len(), s.timesteps().len(), "{}", case.name);
        for d in &case.detail {
            let at = format!("{} step {}", case.name, d.step_index);
            let scaled = s.scale_model_input(&fx.sample, d.step_index).expect(&at);
            match &d.scaled {
                Some(expected) => {
                    let e = max_abs_err(&scaled, expected);
                    w.scaled_abs = w.scaled_abs.max(e);
                    assert!(e <= 1e-5, "{at}: scale_model_input off by {e}");
                }
                None => assert_eq!(scaled, fx.sample, "{at}: scale_model_input is the identity"),
            }
            let noise = s.needs_noise(d.step_index).then_some(fx.noise.as_slice());
            let prev = s
                .step(&fx.model_output, d.step_index, &fx.sample, noise)
                .expect(&at);
            let e = max_abs_err(&prev, &d.prev_sample);
            w.step_abs = w.step_abs.max(e);
            assert!(e <= 1e-5, "{at}: step off by {e}");

            let mut in_place = fx.sample.clone();
            s.step_in_place(&fx.model_output, d.step_index, &mut in_place, noise)
                .expect(&at);
            assert_eq!(in_place, prev, "{at}: step_in_place");
        }
    }
    for (kind, w) in &worst {
        eprintln!("{kind:>16}: {w:?}");
    }
    assert_eq!(worst.len(), 4, "every scheduler kind is covered");
}

#[test]
fn alphas_cumprod_match_torch() {
    let fx = fixture();
    for (name, schedule) in [
        ("linear", BetaSchedule::Linear),
        ("scaled_linear", BetaSchedule::ScaledLinear),
    ] {
        let mut config = SchedulerConfig::new(SchedulerKind::Ddim);
        config.beta_start = 0.00085;
        config.beta_end = 0.012;
        config.beta_schedule = schedule;
        let ours = config.alphas_cumprod();
        let theirs = &fx.sd_alphas_cumprod[name];
        assert_eq!(ours.len(), theirs.len());
        let mut worst = 0.0f64;
        for (a, e) in ours.iter().zip(theirs) {
            worst = worst.max(rel_err(f64::from(*a), f64::from(*e)));
        }
        eprintln!("alphas_cumprod {name}: worst relative error {worst:e}");
        assert!(worst <= 1e-6, "{name}: {worst}");
    }
}

/// The `[scheduler]` table of the example in BUNDLE.md.
const BUNDLE_EXAMPLE: &str = r#"
kind = "euler_discrete"        # euler_discrete | ddim | lcm | flow_match_euler
num_train_timesteps = 1000
beta_start = 0.00085
beta_end = 0.012
beta_schedule = "linear"       # linear | scaled_linear
timestep_spacing = "trailing"  # trailing | leading | linspace
prediction_type = "epsilon"    # epsilon | v_prediction | sample (flow_match: velocity)
steps_offset = 0
clip_sample = false            # ddim
set_alpha_to_one = false       # ddim
original_inference_steps = 50  # lcm
shift = 1.0                    # flow_match_euler
use_dynamic_shifting = false   # flow_match_euler
base_shift = 0.5
max_shift = 1.15
base_image_seq_len = 256
max_image_seq_len = 4096
shift_terminal = 0.0           # 0 = none
"#;

#[test]
fn bundle_example_table_parses() {
    let config = SchedulerConfig::from_toml(BUNDLE_EXAMPLE).expect("the BUNDLE.md table parses");
    assert_eq!(config.kind, SchedulerKind::EulerDiscrete);
    assert_eq!(config.beta_schedule, BetaSchedule::Linear);
    assert_eq!(config.timestep_spacing, TimestepSpacing::Trailing);
    assert_eq!(config.prediction_type, PredictionType::Epsilon);
    let s = scheduler::build(&config, 4, None).expect("builds");
    assert_eq!(s.timesteps(), &[999.0, 749.0, 499.0, 249.0]);

    // Inside a whole model.toml, as the bundle reader will see it.
    #[derive(Deserialize)]
    struct Manifest {
        scheduler: SchedulerConfig,
    }
    let manifest: Manifest = toml::from_str(&format!("format = 1\n[scheduler]\n{BUNDLE_EXAMPLE}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.scheduler, config);
}

#[test]
fn config_round_trips_through_toml() {
    let config = SchedulerConfig::from_toml(BUNDLE_EXAMPLE).expect("parses");
    let text = toml::to_string(&config).expect("serialises");
    assert_eq!(SchedulerConfig::from_toml(&text).expect("reparses"), config);
}

#[test]
fn omitted_fields_take_the_class_defaults() {
    let ddim = SchedulerConfig::from_toml("kind = \"ddim\"").expect("parses");
    assert!(ddim.clip_sample && ddim.set_alpha_to_one);
    assert_eq!(ddim.timestep_spacing, TimestepSpacing::Leading);
    assert_eq!((ddim.beta_start, ddim.beta_end), (0.0001, 0.02));

    let lcm = SchedulerConfig::from_toml("kind = \"lcm\"").expect("parses");
    assert_eq!(lcm.beta_schedule, BetaSchedule::ScaledLinear);
    assert_eq!((lcm.beta_start, lcm.beta_end), (0.00085, 0.012));
    assert!(!lcm.clip_sample);
    assert_eq!(lcm.original_inference_steps, 50);
    assert_eq!(lcm.timestep_scaling, 10.0);

    let euler = SchedulerConfig::from_toml("kind = \"euler_discrete\"").expect("parses");
    assert_eq!(euler.timestep_spacing, TimestepSpacing::Linspace);

    let flow = SchedulerConfig::from_toml("kind = \"flow_match_euler\"").expect("parses");
    assert_eq!(flow.prediction_type, PredictionType::Velocity);
    assert_eq!(flow.shift, 1.0);
    assert_eq!(flow.shift_terminal, 0.0);
}

fn scheduler_error(result: Result<impl Sized, ModelError>) -> String {
    match result {
        Err(ModelError::Scheduler(msg)) => msg,
        Err(other) => panic!("expected a scheduler error, got {other}"),
        Ok(_) => panic!("expected a scheduler error"),
    }
}

#[test]
fn bad_tables_are_refused_with_a_reason() {
    let err = |text: &str| match SchedulerConfig::from_toml(text) {
        Err(ModelError::Scheduler(msg)) => msg,
        other => panic!("{text}: expected an error, got {other:?}"),
    };
    assert!(
        err("kind = \"euler_discrete\"\nuse_karras_sigmas = true").contains("use_karras_sigmas")
    );
    assert!(err("kind = \"heun\"").contains("heun"));
    assert!(err("beta_start = 0.1").contains("kind"));
    assert!(err("kind = \"ddim\"\nprediction_type = \"velocity\"").contains("flow_match_euler"));
    assert!(err("kind = \"flow_match_euler\"\nprediction_type = \"epsilon\"").contains("velocity"));
    assert!(err("kind = \"ddim\"\nbeta_end = 1.5").contains("beta_end"));
    assert!(err("kind = \"flow_match_euler\"\nshift = 0.0").contains("shift"));
    assert!(err("kind = \"flow_match_euler\"\nshift_terminal = 1.0").contains("shift_terminal"));
    assert!(
        err("kind = \"lcm\"\noriginal_inference_steps = 2000").contains("original_inference_steps")
    );
    assert!(err("kind = \"ddim\"\nnum_train_timesteps = 1").contains("num_train_timesteps"));
    assert!(
        err("kind = \"flow_match_euler\"\nuse_dynamic_shifting = true\nbase_image_seq_len = 4096")
            .contains("base_image_seq_len")
    );
}

#[test]
fn bad_step_counts_are_refused() {
    for kind in [
        SchedulerKind::EulerDiscrete,
        SchedulerKind::Ddim,
        SchedulerKind::Lcm,
        SchedulerKind::FlowMatchEuler,
    ] {
        let config = SchedulerConfig::new(kind);
        assert!(scheduler_error(scheduler::build(&config, 0, None)).contains("at least 1"));
        assert!(scheduler_error(scheduler::build(&config, 1001, None)).contains("1000"));
    }
    let lcm = SchedulerConfig::new(SchedulerKind::Lcm);
    assert!(scheduler_error(scheduler::build(&lcm, 51, None)).contains("original_inference_steps"));

    let mut flow = SchedulerConfig::new(SchedulerKind::FlowMatchEuler);
    flow.use_dynamic_shifting = true;
    assert!(scheduler_error(scheduler::build(&flow, 4, None)).contains("image_seq_len"));
    assert!(scheduler::build(&flow, 4, Some(1024)).is_ok());
    flow.shift_terminal = 0.1;
    assert!(scheduler_error(scheduler::build(&flow, 1, Some(1024))).contains("at least 2 steps"));

    let euler = SchedulerConfig::new(SchedulerKind::EulerDiscrete);
    assert!(
        scheduler_error(scheduler::build_with_sigmas(&euler, &[1.0], None))
            .contains("flow_match_euler")
    );
    let flow = SchedulerConfig::new(SchedulerKind::FlowMatchEuler);
    assert!(
        scheduler_error(scheduler::build_with_sigmas(&flow, &[1.0, 0.0], None)).contains("(0, 1]")
    );
}

#[test]
fn trailing_rounding_artefact() {
    // numpy's arange gives 1000 / 61 one value too many; diffusers' Euler then runs 62 steps
    // ending at timestep -1 (its sigma clamps to the first), and so does ours.
    let mut config = SchedulerConfig::new(SchedulerKind::EulerDiscrete);
    config.timestep_spacing = TimestepSpacing::Trailing;
    let euler = scheduler::build(&config, 61, None).expect("builds");
    assert_eq!(euler.timesteps().len(), 62);
    assert_eq!(euler.timesteps().last(), Some(&-1.0));
    // DDIM would index alphas_cumprod[-1] (the last one, by Python's wrap-around): refused.
    config.kind = SchedulerKind::Ddim;
    config.clip_sample = false;
    let msg = scheduler_error(scheduler::build(&config, 61, None));
    assert!(msg.contains("timestep -1"), "{msg}");
    // Leading spacing with an offset that runs past the last training timestep.
    config.timestep_spacing = TimestepSpacing::Leading;
    config.steps_offset = 1;
    let msg = scheduler_error(scheduler::build(&config, 1000, None));
    assert!(msg.contains("timestep 1000"), "{msg}");
}

#[test]
fn step_arguments_are_checked() {
    let config = SchedulerConfig::new(SchedulerKind::Lcm);
    let s = scheduler::build(&config, 4, None).expect("builds");
    let x = vec![0.5f32; 6];
    assert!(s.needs_noise(0) && s.needs_noise(2) && !s.needs_noise(3));
    assert!(scheduler_error(s.step(&x, 0, &x, None)).contains("noise"));
    assert!(scheduler_error(s.step(&x, 0, &x, Some(&x[..3]))).contains("noise"));
    assert!(s.step(&x, 3, &x, None).is_ok());
    assert!(scheduler_error(s.step(&x, 4, &x, None)).contains("step index 4"));
    assert!(scheduler_error(s.step(&x[..5], 3, &x, None)).contains("model output"));
    assert!(scheduler_error(s.scale_model_input(&x, 9)).contains("step index 9"));
}

#[test]
fn a_full_euler_loop_denoises_towards_the_prediction() {
    // With an epsilon model that always predicts the true noise, Euler recovers the clean
    // sample exactly at sigma 0.
    let mut config = SchedulerConfig::new(SchedulerKind::EulerDiscrete);
    config.timestep_spacing = TimestepSpacing::Trailing;
    let s = scheduler::build(&config, 8, None).expect("builds");
    let clean = [0.25f32, -0.5, 1.0];
    let noise = [1.0f32, -1.0, 0.5];
    let sigma0 = s.init_noise_sigma();
    let mut x: Vec<f32> = clean
        .iter()
        .zip(&noise)
        .map(|(c, n)| c + sigma0 * n)
        .collect();
    for i in 0..s.timesteps().len() {
        s.step_in_place(&noise, i, &mut x, None).expect("steps");
    }
    for (a, c) in x.iter().zip(&clean) {
        assert!((a - c).abs() < 1e-4, "{x:?}");
    }
}

fn any_kind() -> impl Strategy<Value = SchedulerKind> {
    prop_oneof![
        Just(SchedulerKind::EulerDiscrete),
        Just(SchedulerKind::Ddim),
        Just(SchedulerKind::Lcm),
        Just(SchedulerKind::FlowMatchEuler),
    ]
}

fn any_spacing() -> impl Strategy<Value = TimestepSpacing> {
    prop_oneof![
        Just(TimestepSpacing::Trailing),
        Just(TimestepSpacing::Leading),
        Just(TimestepSpacing::Linspace),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn schedules_are_well_formed_or_refused(
        kind in any_kind(),
        spacing in any_spacing(),
        steps in 0usize..1100,
        offset in 0usize..3,
        shift in 0.5f64..8.0,
        dynamic in any::<bool>(),
        terminal in prop_oneof![Just(0.0f64), 0.01f64..0.5],
        seq_len in 1usize..20000,
    ) {
        let mut config = SchedulerConfig::new(kind);
        config.timestep_spacing = spacing;
        config.steps_offset = offset;
        config.shift = shift;
        config.use_dynamic_shifting = dynamic;
        config.shift_terminal = terminal;
        config.original_inference_steps = 1000;
        match scheduler::build(&config, steps, Some(seq_len)) {
            Err(ModelError::Scheduler(_)) => {}
            Err(other) => prop_assert!(false, "unexpected error {other}"),
            Ok(s) => {
                prop_assert!(steps >= 1);
                prop_assert!(s.timesteps().len() >= steps);
                prop_assert!(s.timesteps().iter().all(|t| t.is_finite()));
                prop_assert!(s.init_noise_sigma().is_finite());
                if let Some(sigmas) = s.sigmas() {
                    prop_assert_eq!(sigmas.len(), s.timesteps().len() + 1);
                    prop_assert!(sigmas.iter().all(|x| x.is_finite()));
                    prop_assert_eq!(sigmas.last(), Some(&0.0));
                }
                let x = vec![0.25f32; 4];
                for i in 0..s.timesteps().len() {
                    let noise = s.needs_noise(i).then_some(x.as_slice());
                    let next = s.step(&x, i, &x, noise);
                    prop_assert!(next.is_ok());
                }
            }
        }
    }
}
