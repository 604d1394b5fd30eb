#!/usr/bin/env python3
"""Export a tiny-model checkpoint (train.py) to a loopsmith bundle (models/BUNDLE.md).

Uses the shared exporter in ``models/export/common.py`` (TorchScript ONNX export at opset 17,
fp32, ONNX-vs-torch check, ``write_model_toml`` with sha256s). The bundle:

* ``family = "pixel"``: the denoiser works on RGB pixels in [-1, 1]; no VAE
  (``[latent] channels = 3``, ``downscale = 1``, ``scaling_factor = 1.0``);
* ``[video]`` 32x32, 16 frames, 8 fps;
* ``[scheduler] kind = "flow_match_euler"``, ``prediction_type = "velocity"`` (an x0-predicting
  model's graph turns its x0 into the velocity itself), shift = the one the model was trained
  with (``--shift`` overrides);
* ``[defaults]`` ``--steps`` (8) and ``--guidance``;
* ``[text]`` max_length 24, pad id 1, hidden size 64; tokenizer.json from models/tiny/tokenizer.

    python3 models/tiny/export.py --run models/tiny/runs/short [--out models/tiny/bundle]

EMA weights by default (``--raw`` for the optimised ones).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "export"))

import numpy as np  # noqa: E402

import common as C  # noqa: E402
import train as T  # noqa: E402

DEFAULT_STEPS = 8
# guidance 1: one denoiser call per step, and what the shipped (layered) bundle is scored at.
# (An early UNet checkpoint, step 773, did better at 3: backgrounds 78.75% vs 53.75%.)
DEFAULT_GUIDANCE = 1.0


def load_checkpoint(run: Path, raw: bool = False):
    import torch

    ckpt = Path(run)
    if ckpt.is_dir():
        ckpt = ckpt / "ckpt.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = state["config"]
    te, den = T.build_models(cfg)
    if raw:
        te.load_state_dict(state["text_encoder"])
        T.load_weights(den, state["denoiser"])
    else:
        te.load_state_dict(state["ema"][0])
        T.load_weights(den, state["ema"][1])
    te.eval()
    den.eval()
    return te, den, cfg, state


def pixel_tensors() -> dict:
    """BUNDLE.md's [tensors] without the VAE names (a pixel bundle must not name them)."""
    return {k: v for k, v in C.TENSORS.items() if not k.startswith("vae_")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="run folder or ckpt.pt")
    ap.add_argument("--out", type=Path, default=HERE / "bundle")
    ap.add_argument("--raw", action="store_true", help="export the raw (non-EMA) weights")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    ap.add_argument("--shift", type=float, default=None, help="default: the checkpoint's training shift")
    ap.add_argument("--fps", type=int, default=8)
    ap.add_argument("--name", default="tiny-pixel-shapes")
    ap.add_argument("--no-compact", action="store_true", help="keep the exporter's long node names")
    a = ap.parse_args(argv)

    import onnx
    import torch

    torch.set_num_threads(2)
    torch.set_grad_enabled(False)
    te, den, cfg, state = load_checkpoint(a.run, a.raw)
    L, D, F, S = cfg["max_length"], cfg["text"]["hidden_size"], cfg["frames"], cfg["size"]
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    for f in list(out.iterdir()):
        if f.is_file() and (f.suffix in (".onnx", ".data", ".json", ".toml")):
            f.unlink()

    te_path, den_path = out / C.FILES["text_encoder"], out / C.FILES["denoiser"]
    C.export_text_encoder(te, te_path, seq_len=L)
    # common.export_denoiser traces with a 77-token context; the pooled/cross-attention code is
    # length-agnostic, so fix the context's token axis to this model's max_length afterwards.
    C.export_denoiser(den, den_path, F, S, S, dynamic_spatial=True)
    for path, fix in ((te_path, None), (den_path, C.TENSORS["denoiser_context"])):
        m = onnx.load(str(path))
        if fix:
            for inp in m.graph.input:
                if inp.name == fix:
                    d = inp.type.tensor_type.shape.dim[1]
                    d.ClearField("dim_param")
                    d.dim_value = L
        if not a.no_compact:
            C.compact_names(m)
        onnx.checker.check_model(m)
        C.save_onnx(m, path, external_data=False)

    shutil.copy(T.TOKENIZER_JSON, out / C.FILES["tokenizer"])
    pad_id = 1
    ids = C.encode_ids(out / C.FILES["tokenizer"], ["a red ball bouncing on a blue background"])[0]
    assert len(ids) == L and ids[-1] == pad_id, ids

    # ONNX vs torch, at the shapes the engine feeds (batch 1 and 2, 16 frames, 24 tokens)
    rng = np.random.default_rng(0)
    checks = {}
    tok_ids = np.array(C.encode_ids(out / C.FILES["tokenizer"],
                                    ["a red ball bouncing on a blue background", ""]), np.int64)
    checks["text_encoder"] = C.check_graph("text_encoder", te, te_path, {"input_ids": tok_ids}, threads=2)
    for b, f in ((1, F), (2, F), (1, 8)):
        feeds = {"sample": rng.standard_normal((b, 3, f, S, S)).astype(np.float32),
                 "timestep": np.linspace(999, 100, b).astype(np.float32),
                 "encoder_hidden_states": rng.standard_normal((b * f, L, D)).astype(np.float32)}
        checks[f"denoiser_b{b}_f{f}"] = C.check_graph("denoiser", den, den_path, feeds, threads=2)
    worst = max(checks.values())
    if worst > 1e-4:
        raise SystemExit(f"ONNX differs from torch: {checks}")

    sched = C.default_scheduler_table(kind="flow_match_euler", prediction_type="velocity",
                                      shift=float(a.shift if a.shift is not None else cfg.get("shift", 1.0)),
                                      timestep_spacing="linspace")
    saved = C.TENSORS
    try:  # write_model_toml writes common.TENSORS; a pixel bundle has no vae_* names
        C.TENSORS = pixel_tensors()
        C.write_model_toml(
            out, name=a.name, family="pixel", licence="Apache-2.0",
            description=(f"Tiny text-to-video model trained from scratch on synthetic shapes "
                         f"(loopsmith models/tiny): coloured shapes moving on flat backgrounds, "
                         f"{S}x{S}, {F} frames. Step {state['step']}."),
            video={"width": S, "height": S, "frames": F, "fps": a.fps},
            latent={"channels": 3, "downscale": 1, "scaling_factor": 1.0},
            scheduler=sched,
            defaults={"steps": a.steps, "guidance": float(a.guidance)},
            text={"max_length": L, "pad_id": pad_id, "hidden_size": D},
            files={k: v for k, v in C.FILES.items() if k != "vae_decoder"},
        )
    finally:
        C.TENSORS = saved
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    report = {"bundle": str(out), "step": state["step"], "trained_minutes": round(state.get("elapsed_s", 0) / 60, 1),
              "weights": "raw" if a.raw else "ema",
              "params": {"text_encoder": T.count_params(te), "denoiser": T.count_params(den)},
              "files": files, "total_mb": round(sum(files.values()) / 1e6, 2),
              "onnx_vs_torch_max_abs": checks}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
