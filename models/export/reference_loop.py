#!/usr/bin/env python3
"""Pure-Python reference of loopsmith's denoising pipeline, over a model bundle.

onnxruntime runs the bundle's three graphs; everything else is numpy: tokenizer.json through
the ``tokenizers`` package, classifier-free guidance, the scheduler (``euler_discrete`` and
``ddim``, written to match diffusers' float32 arithmetic step for step), VAE decode and
post-processing. It is the yardstick for the Rust engine's speed and output, and
``make_parity_fixture.py`` checks it against diffusers.

    python3 models/export/reference_loop.py --bundle models/tests/fixtures/tiny-animatediff \\
        --prompt "A painting of a squirrel eating a burger" --steps 2 --runs 5

Prints one JSON object: per-stage timings (seconds) of every run and their medians. Options:
--latents FILE (.npy, or raw little-endian f32 of shape [1, channels, frames, h, w]; default:
seeded numpy normal noise), --guidance (default: the bundle's), --negative-prompt,
--scheduler KIND and --scheduler-json '{...}' to override the bundle's [scheduler] table,
--provider cpu|cuda|auto, --threads, --out FILE.npy (frames [B, F, H, W, 3] in [0, 1]).

Needs: numpy, onnxruntime (or onnxruntime-gpu for --provider cuda), tokenizers. Python >= 3.11.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

F32 = np.float32


# ---------------------------------------------------------------------------------------------
# Schedulers (numpy, float32 like diffusers)
# ---------------------------------------------------------------------------------------------


def _torch_linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps, dtype=torch.float32)`` bit for bit (x86 CPU kernel):
    a float32 step; the first half ``start + step*i``, the second ``end - step*(steps-1-i)``,
    each rounded once (fused multiply-add). Plain float64 linspace differs in ~30% of the
    betas by one ulp."""
    s, e = F32(start), F32(end)
    if steps == 1:
        return np.array([s], dtype=F32)
    step = F32((e - s) / F32(steps - 1))
    i = np.arange(steps, dtype=np.float64)
    st = np.float64(step)
    up = np.float64(s) + st * i
    down = np.float64(e) - st * (steps - 1 - i)
    return np.where(np.arange(steps) < steps // 2, up, down).astype(F32)


def alphas_cumprod(cfg: dict[str, Any]) -> np.ndarray:
    n = int(cfg.get("num_train_timesteps", 1000))
    schedule = cfg.get("beta_schedule", "linear")
    if schedule == "linear":
        betas = _torch_linspace_f32(cfg["beta_start"], cfg["beta_end"], n)
    elif schedule == "scaled_linear":
        betas = _torch_linspace_f32(cfg["beta_start"] ** 0.5, cfg["beta_end"] ** 0.5, n) ** 2
    else:
        raise ValueError(f"beta_schedule {schedule!r} not supported")
    alphas = (F32(1.0) - betas).astype(F32)
    # torch.cumprod on CPU accumulates in double and rounds each output to float32.
    return np.cumprod(alphas.astype(np.float64)).astype(F32)


class EulerDiscrete:
    """diffusers' EulerDiscreteScheduler: ``interpolation_type="linear"``,
    ``final_sigmas_type="zero"``, ``timestep_type="discrete"``, ``s_churn=0``."""

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.n_train = int(cfg.get("num_train_timesteps", 1000))
        self.ac = alphas_cumprod(cfg)
        self.prediction_type = cfg.get("prediction_type", "epsilon")
        self.spacing = cfg.get("timestep_spacing", "linspace")

    def set_timesteps(self, steps: int) -> None:
        n = self.n_train
        if self.spacing == "linspace":
            ts = np.linspace(0, n - 1, steps, dtype=F32)[::-1].copy()
        elif self.spacing == "leading":
            ratio = n // steps
            ts = (np.arange(0, steps) * ratio).round()[::-1].copy().astype(F32)
            ts += int(self.cfg.get("steps_offset", 0))
        elif self.spacing == "trailing":
            ratio = n / steps
            ts = np.arange(n, 0, -ratio).round().copy().astype(F32)
            ts -= 1
        else:
            raise ValueError(f"timestep_spacing {self.spacing!r} not supported")
        ac = self.ac
        all_sigmas = ((F32(1.0) - ac) / ac) ** F32(0.5)
        sig = np.interp(ts, np.arange(0, len(all_sigmas)), all_sigmas)  # float64
        self.sigmas = np.concatenate([sig, [0.0]]).astype(F32)
        self.timesteps = ts.astype(F32)
        smax = self.sigmas.max()
        if self.spacing in ("linspace", "trailing"):
            self.init_noise_sigma = F32(smax)
        else:
            self.init_noise_sigma = F32((smax ** F32(2) + F32(1)) ** F32(0.5))

    def scale_model_input(self, x: np.ndarray, i: int) -> np.ndarray:
        s = self.sigmas[i]
        return x / ((s ** F32(2) + F32(1)) ** F32(0.5))

    def step(self, eps: np.ndarray, i: int, x: np.ndarray) -> np.ndarray:
        sigma = self.sigmas[i]
        sigma_hat = sigma  # s_churn = 0
        if self.prediction_type == "epsilon":
            x0 = x - sigma_hat * eps
        elif self.prediction_type == "v_prediction":
            x0 = eps * (-sigma / (sigma ** F32(2) + F32(1)) ** F32(0.5)) + (x / (sigma ** F32(2) + F32(1)))
        elif self.prediction_type == "sample":
            x0 = eps
        else:
            raise ValueError(f"prediction_type {self.prediction_type!r} not supported")
        derivative = (x - x0) / sigma_hat
        dt = self.sigmas[i + 1] - sigma_hat
        return (x + derivative * dt).astype(F32)


class DDIM:
    """diffusers' DDIMScheduler with ``eta=0``, no thresholding."""

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.n_train = int(cfg.get("num_train_timesteps", 1000))
        self.ac = alphas_cumprod(cfg)
        self.final_ac = F32(1.0) if cfg.get("set_alpha_to_one", True) else self.ac[0]
        self.prediction_type = cfg.get("prediction_type", "epsilon")
        self.spacing = cfg.get("timestep_spacing", "leading")
        self.clip_sample = bool(cfg.get("clip_sample", True))
        self.clip_range = F32(cfg.get("clip_sample_range", 1.0))
        self.init_noise_sigma = F32(1.0)

    def set_timesteps(self, steps: int) -> None:
        n = self.n_train
        self.steps = steps
        if self.spacing == "linspace":
            ts = np.linspace(0, n - 1, steps).round()[::-1].copy().astype(np.int64)
        elif self.spacing == "leading":
            ts = (np.arange(0, steps) * (n // steps)).round()[::-1].copy().astype(np.int64)
            ts += int(self.cfg.get("steps_offset", 0))
        elif self.spacing == "trailing":
            ts = np.round(np.arange(n, 0, -(n / steps))).astype(np.int64)
            ts -= 1
        else:
            raise ValueError(f"timestep_spacing {self.spacing!r} not supported")
        self.int_timesteps = ts
        self.timesteps = ts.astype(F32)

    def scale_model_input(self, x: np.ndarray, i: int) -> np.ndarray:
        return x

    def step(self, eps: np.ndarray, i: int, x: np.ndarray) -> np.ndarray:
        t = int(self.int_timesteps[i])
        prev = t - self.n_train // self.steps
        a_t = self.ac[t]
        a_prev = self.ac[prev] if prev >= 0 else self.final_ac
        b_t = F32(1) - a_t
        if self.prediction_type == "epsilon":
            x0 = (x - b_t ** F32(0.5) * eps) / a_t ** F32(0.5)
            e = eps
        elif self.prediction_type == "sample":
            x0 = eps
            e = (x - a_t ** F32(0.5) * x0) / b_t ** F32(0.5)
        elif self.prediction_type == "v_prediction":
            x0 = (a_t ** F32(0.5)) * x - (b_t ** F32(0.5)) * eps
            e = (a_t ** F32(0.5)) * eps + (b_t ** F32(0.5)) * x
        else:
            raise ValueError(f"prediction_type {self.prediction_type!r} not supported")
        if self.clip_sample:
            x0 = np.clip(x0, -self.clip_range, self.clip_range)
        direction = (F32(1) - a_prev - F32(0)) ** F32(0.5) * e
        return (a_prev ** F32(0.5) * x0 + direction).astype(F32)


def make_scheduler(cfg: dict[str, Any]):
    kind = cfg.get("kind", "euler_discrete")
    if kind == "euler_discrete":
        return EulerDiscrete(cfg)
    if kind == "ddim":
        return DDIM(cfg)
    raise ValueError(f"scheduler kind {kind!r} not supported by reference_loop.py")


# ---------------------------------------------------------------------------------------------
# Bundle
# ---------------------------------------------------------------------------------------------

_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64,
              "tensor(int32)": np.int32, "tensor(double)": np.float64}


class Bundle:
    def __init__(self, root: str | Path, provider: str = "auto", threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.root = Path(root)
        self.toml = tomllib.loads((self.root / "model.toml").read_text())
        files, self.names = self.toml["files"], self.toml["tensors"]
        t0 = time.perf_counter()
        self.tokenizer = Tokenizer.from_file(str(self.root / files["tokenizer"]))
        text = self.toml.get("text", {})
        max_len = int(text.get("max_length", 77))
        # tokenizer.json carries its padding and truncation; enforce the bundle's anyway.
        pad_id = int(text.get("pad_id", 0))
        pad_tok = self.tokenizer.id_to_token(pad_id) or ""
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_tok, length=max_len)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        available = ort.get_available_providers()
        if provider == "auto":
            provider = "cuda" if "CUDAExecutionProvider" in available else "cpu"
        self.provider = provider
        providers = (["CUDAExecutionProvider", "CPUExecutionProvider"] if provider == "cuda"
                     else ["CPUExecutionProvider"])

        def load(name):
            return ort.InferenceSession(str(self.root / files[name]), sess_options=so, providers=providers)

        self.text_encoder = load("text_encoder")
        self.denoiser = load("denoiser")
        self.vae = load("vae_decoder") if files.get("vae_decoder") else None
        self.load_s = time.perf_counter() - t0
        self.video, self.latent = self.toml["video"], self.toml["latent"]

    def latent_shape(self, batch: int = 1) -> tuple[int, ...]:
        d = int(self.latent.get("downscale", 8))
        return (batch, int(self.latent["channels"]), int(self.video["frames"]),
                int(self.video["height"]) // d, int(self.video["width"]) // d)

    @staticmethod
    def _feed(sess, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for i in sess.get_inputs():
            want = _ORT_TYPES.get(i.type)
            v = feeds[i.name]
            out[i.name] = v.astype(want) if want is not None and v.dtype != want else v
        return out

    def run(self, sess, feeds: dict[str, np.ndarray]) -> np.ndarray:
        y = sess.run(None, self._feed(sess, feeds))[0]
        return y.astype(F32) if y.dtype != F32 else y

    def tokenize(self, prompts: list[str]) -> np.ndarray:
        return np.array([e.ids for e in self.tokenizer.encode_batch(prompts)], dtype=np.int64)

    def encode_text(self, ids: np.ndarray) -> np.ndarray:
        return self.run(self.text_encoder, {self.names["text_input_ids"]: ids})

    def denoise(self, sample: np.ndarray, t: float, context: np.ndarray) -> np.ndarray:
        n = self.names
        ts = np.full((sample.shape[0],), t, dtype=F32)
        return self.run(self.denoiser, {n["denoiser_sample"]: sample, n["denoiser_timestep"]: ts,
                                        n["denoiser_context"]: context})

    def decode(self, latents: np.ndarray, chunk: int = 16) -> np.ndarray:
        """Latents [B, C, F, h, w] -> frames [B, F, H, W, 3] in [0, 1] (diffusers' np output)."""
        b, c, f, h, w = latents.shape
        if self.vae is None:
            img = latents.transpose(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        else:
            z = latents * F32(1.0 / float(self.latent["scaling_factor"]))
            z = np.ascontiguousarray(z.transpose(0, 2, 1, 3, 4).reshape(b * f, c, h, w))
            parts = [self.run(self.vae, {self.names["vae_input"]: z[i:i + chunk]})
                     for i in range(0, b * f, chunk)]
            img = np.concatenate(parts)
        img = img.reshape((b, f) + img.shape[1:])  # [B, F, 3, H, W]
        return np.clip(img * F32(0.5) + F32(0.5), 0, 1).transpose(0, 1, 3, 4, 2).astype(F32)


def generate(bundle: Bundle, prompt: str, *, steps: int, guidance: float, latents: np.ndarray,
             negative_prompt: str = "", scheduler: dict[str, Any] | None = None,
             record: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """One clip. ``latents`` is the un-scaled initial noise [1, C, F, h, w] (multiplied by the
    scheduler's init_noise_sigma here, as diffusers' prepare_latents does). Returns frames
    [1, F, H, W, 3] and stage timings; fills ``record`` (if given) with intermediates."""
    timings: dict[str, Any] = {}
    t0 = time.perf_counter()
    tic = t0
    cfg = guidance > 1.0
    ids = bundle.tokenize([negative_prompt, prompt] if cfg else [prompt])
    now = time.perf_counter(); timings["tokenize"] = now - tic; tic = now
    emb = bundle.encode_text(ids)
    frames = latents.shape[2]
    context = np.repeat(emb, frames, axis=0)  # repeat_interleave(frames): [B*F, L, D]
    now = time.perf_counter(); timings["text_encoder"] = now - tic; tic = now

    sched = make_scheduler(scheduler if scheduler is not None else bundle.toml["scheduler"])
    sched.set_timesteps(steps)
    x = (latents.astype(F32) * sched.init_noise_sigma).astype(F32)
    step_times, step_latents, eps0 = [], [], None
    for i, t in enumerate(sched.timesteps):
        xin = np.concatenate([x, x]) if cfg else x
        xin = sched.scale_model_input(xin, i)
        eps = bundle.denoise(np.ascontiguousarray(xin, dtype=F32), float(t), context)
        if i == 0:
            eps0 = eps
        if cfg:
            u, c = eps[:1], eps[1:]
            eps = u + F32(guidance) * (c - u)
        x = sched.step(eps, i, x)
        step_latents.append(x)
        now = time.perf_counter(); step_times.append(now - tic); tic = now
    timings["denoise_steps"] = step_times
    timings["denoise"] = sum(step_times)
    out = bundle.decode(x)
    now = time.perf_counter(); timings["vae_decode"] = now - tic
    timings["total"] = now - t0
    if record is not None:
        record.update(ids=ids, text_embeddings=emb, timesteps=sched.timesteps,
                      sigmas=getattr(sched, "sigmas", None), init_noise_sigma=sched.init_noise_sigma,
                      step_latents=step_latents, denoiser_out_step0=eps0)
    return out, timings


def load_latents(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    p = Path(path)
    if p.suffix == ".npy":
        a = np.load(p)
    else:
        a = np.fromfile(p, dtype="<f4")
    return a.astype(F32).reshape(shape)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--prompt", default="A painting of a squirrel eating a burger")
    ap.add_argument("--negative-prompt", default="")
    ap.add_argument("--steps", type=int, default=None, help="default: the bundle's")
    ap.add_argument("--guidance", type=float, default=None, help="default: the bundle's")
    ap.add_argument("--latents", default=None, help=".npy or raw little-endian f32 [1,C,F,h,w]")
    ap.add_argument("--seed", type=int, default=0, help="noise seed when --latents is not given")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    ap.add_argument("--scheduler", default=None, help="override [scheduler].kind")
    ap.add_argument("--scheduler-json", default=None, help="JSON object of [scheduler] overrides")
    ap.add_argument("--provider", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="save frames [B,F,H,W,3] as .npy")
    a = ap.parse_args(argv)

    bundle = Bundle(a.bundle, provider=a.provider, threads=a.threads)
    defaults = bundle.toml.get("defaults", {})
    steps = a.steps if a.steps is not None else int(defaults.get("steps", 4))
    guidance = a.guidance if a.guidance is not None else float(defaults.get("guidance", 1.0))
    sched = dict(bundle.toml["scheduler"])
    if a.scheduler:
        sched["kind"] = a.scheduler
    if a.scheduler_json:
        sched.update(json.loads(a.scheduler_json))
    shape = bundle.latent_shape()
    if a.latents:
        latents = load_latents(a.latents, shape)
    else:
        latents = np.random.default_rng(a.seed).standard_normal(shape, dtype=F32)

    for _ in range(max(0, a.warmup)):
        generate(bundle, a.prompt, steps=steps, guidance=guidance, latents=latents,
                 negative_prompt=a.negative_prompt, scheduler=sched)
    runs, frames = [], None
    for _ in range(max(1, a.runs)):
        frames, t = generate(bundle, a.prompt, steps=steps, guidance=guidance, latents=latents,
                             negative_prompt=a.negative_prompt, scheduler=sched)
        runs.append(t)
    if a.out:
        np.save(a.out, frames)
    keys = ["tokenize", "text_encoder", "denoise", "vae_decode", "total"]
    report = {
        "bundle": str(bundle.root),
        "name": bundle.toml.get("name"),
        "provider": bundle.provider,
        "steps": steps,
        "guidance": guidance,
        "scheduler": sched.get("kind"),
        "latent_shape": list(shape),
        "frames_shape": list(frames.shape),
        "session_load_s": bundle.load_s,
        "warmup_runs": a.warmup,
        "runs": runs,
        "median": {k: statistics.median(r[k] for r in runs) for k in keys},
        "min": {k: min(r[k] for r in runs) for k in keys},
        "median_step_s": statistics.median(s for r in runs for s in r["denoise_steps"]),
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
