#!/usr/bin/env python3
"""Train loopsmith's tiny pixel-space text-to-video model from scratch on synthetic clips.

Two denoisers: ``--arch layered`` (``layered.py``; the shipped bundle, see there and README.md)
and the first one, ``--arch unet`` (the default of a new run, described here). Everything
else -- text encoder, caption classifier, data, noise levels, EMA, eval, checkpoints -- is
shared.

UNet model (sizes in ``MODEL_CONFIG``, stored in every checkpoint):

* text encoder: a transformers ``CLIPTextModel`` (hidden 64, 3 layers, 4 heads, 24 positions)
  over the word-level tokenizer in ``models/tiny/tokenizer/tokenizer.json``;
* denoiser: ``PixelDenoiser``, a diffusers ``UNetMotionModel`` (``UNet2DConditionModel`` +
  ``MotionAdapter`` through ``from_unet2d``, as ``models/export/common.py`` builds the tiny
  AnimateDiff) that works on 2x2 pixel patches: the 32x32 RGB frames are folded into 16x16x12
  (``pixel_unshuffle``) inside the graph and unfolded on the way out, so the graph's input and
  output are RGB pixels ``[B, 3, F, 32, 32]`` in [-1, 1] (bundle family ``pixel``). The prompt
  embedding also feeds the time embedding (mean over tokens, through ``time_cond_proj_dim``),
  a global conditioning path next to cross-attention.

Objective: rectified flow (``x_t = (1 - s) x0 + s noise``); the UNet predicts the clean clip
x0 and the graph returns the velocity ``(x_t - x0) / s`` (so the bundle is a plain
``flow_match_euler`` velocity bundle). ``s`` is logit-normal shifted by ``MODEL_CONFIG["shift"]``
(16), 10% uniform; loss = x0 error / max(s, ``--x0-floor``)^2. A caption classifier on the pooled
prompt embedding trains the text encoder (``--text-pretrain-steps``, ``--aux-weight``; training
only, not exported), and ``text_rgb`` (part of the model) maps the pooled prompt to the x0 colour. Prompts are dropped (replaced by "")
10% of the time, so classifier-free guidance works. README.md says why each of these is there.

Data comes from ``dataset.py``, generated on the fly: the batch of step k depends only on
(seed, k), so a resumed run sees what an uninterrupted one would have.

    python3 models/tiny/train.py --run models/tiny/runs/rgb --minutes 120           # resumes
    python3 models/tiny/train.py --run models/tiny/runs/new --fresh --minutes 120
    # CPU shared with other work: --threads 1 (2 spin-waiting threads were 4.7x slower)

Writes ``RUN/ckpt.pt`` (model, EMA, optimiser, step; every ``--ckpt-minutes`` and at the end),
``RUN/log.jsonl`` (loss every ``--log-every`` steps; eval pass rate every ``--eval-minutes``),
``RUN/config.json``. Uses 2 CPU threads by default (``--threads``), CUDA when available.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "export"))

import dataset as D  # noqa: E402
import layered  # noqa: E402

TOKENIZER_JSON = HERE / "tokenizer" / "tokenizer.json"

MODEL_CONFIG = {
    "size": D.SIZE,
    "frames": D.FRAMES,
    "channels": 3,
    "patch": 2,
    "max_length": D.MAX_LENGTH,
    "text": dict(vocab_size=192, hidden_size=64, intermediate_size=256, num_hidden_layers=3,
                 num_attention_heads=4, max_position_embeddings=D.MAX_LENGTH, hidden_act="quick_gelu",
                 layer_norm_eps=1e-5, bos_token_id=0, eos_token_id=2, pad_token_id=1),
    "unet": dict(block_out_channels=[48, 64, 96], layers_per_block=1,
                 cross_attn=[False, True, True], attention_head_dim=4, norm_num_groups=8),
    "motion": dict(motion_num_attention_heads=4, motion_max_seq_length=32, use_motion_mid_block=True),
    # The UNet predicts the clean clip (x0), trained and sampled with flow-matching shift 16:
    # most training noise levels sit above ~0.9, where a background or subject colour can no
    # longer be read off the noisy input, so the only way to lower the loss is to read the
    # prompt. (At shift 1 with velocity prediction the colour stays readable up to sigma ~0.98,
    # and a 35-minute run learned to ignore the text: 0/40 eval prompts, backgrounds 17.5%.)
    "param": "x0",
    "shift": 16.0,
    # A direct text -> colour path: x0 += sigma * Linear(pooled prompt) per RGB channel. The
    # x0/shift-16 run alone reached step 522 with its sigma=1 prediction the same for every
    # prompt (it took the background colour from the noise): the prompt had no short path to
    # the output colour. Weighted by sigma so it fades out where the input shows the colour.
    "text_rgb": True,
    # Coordinate planes (x, y, frame) appended to the UNet's input (CoordConv, Liu et al.
    # 2018): a subject's place in frame f of "moving left" is a simple function of these, while
    # a plain UNet must infer absolute position from padding and time from its motion modules'
    # attention alone. The canonical-layout run drew the right subject in the right colours by
    # step 2,800 but kept it still (motion 15%); see README.
    "coords": True,
}


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


def build_models(cfg: dict, seed: int = 0):
    """(text_encoder, denoiser) with fresh weights, deterministic by ``seed``."""
    import torch
    from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(**cfg["text"]))
    if cfg.get("arch") == "layered":
        torch.manual_seed(seed + 1)
        return text_encoder, layered.build_denoiser(cfg["layered"], cfg["text"]["hidden_size"])
    u = cfg["unet"]
    ch = tuple(u["block_out_channels"])
    inner = cfg["channels"] * cfg["patch"] ** 2
    extra = 3 if cfg.get("coords") else 0
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in u["cross_attn"])
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(u["cross_attn"]))
    ctx = cfg["text"]["hidden_size"]
    torch.manual_seed(seed + 1)
    unet2d = UNet2DConditionModel(
        sample_size=cfg["size"] // cfg["patch"], in_channels=inner + extra, out_channels=inner,
        block_out_channels=ch, layers_per_block=u["layers_per_block"], down_block_types=down,
        up_block_types=up, cross_attention_dim=ctx, attention_head_dim=u["attention_head_dim"],
        norm_num_groups=u["norm_num_groups"], time_cond_proj_dim=ctx)
    torch.manual_seed(seed + 2)
    adapter = MotionAdapter(block_out_channels=ch, motion_layers_per_block=u["layers_per_block"],
                            motion_norm_num_groups=u["norm_num_groups"], **cfg["motion"])
    unet = UNetMotionModel.from_unet2d(unet2d, adapter)
    return text_encoder, PixelDenoiser(unet, cfg["patch"], cfg["channels"], cfg.get("param", "v"),
                                       text_rgb=cfg.get("text_rgb", False), ctx_dim=ctx,
                                       coords=bool(cfg.get("coords")))


def _pixel_denoiser_class():
    import torch

    class _PixelDenoiser(torch.nn.Module):
        """RGB video in, RGB velocity out: ``[B, 3, F, H, W]`` -> 2x2 patches -> UNetMotionModel
        -> back. Called like a diffusers UNet (``(sample, timestep, encoder_hidden_states,
        return_dict=False)[0]``), and has the ``config`` fields ``common.export_denoiser`` reads,
        so the shared exporter takes it as is.

        ``param``: what the UNet itself outputs. ``"v"``: the velocity. ``"x0"``: the clean
        clip, turned into the velocity here as ``(sample - x0) / sigma`` with
        ``sigma = timestep / 1000`` -- so the graph's output is a velocity either way."""

        def __init__(self, unet, patch: int, channels: int = 3, param: str = "v",
                     text_rgb: bool = False, ctx_dim: int = 64, coords: bool = False):
            super().__init__()
            self.coords = coords
            self.text_rgb = None
            if text_rgb:
                self.text_rgb = torch.nn.Linear(ctx_dim, channels)
                torch.nn.init.zeros_(self.text_rgb.weight)
                torch.nn.init.zeros_(self.text_rgb.bias)
            if param not in ("v", "x0"):
                raise ValueError(f"param {param!r}")
            self.unet = unet
            self.patch = patch
            self.channels = channels
            self.param = param

        @property
        def config(self):
            return SimpleNamespace(in_channels=self.channels, out_channels=self.channels,
                                   cross_attention_dim=self.unet.config.cross_attention_dim)

        def forward(self, sample, timestep, encoder_hidden_states, return_dict: bool = False):
            y = self.raw(sample, timestep, encoder_hidden_states)
            if self.param == "x0":
                sigma = (timestep.reshape(-1, 1, 1, 1, 1) / 1000.0).clamp(min=1e-4)
                y = (sample - y) / sigma
            return (y,)

        def raw(self, sample, timestep, encoder_hidden_states):
            """The UNet's own output, back in pixel layout."""
            p = self.patch
            b, c, f, h, w = sample.shape
            x = sample.reshape(b, c, f, h // p, p, w // p, p).permute(0, 1, 4, 6, 2, 3, 5)
            x = x.reshape(b, c * p * p, f, h // p, w // p)
            if self.coords:
                # x, y in [-1, 1] across the patch grid, frame index in [-1, 1]; constants in
                # the exported graph (the sizes are fixed), broadcast over the batch.
                gh, gw = h // p, w // p
                ys = torch.linspace(-1.0, 1.0, gh).view(1, 1, 1, gh, 1).expand(b, 1, f, gh, gw)
                xs = torch.linspace(-1.0, 1.0, gw).view(1, 1, 1, 1, gw).expand(b, 1, f, gh, gw)
                ts = torch.linspace(-1.0, 1.0, f).view(1, 1, f, 1, 1).expand(b, 1, f, gh, gw)
                x = torch.cat([x, xs.to(x.dtype), ys.to(x.dtype), ts.to(x.dtype)], dim=1)
            ctx = encoder_hidden_states
            # global text vector: the mean over tokens of the first frame's copy
            pooled = ctx.reshape(b, f, ctx.shape[1], ctx.shape[2])[:, 0].mean(dim=1)
            y = self.unet(x, timestep, ctx, timestep_cond=pooled, return_dict=False)[0]
            y = y.reshape(b, c, p, p, f, h // p, w // p).permute(0, 1, 4, 5, 2, 6, 3)
            y = y.reshape(b, c, f, h, w)
            if self.text_rgb is not None:
                sigma = (timestep.reshape(-1) / 1000.0).expand(b).reshape(b, 1, 1, 1, 1)
                y = y + sigma * self.text_rgb(pooled).reshape(b, c, 1, 1, 1)
            return y

    return _PixelDenoiser


def PixelDenoiser(unet, patch: int, channels: int = 3, param: str = "v", **kw):  # noqa: N802
    return _pixel_denoiser_class()(unet, patch, channels, param, **kw)


def load_weights(module, sd: dict) -> None:
    """load_state_dict that lets a run started before ``text_rgb`` or ``coords`` existed gain
    them: a missing text_rgb starts at zero, and an input convolution with fewer input channels
    than the model's is padded with zero weights for the new ones (so the function is unchanged
    at the switch)."""
    own = module.state_dict()
    sd = dict(sd)
    for k, v in list(sd.items()):
        if k in own and own[k].shape != v.shape and k.endswith("conv_in.weight") \
                and own[k].shape[1] > v.shape[1] and own[k].shape[0] == v.shape[0]:
            pad = own[k].new_zeros(own[k].shape)
            pad[:, : v.shape[1]] = v
            sd[k] = pad
    missing, unexpected = module.load_state_dict(sd, strict=False)
    bad = [k for k in missing if not k.startswith("text_rgb.")] + list(unexpected)
    if bad:
        raise RuntimeError(f"checkpoint does not match the model: {bad[:5]}")


def count_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------------------------------------
# Tokenizer, sampling
# ---------------------------------------------------------------------------------------------


def load_tokenizer(path: Path = TOKENIZER_JSON):
    from tokenizers import Tokenizer

    if not Path(path).exists():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        D.build_tokenizer().save(str(path))
    return Tokenizer.from_file(str(path))


def tokenize(tok, prompts: list[str]):
    import torch

    return torch.tensor([e.ids for e in tok.encode_batch(prompts)], dtype=torch.long)


def flow_schedule(steps: int, shift: float = 1.0):
    """(timesteps, sigmas incl. the final 0) of diffusers' FlowMatchEulerDiscreteScheduler
    (what the Rust ``flow_match_euler`` reproduces), as numpy float32."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    s = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    s.set_timesteps(steps)
    return s.timesteps.numpy().astype(np.float32), s.sigmas.numpy().astype(np.float32)


def sample_torch(text_encoder, denoiser, tok, prompts: list[str], *, steps: int = 8,
                 guidance: float = 1.0, shift: float = 1.0, seed: int = 0, frames: int = D.FRAMES,
                 size: int = D.SIZE, batch: int = 20) -> np.ndarray:
    """Frames [N, F, H, W, 3] in [0, 1], one clip per prompt, noise seeded per prompt index."""
    import torch

    timesteps, sigmas = flow_schedule(steps, shift)
    out = []
    for i0 in range(0, len(prompts), batch):
        ps = prompts[i0:i0 + batch]
        n = len(ps)
        noise = np.stack([np.random.default_rng(seed + i0 + j).standard_normal((3, frames, size, size), dtype=np.float32)
                          for j in range(n)])
        x = torch.from_numpy(noise)
        with torch.no_grad():
            cond = text_encoder(input_ids=tokenize(tok, ps)).last_hidden_state
            uncond = text_encoder(input_ids=tokenize(tok, [""] * n)).last_hidden_state
            cfg = guidance > 1.0
            emb = torch.cat([uncond, cond]) if cfg else cond
            ctx = emb.repeat_interleave(frames, 0)
            for k in range(steps):
                xin = torch.cat([x, x]) if cfg else x
                t = torch.full((xin.shape[0],), float(timesteps[k]))
                v = denoiser(xin, t, ctx)[0]
                if cfg:
                    u, c = v.chunk(2)
                    v = u + guidance * (c - u)
                x = x + float(sigmas[k + 1] - sigmas[k]) * v
        out.append(x.clamp(-1, 1).numpy())
    x = np.concatenate(out)
    return np.clip(x.transpose(0, 2, 3, 4, 1) / 2 + 0.5, 0, 1)


def evaluate(text_encoder, denoiser, tok, *, steps=8, guidance=1.0, shift=1.0, which="prompt",
             limit: int | None = None, seed: int = 0) -> dict:
    """Automatic check (dataset.check_clip) over the 40 eval prompts."""
    ev = D.eval_prompts()[:limit]
    frames = sample_torch(text_encoder, denoiser, tok, [e[which] for e in ev], steps=steps,
                          guidance=guidance, shift=shift, seed=seed)
    res = [D.check_clip(fr, e["label"]) for fr, e in zip(frames, ev)]
    n = len(res)
    by_kind: dict[str, list[int]] = {}
    for r, e in zip(res, ev):
        by_kind.setdefault(e["label"]["subjects"][0]["motion"], []).append(int(r.get("motion", False)))
    return {"n": n, "ok": sum(r["ok"] for r in res) / n, "bg": sum(r["bg"] for r in res) / n,
            "fg": sum(r.get("fg", False) for r in res) / n,
            "motion": sum(r.get("motion", False) for r in res) / n,
            "motion_by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in by_kind.items()},
            "results": res, "frames": frames}


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


class EMA:
    def __init__(self, modules, decay: float):
        self.decay = decay
        self.shadow = [copy.deepcopy(m).eval().requires_grad_(False) for m in modules]

    def update(self, modules, step: int):
        import torch

        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for s, m in zip(self.shadow, modules):
                torch._foreach_lerp_(list(s.parameters()), list(m.parameters()), 1 - d)

    def state_dict(self):
        return [s.state_dict() for s in self.shadow]

    def load_state_dict(self, states):
        for s, st in zip(self.shadow, states):
            load_weights(s, st)


def shift_sigma(sig, shift: float):
    """The flow-matching time shift (SD3; diffusers' ``shift``): more time at high noise."""
    return shift * sig / (1 + (shift - 1) * sig)


def batch_for_step(seed: int, step: int, batch: int, drop_prob: float, two_prob: float,
                   shift: float = 1.0, spread: float = 1.0):
    """Clips, captions (some dropped to "") and sigmas/noise for one step; depends only on
    (seed, step). Sigmas: logit-normal, shifted by ``shift`` (as the sampler's sigmas are), and
    10% uniform on [0, 1] after the shift so that every noise level is seen."""
    rng = np.random.default_rng([seed, step])
    g = D.Generator(0, two_prob=two_prob, spread=spread)
    g.rng = rng
    clips, caps, labels = g.batch(batch)
    caps, sig, noise = drop_and_noise(rng, clips, caps, drop_prob, shift)
    return clips, caps, sig, noise, labels


def drop_and_noise(rng: np.random.Generator, clips: np.ndarray, caps: list[str], drop_prob: float,
                   shift: float):
    """The rest of a step's batch, drawn from ``rng`` after the clips: captions with some
    dropped to "", sigmas (logit-normal as in SD3, shifted, and 10% uniform so the ends are
    covered too) and the noise."""
    batch = len(caps)
    caps = ["" if rng.random() < drop_prob else c for c in caps]
    u = rng.standard_normal(batch)
    sig = shift_sigma(1 / (1 + np.exp(-u)), shift)
    uni = rng.random(batch) < 0.1
    sig[uni] = rng.random(int(uni.sum()))
    sig = np.clip(sig, 1e-4, 1.0).astype(np.float32)
    noise = rng.standard_normal(clips.shape, dtype=np.float32)
    return caps, sig, noise


# ---------------------------------------------------------------------------------------------
# Auxiliary caption classifier (training only; not exported)
# ---------------------------------------------------------------------------------------------

# What the heads predict from the pooled prompt embedding (the vector the denoiser's global
# path gets): background colour, subject colour, shape, motion.
AUX = (("bg", D.COLOUR_NAMES), ("fg", D.COLOUR_NAMES), ("shape", D.SHAPE_NAMES), ("motion", D.MOTION_NAMES))


def aux_heads(hidden: int):
    import torch

    return torch.nn.Linear(hidden, sum(len(v) for _, v in AUX))


def aux_targets(labels, caps) -> np.ndarray:
    """[N, 4] class indices, -1 = not supervised (dropped caption, two subjects, or the caption
    names no background)."""
    t = np.full((len(labels), len(AUX)), -1, np.int64)
    for i, (lab, c) in enumerate(zip(labels, caps)):
        if not c or len(lab.subjects) != 1:
            continue
        s = lab.subjects[0]
        if lab.bg_in_caption:
            t[i, 0] = D.COLOUR_NAMES.index(lab.background)
        t[i, 1] = D.COLOUR_NAMES.index(s.colour)
        t[i, 2] = D.SHAPE_NAMES.index(s.shape)
        t[i, 3] = D.MOTION_NAMES.index(s.motion)
    return t


def aux_loss(heads, emb, targets):
    """Summed cross-entropy of the four heads on the mean-pooled prompt embedding, and their
    accuracies. This teaches the tiny text encoder, from scratch and in seconds, to put every
    attribute of the caption into the pooled vector -- which the denoiser otherwise has to
    discover through the diffusion loss alone, the slow part of a CPU run."""
    import torch
    import torch.nn.functional as Fn

    logits = heads(emb.mean(dim=1))
    t = torch.as_tensor(targets, device=emb.device)
    loss, acc, o = 0.0, [], 0
    for j, (_, names) in enumerate(AUX):
        lg = logits[:, o:o + len(names)]
        o += len(names)
        m = t[:, j] >= 0
        if m.any():
            loss = loss + Fn.cross_entropy(lg[m], t[m, j])
            acc.append(float((lg[m].argmax(-1) == t[m, j]).float().mean()))
        else:
            acc.append(float("nan"))
    return loss, acc


def aux_batch(rng: np.random.Generator, n: int):
    """Labels and training-phrasing captions only (no clips rendered): cheap."""
    labels = [D.random_label(rng, two_prob=0.0) for _ in range(n)]
    return labels, [D.caption(lab, rng) for lab in labels]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=HERE / "runs" / "default", help="run folder")
    ap.add_argument("--minutes", type=float, default=35.0, help="wall-clock budget for this call")
    ap.add_argument("--max-steps", type=int, default=None, help="stop at this global step")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    # a short EMA (half-life ~140 steps): a CPU run is only a few thousand steps long
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--x0-floor", type=float, default=0.3,
                    help="x0 loss: sigma floor of the 1/sigma^2 weight (caps it at 1/floor^2)")
    ap.add_argument("--drop-prob", type=float, default=0.1, help="prompt dropout (for CFG)")
    ap.add_argument("--two-prob", type=float, default=0.1, help="share of two-subject clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--eval-minutes", type=float, default=10.0, help="0 = no periodic eval")
    ap.add_argument("--eval-steps", type=int, default=8)
    ap.add_argument("--eval-limit", type=int, default=20,
                    help="periodic eval: first N eval prompts (every colour and motion; ~1 min on 2 cores)")
    ap.add_argument("--eval-shift", type=float, default=None, help="default: the model's shift")
    ap.add_argument("--eval-guidance", type=float, default=1.0)
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    ap.add_argument("--spread", type=float, default=0.3,
                    help="dataset: share of each random position/size range used (canonical "
                         "layouts below 1; see dataset.trajectory)")
    ap.add_argument("--fg-weight", type=float, default=4.0,
                    help="extra loss weight on subject pixels (the subject is ~5%% of a clip, "
                         "so an unweighted loss is mostly background)")
    ap.add_argument("--aux-weight", type=float, default=0.1,
                    help="weight of the auxiliary caption-classifier loss (0 = off)")
    ap.add_argument("--aux-batch", type=int, default=64, help="captions per step for the aux loss")
    ap.add_argument("--coords", type=int, default=1, help="1: coordinate input planes (also to a resumed run)")
    ap.add_argument("--text-rgb", type=int, default=1, help="1: add the text->colour path (also to a resumed run)")
    ap.add_argument("--text-rgb-lr", type=float, default=3e-3)
    ap.add_argument("--text-pretrain-steps", type=int, default=600,
                    help="caption-classifier steps on the text encoder alone before diffusion "
                         "training (once per run: skipped when the checkpoint has them)")
    ap.add_argument("--param", choices=["v", "x0"], default=None,
                    help="what the UNet predicts (new runs; default: MODEL_CONFIG's)")
    ap.add_argument("--shift", type=float, default=None,
                    help="noise-level shift for training and sampling (new runs; default: MODEL_CONFIG's)")
    ap.add_argument("--arch", choices=["unet", "layered"], default="unet",
                    help="denoiser of a new run: the UNetMotionModel or the layered one (layered.py)")
    ap.add_argument("--cosine", action="store_true",
                    help="cosine-anneal the learning rate to 10%% over this call's --minutes")
    ap.add_argument("--voxels", type=int, default=4096, help="layered: voxels per clip per step (0 = all)")
    ap.add_argument("--boost", action="append", default=[], metavar="MOTION=K",
                    help="layered: draw MOTION K times as often (repeatable), e.g. still=3")
    ap.add_argument("--alpha-weight", type=float, default=1.0, help="layered: coverage loss weight")
    ap.add_argument("--colour-weight", type=float, default=1.0, help="layered: colour-head loss weight")
    a = ap.parse_args(argv)

    import torch

    boost = {}
    for b in a.boost:
        m, _, k = b.partition("=")
        if m not in D.MOTION_NAMES or not k.isdigit() or int(k) < 1:
            ap.error(f"--boost {b!r}: want MOTION=K with MOTION one of {', '.join(D.MOTION_NAMES)}")
        boost[m] = int(k)
    torch.set_num_threads(a.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    run: Path = a.run
    run.mkdir(parents=True, exist_ok=True)
    ckpt_path = run / "ckpt.pt"
    tok = load_tokenizer()

    cfg = dict(MODEL_CONFIG)
    if a.param:
        cfg["param"] = a.param
    if a.shift:
        cfg["shift"] = a.shift
    if a.arch == "layered":
        cfg.update(arch="layered", layered=dict(layered.LAYERED_CONFIG), param="x0", text_rgb=False,
                   coords=False)
    step, base_elapsed = 0, 0.0
    rewarm_from = -(10**9)  # no re-warm-up unless the optimiser is reset on resume
    state = None
    if ckpt_path.exists() and not a.fresh:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        cfg = state["config"]
        if a.text_rgb and not cfg.get("text_rgb") and cfg.get("arch") != "layered":
            cfg = {**cfg, "text_rgb": True}  # upgrade a resumed run (the new layer starts at 0)
        if a.coords and not cfg.get("coords") and cfg.get("arch") != "layered":
            cfg = {**cfg, "coords": True}  # upgrade: zero weights for the new input planes
    text_encoder, denoiser = build_models(cfg, a.seed)
    modules = [text_encoder, denoiser]
    # text_rgb has its own optimiser (with the aux heads), so older optimiser states still load
    text_rgb = list(denoiser.text_rgb.parameters()) if getattr(denoiser, "text_rgb", None) is not None else []
    params = [p for m in modules for p in m.parameters() if all(p is not q for q in text_rgb)]
    # fused: one kernel for all parameters; the per-parameter loop was ~12% of a CPU step
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.99), weight_decay=0.01, fused=True)
    ema = EMA(modules, a.ema)
    heads = aux_heads(cfg["text"]["hidden_size"])
    aux_opt = torch.optim.AdamW([{"params": list(heads.parameters())},
                                 {"params": text_rgb, "lr": a.text_rgb_lr, "weight_decay": 0.0}], lr=a.lr)
    aux_acc = np.zeros(len(AUX))
    if state is not None:
        text_encoder.load_state_dict(state["text_encoder"])
        load_weights(denoiser, state["denoiser"])
        ema.load_state_dict(state["ema"])
        if "aux" in state:
            heads.load_state_dict(state["aux"])
        step, base_elapsed = state["step"], state.get("elapsed_s", 0.0)
        if state["config"].get("coords") == cfg.get("coords"):
            opt.load_state_dict(state["opt"])
        else:
            # conv_in grew: its moments no longer fit, so the optimiser starts afresh, with a
            # short warm-up from here.
            rewarm_from = step
            print("optimiser state reset (input channels changed)", flush=True)
        print(f"resumed {ckpt_path} at step {step} ({base_elapsed / 60:.1f} min trained)", flush=True)
    for m in modules + ema.shadow + [heads]:
        m.to(device)
    if a.text_pretrain_steps and a.aux_weight > 0 and not (state is not None and "aux" in state):
        # Teach the text encoder the caption attributes before the (slow) diffusion steps.
        t0 = time.perf_counter()
        popt = torch.optim.AdamW(list(text_encoder.parameters()) + list(heads.parameters()), lr=a.lr)
        for k in range(a.text_pretrain_steps):
            labs, pcaps = aux_batch(np.random.default_rng([a.seed, 10**9 + k]), 128)
            pe = text_encoder(input_ids=tokenize(tok, pcaps).to(device)).last_hidden_state
            pl, pacc = aux_loss(heads, pe, aux_targets(labs, pcaps))
            popt.zero_grad(set_to_none=True)
            pl.backward()
            popt.step()
            if (k + 1) % 100 == 0:
                print(json.dumps({"text_pretrain_step": k + 1, "aux_loss": round(float(pl), 4),
                                  "aux_acc": [round(v, 3) for v in pacc],
                                  "s": round(time.perf_counter() - t0, 1)}), flush=True)
        ema.shadow[0].load_state_dict(text_encoder.state_dict())  # the EMA starts from it
    n_text, n_den = count_params(text_encoder), count_params(denoiser)
    (run / "config.json").write_text(json.dumps({"model": cfg, "args": {k: str(v) for k, v in vars(a).items()},
                                                 "params": {"text_encoder": n_text, "denoiser": n_den}}, indent=1))
    print(f"params: text encoder {n_text / 1e6:.3f}M, denoiser {n_den / 1e6:.3f}M; device {device}, "
          f"threads {torch.get_num_threads()}", flush=True)

    def save(path: Path = ckpt_path, extra: dict | None = None):
        tmp = path.with_suffix(".tmp")
        torch.save({"config": cfg, "step": step, "elapsed_s": elapsed(),
                    "text_encoder": text_encoder.state_dict(), "denoiser": denoiser.state_dict(),
                    "ema": ema.state_dict(), "opt": opt.state_dict(), "aux": heads.state_dict(),
                    "best_score": best[0],  # so a resumed run does not overwrite a better best.pt
                    **(extra or {})}, tmp)
        os.replace(tmp, path)

    best = [state.get("best_score", -1.0) if state is not None else -1.0]

    log = open(run / "log.jsonl", "a")

    def emit(rec):
        log.write(json.dumps(rec) + "\n")
        log.flush()
        print(json.dumps(rec), flush=True)

    def run_eval():
        te, dn = ema.shadow
        t0 = time.perf_counter()
        r = evaluate(te.cpu(), dn.cpu(), tok, steps=a.eval_steps, guidance=a.eval_guidance,
                     shift=a.eval_shift or float(cfg.get("shift", 1.0)), limit=a.eval_limit)
        te.to(device), dn.to(device)
        # best.pt: the checkpoint with the most passing prompts (ties: most attributes right)
        score = r["ok"] + (r["bg"] + r["fg"] + r["motion"]) / 100
        emit({"eval_step": step, "minutes": round(elapsed() / 60, 2), "ok": r["ok"], "bg": r["bg"],
              "fg": r["fg"], "motion": r["motion"], "motion_by_kind": r["motion_by_kind"],
              "eval_s": round(time.perf_counter() - t0, 1), "best": score > best[0]})
        if score > best[0]:
            best[0] = score
            save(run / "best.pt", {"best_score": score, "eval": {k: r[k] for k in ("ok", "bg", "fg", "motion")}})
        D.save_grid(r["frames"][:8].transpose(0, 4, 1, 2, 3) * 2 - 1,
                    [e["prompt"] for e in D.eval_prompts()[:8]], run / f"eval_{step:06d}.png")

    frames = cfg["frames"]
    start = time.perf_counter()

    def elapsed():  # training wall-clock over all calls (includes evals and checkpoints)
        return base_elapsed + time.perf_counter() - start

    last_ckpt = last_eval = start
    budget = a.minutes * 60
    acc, acc_n, acc_bins = 0.0, 0, np.zeros((4, 2))
    t_log = time.perf_counter()
    clips_since = 0
    for m in modules:
        m.train()
    while True:
        now = time.perf_counter()
        if now - start >= budget or (a.max_steps is not None and step >= a.max_steps):
            break
        layered_arch = cfg.get("arch") == "layered"
        if layered_arch:
                clips, caps, sig, noise, labels, masks = layered.batch_for_step(
                a.seed, step, a.batch, a.drop_prob, float(cfg["shift"]), a.spread, boost)
        else:
            clips, caps, sig, noise, _ = batch_for_step(a.seed, step, a.batch, a.drop_prob, a.two_prob,
                                                     float(cfg.get("shift", 1.0)), a.spread)
        x0 = torch.from_numpy(clips).to(device)
        eps = torch.from_numpy(noise).to(device)
        s = torch.from_numpy(sig).to(device).view(-1, 1, 1, 1, 1)
        xt = (1 - s) * x0 + s * eps
        target = eps - x0
        ids = tokenize(tok, caps).to(device)
        emb = text_encoder(input_ids=ids).last_hidden_state
        ctx = emb.repeat_interleave(frames, 0)
        if layered_arch:
            col_t, col_m = layered.colour_targets(labels, caps)
            loss, parts = layered.losses(
                denoiser, xt, s.view(-1), ctx, x0, torch.from_numpy(masks).to(device),
                torch.from_numpy(col_t).to(device), torch.from_numpy(col_m).to(device),
                x0_floor=a.x0_floor, fg_weight=a.fg_weight, alpha_weight=a.alpha_weight,
                colour_weight=a.colour_weight, voxels=a.voxels, seed=a.seed * 1_000_003 + step)
            dloss = parts["diffusion"]
            with torch.no_grad():
                per = parts["per_clip"]
        elif cfg.get("param", "v") == "x0":
            # x-prediction with the loss on the velocity (Li & He 2025, JiT): the x0 error
            # weighted by 1 / max(sigma, floor)^2. The floor (0.3, not JiT's 0.05) caps the
            # weight of the rare low-noise samples at ~11, so the high-noise samples -- the ones
            # that teach the model to follow the prompt -- are not drowned out.
            x0_hat = denoiser.raw(xt, s.view(-1) * 1000.0, ctx)
            pred = (xt - x0_hat) / s.clamp(min=a.x0_floor)
            target = (xt - x0) / s.clamp(min=a.x0_floor)
        else:
            pred = denoiser(xt, s.view(-1) * 1000.0, ctx)[0]
        if not layered_arch:
            err = (pred - target).pow(2)
        if not layered_arch and a.fg_weight > 0:
            # subject pixels: further than 0.3 (in [-1, 1] units) from the clip's median colour
            med = x0.flatten(2).median(dim=2).values.view(-1, 3, 1, 1, 1)
            fg = ((x0 - med).pow(2).sum(dim=1, keepdim=True).sqrt() > 0.3).float()
            err = err * (1 + a.fg_weight * fg)
        if not layered_arch:
            per = err.mean(dim=(1, 2, 3, 4))
            loss = dloss = per.mean()
        if a.aux_weight > 0:
            # plus the caption classifier on a separate batch of captions (no clips: ~10 ms)
            labs, acaps = aux_batch(np.random.default_rng([a.seed, step, 7]), a.aux_batch)
            aemb = text_encoder(input_ids=tokenize(tok, acaps).to(device)).last_hidden_state
            al, aacc = aux_loss(heads, aemb, aux_targets(labs, acaps))
            loss = loss + a.aux_weight * al
            aux_acc += np.array(aacc)
        lr = a.lr * min(1.0, (step + 1) / a.warmup, (step + 1 - rewarm_from) / 100)
        if a.cosine:
            # anneal over this call's time budget down to 10%: the last steps refine edges
            lr *= 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, (now - start) / budget)))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if a.aux_weight > 0 or text_rgb:
            torch.nn.utils.clip_grad_norm_(text_rgb, 1.0)
            aux_opt.step()
            aux_opt.zero_grad(set_to_none=True)
        ema.update(modules, step)
        step += 1
        clips_since += a.batch
        acc += float(dloss.detach())
        acc_n += 1
        for sv, lv in zip(sig, per.detach().cpu().numpy()):
            b = min(int(sv * 4), 3)
            acc_bins[b] += (lv, 1)
        now = time.perf_counter()
        if step % a.log_every == 0:
            dt = now - t_log
            emit({"step": step, "loss": round(acc / acc_n, 5), "lr": lr, "grad_norm": round(float(gn), 3),
                  "loss_by_sigma_quarter": [round(v / max(n, 1), 4) for v, n in acc_bins],
                  "aux_acc": [round(v, 3) for v in aux_acc / acc_n],
                  "clips_per_s": round(clips_since / dt, 2), "steps_per_s": round(acc_n / dt, 3),
                  "minutes": round(elapsed() / 60, 2)})
            acc, acc_n, acc_bins, clips_since, t_log = 0.0, 0, np.zeros((4, 2)), 0, now
            aux_acc = np.zeros(len(AUX))
        if now - last_ckpt >= a.ckpt_minutes * 60:
            save()
            last_ckpt = now
        if a.eval_minutes and now - last_eval >= a.eval_minutes * 60:
            run_eval()
            last_eval = time.perf_counter()
    save()
    if a.eval_minutes:
        run_eval()
    emit({"done": True, "step": step, "minutes_total": round(elapsed() / 60, 2)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
