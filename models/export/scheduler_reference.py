#!/usr/bin/env python3
"""Reference numbers for loopsmith's Rust schedulers, computed with diffusers itself.

Writes models/tests/fixtures/schedulers.json, which `cargo test -p loopsmith-models --test
schedulers` reads. The JSON is committed: CI has no torch and only reads it. Re-run this script
(and commit the result) only when the case matrix below changes or diffusers' maths does.

Run it from the repository root, in any environment with PyPI's CPU wheels:

    python3 -m venv /tmp/schedvenv
    /tmp/schedvenv/bin/pip install torch diffusers numpy
    /tmp/schedvenv/bin/python models/export/scheduler_reference.py

It was last run with diffusers 0.42.1, torch 2.15.0 and numpy 2.4.6 (recorded in the JSON).

Every case holds a `config`, written exactly as the `[scheduler]` table of a bundle's model.toml
(`kind` plus diffusers' field names; see models/BUNDLE.md), so the Rust side deserialises the
same table it reads from bundles. For each case the script records, per step count, the
timesteps, the sigmas (Euler and flow matching) and init_noise_sigma, and for a 4-step run, for
every step index, `scale_model_input` (where it is not the identity) and one full `step` on a
small fixed tensor. Steps are independent: each starts from the same `sample` and
`model_output`, so an error cannot hide behind an earlier one. LCM's re-noising draws from
`randn_tensor`; the script substitutes the fixed `noise` tensor, which the Rust caller passes in.
Where diffusers produces NaN (shift_terminal with a single step) the schedule is recorded as
`diffusers_nan` and the Rust side must refuse the configuration.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys

import numpy as np
import torch
import diffusers
from diffusers import (
    DDIMScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    LCMScheduler,
)
import diffusers.schedulers.scheduling_lcm as scheduling_lcm

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "schedulers.json"

SHAPE = [1, 2, 2, 3, 3]  # [batch, channels, frames, height, width]; the maths is elementwise
STEP_COUNTS = [1, 2, 4, 8, 25]
DETAIL_STEPS = 4

CLASSES = {
    "euler_discrete": EulerDiscreteScheduler,
    "ddim": DDIMScheduler,
    "lcm": LCMScheduler,
    "flow_match_euler": FlowMatchEulerDiscreteScheduler,
}

# Stable Diffusion 1.5's betas, which AnimateDiff (and its Lightning and LCM distillations) keep.
SD_BETAS = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012}
# LTX-Video's FlowMatchEulerDiscreteScheduler config (Lightricks/LTX-Video scheduler_config.json).
LTX = {
    "use_dynamic_shifting": True,
    "base_shift": 0.95,
    "max_shift": 2.05,
    "base_image_seq_len": 1024,
    "max_image_seq_len": 4096,
    "shift_terminal": 0.1,
}


def calculate_shift(image_seq_len, base_seq_len=256, max_seq_len=4096, base_shift=0.5, max_shift=1.15):
    """Copy of diffusers.pipelines.flux.pipeline_flux.calculate_shift (that module needs transformers)."""
    m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    b = base_shift - m * base_seq_len
    mu = image_seq_len * m + b
    return mu


def cases():
    out = []
    # Euler: spacing x beta schedule x prediction type. Leading uses SD's steps_offset = 1.
    for spacing in ["trailing", "leading", "linspace"]:
        for schedule in ["linear", "scaled_linear"]:
            for prediction in ["epsilon", "v_prediction"]:
                cfg = {"kind": "euler_discrete", **SD_BETAS, "beta_schedule": schedule,
                       "timestep_spacing": spacing, "prediction_type": prediction,
                       "steps_offset": 1 if spacing == "leading" else 0}
                extra = [61] if (spacing, schedule, prediction) == ("trailing", "linear", "epsilon") else []
                out.append({"name": f"euler_{spacing}_{schedule}_{prediction}", "config": cfg,
                            "extra_steps": extra})
    out.append({"name": "euler_trailing_linear_sample", "config": {
        "kind": "euler_discrete", **SD_BETAS, "beta_schedule": "linear",
        "timestep_spacing": "trailing", "prediction_type": "sample"}})
    out.append({"name": "euler_defaults", "config": {"kind": "euler_discrete"}})

    # DDIM: set_alpha_to_one x clip_sample with SD's leading spacing, then other spacings and
    # prediction types.
    for one in [True, False]:
        for clip in [True, False]:
            out.append({"name": f"ddim_leading_alpha1_{one}_clip_{clip}".lower(), "config": {
                "kind": "ddim", **SD_BETAS, "beta_schedule": "scaled_linear",
                "timestep_spacing": "leading", "steps_offset": 1, "prediction_type": "epsilon",
                "set_alpha_to_one": one, "clip_sample": clip}})
    out.append({"name": "ddim_trailing_v_prediction", "config": {
        "kind": "ddim", **SD_BETAS, "beta_schedule": "linear", "timestep_spacing": "trailing",
        "prediction_type": "v_prediction", "set_alpha_to_one": False, "clip_sample": False}})
    out.append({"name": "ddim_linspace_sample_clip2", "config": {
        "kind": "ddim", **SD_BETAS, "beta_schedule": "scaled_linear", "timestep_spacing": "linspace",
        "prediction_type": "sample", "clip_sample": True, "clip_sample_range": 2.0}})
    out.append({"name": "ddim_defaults", "config": {"kind": "ddim"}})

    # LCM: AnimateLCM-style (linear betas), LCM-LoRA-style (scaled_linear), v-prediction + clip.
    out.append({"name": "lcm_linear_epsilon", "config": {
        "kind": "lcm", **SD_BETAS, "beta_schedule": "linear", "original_inference_steps": 50,
        "prediction_type": "epsilon", "clip_sample": False, "set_alpha_to_one": True,
        "steps_offset": 1, "timestep_spacing": "linspace"}})
    out.append({"name": "lcm_scaled_linear_alpha1_false", "config": {
        "kind": "lcm", **SD_BETAS, "beta_schedule": "scaled_linear", "original_inference_steps": 50,
        "set_alpha_to_one": False}})
    out.append({"name": "lcm_v_prediction_clip", "config": {
        "kind": "lcm", **SD_BETAS, "beta_schedule": "scaled_linear", "original_inference_steps": 50,
        "prediction_type": "v_prediction", "clip_sample": True, "clip_sample_range": 1.5,
        "timestep_scaling": 10.0}})
    out.append({"name": "lcm_defaults", "config": {"kind": "lcm"}})

    # Flow matching: static shift 1 and 3, shift_terminal, LTX's dynamic shifting (both the
    # scheduler's own sigmas and the LTX/Flux pipelines' linspace(1, 1/N, N) sigmas), Flux's.
    out.append({"name": "flow_defaults", "config": {"kind": "flow_match_euler"}})
    out.append({"name": "flow_shift1", "config": {
        "kind": "flow_match_euler", "num_train_timesteps": 1000, "shift": 1.0}})
    out.append({"name": "flow_shift3", "config": {
        "kind": "flow_match_euler", "num_train_timesteps": 1000, "shift": 3.0}})
    out.append({"name": "flow_shift3_terminal", "config": {
        "kind": "flow_match_euler", "shift": 3.0, "shift_terminal": 0.1}})
    out.append({"name": "flow_ltx_dynamic", "config": {
        "kind": "flow_match_euler", "num_train_timesteps": 1000, "shift": 1.0, **LTX},
        "image_seq_len": 2560})
    out.append({"name": "flow_ltx_dynamic_pipeline_sigmas", "config": {
        "kind": "flow_match_euler", "num_train_timesteps": 1000, "shift": 1.0, **LTX},
        "image_seq_len": 2560, "sigmas": "linspace"})
    out.append({"name": "flow_flux_dynamic", "config": {
        "kind": "flow_match_euler", "use_dynamic_shifting": True, "base_shift": 0.5,
        "max_shift": 1.15, "base_image_seq_len": 256, "max_image_seq_len": 4096},
        "image_seq_len": 4096})
    out.append({"name": "flow_shift3_pipeline_sigmas", "config": {
        "kind": "flow_match_euler", "shift": 3.0}, "sigmas": "linspace"})
    return out


def f32(x) -> float:
    """Shortest decimal that reads back as the same float32 (keeps the JSON small)."""
    return float(str(np.float32(x)))


def f32_list(t) -> list[float]:
    arr = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return [f32(v) for v in arr.astype(np.float32).reshape(-1)]


def make(case):
    cfg = dict(case["config"])
    kind = cfg.pop("kind")
    return kind, CLASSES[kind](**cfg)


def set_timesteps(case, kind, sched, steps):
    if kind == "flow_match_euler":
        kwargs = {}
        if sched.config.use_dynamic_shifting:
            c = sched.config
            kwargs["mu"] = calculate_shift(case["image_seq_len"], c.base_image_seq_len,
                                           c.max_image_seq_len, c.base_shift, c.max_shift)
        if case.get("sigmas") == "linspace":
            # What pipeline_ltx.py and pipeline_flux.py pass.
            sched.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), **kwargs)
        else:
            sched.set_timesteps(steps, **kwargs)
    else:
        sched.set_timesteps(steps)


def schedule_record(case, steps):
    kind, sched = make(case)
    set_timesteps(case, kind, sched, steps)
    rec = {"steps": steps}
    if kind in ("ddim", "lcm"):
        rec["timesteps"] = [int(t) for t in sched.timesteps]
    else:
        rec["timesteps"] = f32_list(sched.timesteps)
    if kind in ("euler_discrete", "flow_match_euler"):
        rec["sigmas"] = f32_list(sched.sigmas)
    ins = getattr(sched, "init_noise_sigma", 1.0)
    rec["init_noise_sigma"] = f32(float(ins))
    if any(math.isnan(v) for v in rec.get("sigmas", [])):
        # shift_terminal with one step divides 0 by 0 in stretch_shift_to_terminal; the Rust
        # scheduler refuses that configuration instead.
        return {"steps": steps, "diffusers_nan": True}
    return rec


def detail_record(case, tensors):
    kind, sched = make(case)
    set_timesteps(case, kind, sched, DETAIL_STEPS)
    sample = torch.from_numpy(tensors["sample"]).reshape(SHAPE)
    model_output = torch.from_numpy(tensors["model_output"]).reshape(SHAPE)
    noise = torch.from_numpy(tensors["noise"]).reshape(SHAPE)
    out = []
    for i, t in enumerate(sched.timesteps):
        rec = {"step_index": i}
        if kind == "euler_discrete":
            sched._step_index = i
            rec["scaled"] = f32_list(sched.scale_model_input(sample, t))
        if kind in ("euler_discrete", "lcm", "flow_match_euler"):
            sched._step_index = i
        if kind == "lcm":
            scheduling_lcm.randn_tensor = lambda *a, **k: noise.clone()
        prev = sched.step(model_output, t, sample).prev_sample
        assert prev.dtype == torch.float32, prev.dtype
        rec["prev_sample"] = f32_list(prev)
        out.append(rec)
    return out


def main():
    rng = np.random.default_rng(20240611)
    n = int(np.prod(SHAPE))
    tensors = {
        "sample": rng.standard_normal(n).astype(np.float32),
        "model_output": rng.standard_normal(n).astype(np.float32),
        "noise": rng.standard_normal(n).astype(np.float32),
    }
    training = {}
    for schedule in ["linear", "scaled_linear"]:
        s = DDIMScheduler(**SD_BETAS, beta_schedule=schedule)
        training[schedule] = f32_list(s.alphas_cumprod)
    result = {
        "generator": "models/export/scheduler_reference.py",
        "versions": {"diffusers": diffusers.__version__, "torch": torch.__version__,
                     "numpy": np.__version__, "python": sys.version.split()[0]},
        "shape": SHAPE,
        "sample": [f32(v) for v in tensors["sample"]],
        "model_output": [f32(v) for v in tensors["model_output"]],
        "noise": [f32(v) for v in tensors["noise"]],
        "sd_alphas_cumprod": training,
        "cases": [],
    }
    for case in cases():
        extra = case.pop("extra_steps", [])
        entry = {"name": case["name"], "config": case["config"]}
        if "image_seq_len" in case:
            entry["image_seq_len"] = case["image_seq_len"]
        if "sigmas" in case:
            entry["sigmas"] = case["sigmas"]
        with np.errstate(invalid="ignore"):  # the shift_terminal 0/0 noted in schedule_record
            entry["schedules"] = [schedule_record(case, s) for s in STEP_COUNTS + extra]
        entry["detail"] = detail_record(case, tensors)
        result["cases"].append(entry)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(result['cases'])} cases)")


if __name__ == "__main__":
    main()
