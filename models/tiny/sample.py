#!/usr/bin/env python3
"""Render prompts from an exported tiny bundle through models/export/reference_loop.py
(onnxruntime for the graphs, numpy for the rest), save PNG grids (and GIFs), score them.

    python3 models/tiny/sample.py --bundle models/tiny/bundle --out /tmp/tiny-samples
    python3 models/tiny/sample.py --bundle models/tiny/bundle --eval --out /tmp/tiny-eval
    python3 models/tiny/sample.py --bundle models/tiny/bundle --eval --phrasing heldout \\
        --steps 8 --guidance 2 --shift 2 --out /tmp/tiny-eval-heldout

``--eval`` renders the prompts of ``eval_prompts.json`` (40 labels x canonical and held-out
phrasing) and scores each with ``dataset.check_clip`` using the file's ``check`` constants
(background colour, subject colour, motion; README.md, "Evaluation"); it prints the pass rates
per attribute and phrasing and writes ``results.json``. ``--prompt`` (repeatable) renders your
own.

reference_loop.py has no ``flow_match_euler`` (it implements ``euler_discrete`` and
``ddim``); ``FlowMatchEuler`` below is diffusers' ``FlowMatchEulerDiscreteScheduler`` with a
static shift (what the bundle uses and the Rust scheduler implements), plugged into
reference_loop's ``make_scheduler`` here without editing the shared file. Everything else --
tokenizer, text encoder, CFG batch order, context repeat, the pixel family's
``clamp(x/2+0.5)`` -- is reference_loop's own code.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "export"))

import dataset as D  # noqa: E402
import reference_loop as R  # noqa: E402

F32 = np.float32

DEFAULT_PROMPTS = [
    "a red ball bouncing on a blue background",
    "crimson circle hops over navy",
    "a yellow star spinning on a black background",
    "a green square moving right on a white background",
    "a pink heart pulsing on a purple background",
    "a white ring orbiting on a red background",
    "an orange triangle growing on a cyan background",
    "a blue diamond falling on a yellow background",
]


class FlowMatchEuler:
    """diffusers' FlowMatchEulerDiscreteScheduler, static shift, no dynamic shifting,
    deterministic (s_churn = 0). The denoiser output is the velocity ``noise - x0``."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.n_train = int(cfg.get("num_train_timesteps", 1000))
        self.shift = float(cfg.get("shift", 1.0))
        if cfg.get("use_dynamic_shifting", False):
            raise ValueError("dynamic shifting is not implemented here")
        if float(cfg.get("shift_terminal", 0.0) or 0.0) != 0.0:
            raise ValueError("shift_terminal is not implemented here")
        self.init_noise_sigma = F32(1.0)

    def set_timesteps(self, steps: int) -> None:
        n, s = self.n_train, self.shift
        # __init__ (float32): sigmas = linspace(1, n, n)[::-1] / n, shifted; ends = max/min
        t = np.linspace(1, n, n, dtype=F32)[::-1].copy() / F32(n)
        t = (F32(s) * t / (F32(1) + F32(s - 1) * t)).astype(F32)
        smax, smin = float(t[0]), float(t[-1])
        # set_timesteps (float64, numpy): linspace of timesteps, back to sigmas, shift again
        ts = np.linspace(smax * n, smin * n, steps)
        sig = ts / n
        sig = s * sig / (1 + (s - 1) * sig)
        sig = sig.astype(F32)
        self.timesteps = (sig * F32(n)).astype(F32)
        self.sigmas = np.concatenate([sig, np.zeros(1, F32)]).astype(F32)

    def scale_model_input(self, x: np.ndarray, i: int) -> np.ndarray:
        return x

    def step(self, v: np.ndarray, i: int, x: np.ndarray) -> np.ndarray:
        return (x + (self.sigmas[i + 1] - self.sigmas[i]) * v).astype(F32)


_make_scheduler = R.make_scheduler


def make_scheduler(cfg: dict):
    if cfg.get("kind") == "flow_match_euler":
        return FlowMatchEuler(cfg)
    return _make_scheduler(cfg)


R.make_scheduler = make_scheduler  # reference_loop.generate looks it up at call time


def render(bundle: R.Bundle, prompts: list[str], *, steps: int, guidance: float, shift: float | None,
           seed: int, negative: str = "") -> tuple[np.ndarray, list[dict]]:
    sched = dict(bundle.toml["scheduler"])
    if shift is not None:
        sched["shift"] = shift
    shape = bundle.latent_shape()
    frames, timings = [], []
    for i, p in enumerate(prompts):
        lat = np.random.default_rng(seed + i).standard_normal(shape, dtype=F32)
        fr, t = R.generate(bundle, p, steps=steps, guidance=guidance, latents=lat,
                           negative_prompt=negative, scheduler=sched)
        frames.append(fr[0])
        timings.append(t)
    return np.stack(frames), timings


def save_gifs(frames: np.ndarray, names: list[str], out: Path, fps: int, scale: int = 4) -> None:
    from PIL import Image

    for fr, name in zip(frames, names):
        imgs = [Image.fromarray((f * 255).round().astype(np.uint8)).resize(
            (f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in fr]
        imgs[0].save(out / f"{name}.gif", save_all=True, append_images=imgs[1:],
                     duration=int(1000 / fps), loop=0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, default=HERE / "bundle")
    ap.add_argument("--out", type=Path, default=Path("/tmp/tiny-samples"))
    ap.add_argument("--prompt", action="append", help="repeatable; default: a built-in list")
    ap.add_argument("--eval", action="store_true", help="the 40 eval prompts, scored")
    ap.add_argument("--eval-file", type=Path, default=HERE / "eval_prompts.json")
    ap.add_argument("--phrasing", choices=["all", "canonical", "heldout"], default="all",
                    help="--eval: which phrasings of the eval prompts")
    ap.add_argument("--limit", type=int, default=None, help="--eval: first N prompts")
    ap.add_argument("--steps", type=int, default=None, help="default: the bundle's")
    ap.add_argument("--guidance", type=float, default=None, help="default: the bundle's")
    ap.add_argument("--shift", type=float, default=None, help="default: the bundle's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gif", action="store_true", help="also one GIF per prompt (4x)")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    bundle = R.Bundle(a.bundle, provider="cpu", threads=a.threads)
    load_s = time.perf_counter() - t0
    d = bundle.toml.get("defaults", {})
    steps = a.steps if a.steps is not None else int(d.get("steps", 8))
    guidance = a.guidance if a.guidance is not None else float(d.get("guidance", 1.0))
    if a.eval:
        spec = json.loads(a.eval_file.read_text())
        ev = [p for p in spec["prompts"] if a.phrasing in ("all", p["phrasing"])][:a.limit]
        prompts = [e["prompt"] for e in ev]
    else:
        ev = None
        prompts = a.prompt or DEFAULT_PROMPTS
    # one untimed warm-up
    render(bundle, prompts[:1], steps=steps, guidance=guidance, shift=a.shift, seed=a.seed)
    frames, timings = render(bundle, prompts, steps=steps, guidance=guidance, shift=a.shift, seed=a.seed)
    a.out.mkdir(parents=True, exist_ok=True)
    clips = frames.transpose(0, 4, 1, 2, 3) * 2 - 1  # [N, 3, F, H, W] in [-1, 1]
    for j in range(0, len(prompts), 8):
        D.save_grid(clips[j:j + 8], prompts[j:j + 8], a.out / f"grid_{j // 8:02d}.png", scale=3)
    if a.gif:
        save_gifs(frames, [f"{i:02d}" for i in range(len(prompts))], a.out, int(bundle.video.get("fps", 8)))
    np.save(a.out / "frames.npy", frames)
    report = {
        "bundle": str(a.bundle), "steps": steps, "guidance": guidance,
        "shift": a.shift if a.shift is not None else bundle.toml["scheduler"].get("shift"),
        "threads": a.threads, "session_load_s": round(load_s, 3),
        "per_clip_s_median": round(statistics.median(t["total"] for t in timings), 4),
        "per_step_s_median": round(statistics.median(s for t in timings for s in t["denoise_steps"]), 4),
        "text_encoder_s_median": round(statistics.median(t["text_encoder"] for t in timings), 4),
    }
    if ev is not None:
        res = [D.check_clip(fr, D.label_from_eval(e), spec["check"]) for fr, e in zip(frames, ev)]
        report["seed"] = a.seed
        for ph in ("all", "canonical", "heldout"):
            rs = [r for r, e in zip(res, ev) if ph in ("all", e["phrasing"])]
            if rs:
                n = len(rs)
                report[ph] = {"n": n, "ok": sum(r["ok"] for r in rs) / n, "bg": sum(r["bg"] for r in rs) / n,
                              "fg": sum(r.get("fg", False) for r in rs) / n,
                              "motion": sum(r.get("motion", False) for r in rs) / n}
        by_motion: dict[str, list[int]] = {}
        for r, e in zip(res, ev):
            by_motion.setdefault(e["subject"]["motion"], []).append(int(r.get("motion", False)))
        report["motion_pass_by_kind"] = {k: f"{sum(v)}/{len(v)}" for k, v in by_motion.items()}
        # the matrix: one line per prompt, + / - for background, subject colour, motion
        for r, e in zip(res, ev):
            marks = "".join("+" if r.get(k) else "-" for k in ("bg", "fg", "motion"))
            print(f"{'PASS' if r['ok'] else 'fail'} {marks} {e['id']:<13} {e['prompt']!r:<72} "
                  f"got bg={r['bg_name']} fg={r.get('fg_name')} motion={r.get('motion_guess')}")
        (a.out / "results.json").write_text(json.dumps(
            [{"id": e["id"], "prompt": p, **{k: v for k, v in r.items()}} for p, e, r in zip(prompts, ev, res)], indent=1))
    else:
        stats = []
        for p, fr in zip(prompts, frames):
            border = np.concatenate([fr[:, 0], fr[:, -1], fr[:, :, 0], fr[:, :, -1]], axis=1).reshape(-1, 3)
            bg = np.median(border, axis=0)
            far = np.linalg.norm(fr - bg, axis=-1) > 0.3
            fg = np.median(fr[far], axis=0) if far.sum() > 10 else None
            stats.append({"prompt": p, "bg": D.nearest_colour(bg),
                          "fg": D.nearest_colour(fg) if fg is not None else None,
                          "fg_pixels_per_frame": round(float(far.sum()) / fr.shape[0], 1)})
        report["colours"] = stats
    (a.out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
