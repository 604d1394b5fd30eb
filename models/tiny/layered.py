"""The layered denoiser: the embedded model's second architecture (``MODEL_CONFIG["arch"] =
"layered"``), and its training step.

Why a second one: the UNetMotionModel denoiser (``train.py``) reached 76% of the conditioning
prompts after ~230 CPU minutes, drawing every subject as a soft blob -- it never learned to
turn a shape (spinning 0/8), and a small subject's colour came out mixed with the background.
Those are exactly the things a 2-core CPU run cannot buy with more steps. This denoiser builds
what the synthetic world is made of into the network instead:

* **a clip is a background layer and a subject layer**: the clean-clip estimate is
  ``x0 = bg * (1 - alpha) + fg * alpha``; ``bg`` and ``fg`` are RGB colours read from the
  prompt (a linear head on the pooled text embedding), ``alpha`` a per-pixel, per-frame
  coverage in [0, 1]. Colours cannot blend into each other except along an edge, and a colour
  head learns its ten colours in a few hundred steps;
* **the coverage is a coordinate network** (an implicit neural representation, as in
  SIREN/pi-GAN): per pixel and frame, Fourier features of (x, y, frame) plus a small 3-D
  convolution of the noisy clip, through an MLP whose layers are modulated (FiLM) by the prompt
  and the noise level. "A star spinning" is a function of (x, y, t) that such a network fits
  directly, with sharp edges, where a UNet has to assemble it from its receptive fields;
* the noisy clip enters through the convolution, so at low noise the coverage follows what is
  already drawn; at high noise it comes from the prompt.

It is still a diffusion model in the pipeline's sense: a denoiser of (noisy clip, timestep,
text states) sampled by flow-matching Euler, exported as the same ``pixel`` bundle
(``forward`` returns the velocity ``(sample - x0) / sigma``). What it gives up: anything that is
not one flat subject on a flat background (two subjects, textures) cannot be drawn at all, and
because the training layouts are canonical, two seeds of one prompt differ little.

Training adds direct targets next to the diffusion loss, because the dataset knows them: the
subject's true coverage (binary cross-entropy on ``alpha``) and the named colours (squared error
on the two colour heads).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

import dataset as D

LAYERED_CONFIG = {
    "hidden": 128,       # MLP width
    "layers": 4,         # FiLM-modulated MLP layers
    "xy_freqs": 5,       # Fourier features of x, y: pi * 2^k, k < 5 (finest period: 2 px)
    "t_freqs": 4,        # of the frame index
    "conv": 16,          # channels of the noisy-clip convolution
    "cond": 128,         # prompt / noise-level vector
}


def _module_class():
    import torch
    from torch import nn

    class LayeredDenoiser(nn.Module):
        def __init__(self, cfg: dict, ctx_dim: int):
            super().__init__()
            c = cfg["cond"]
            h = cfg["hidden"]
            self.xy_freqs, self.t_freqs, self.n_layers, self.hidden = (
                cfg["xy_freqs"], cfg["t_freqs"], cfg["layers"], h)
            self.ctx_dim = ctx_dim
            self.text = nn.Sequential(nn.Linear(ctx_dim, c), nn.SiLU(), nn.Linear(c, c))
            self.noise = nn.Sequential(nn.Linear(16, c), nn.SiLU(), nn.Linear(c, c))
            self.colours = nn.Linear(c, 6)  # background RGB, subject RGB, in [-1, 1] units
            self.conv = nn.Sequential(nn.Conv3d(3, cfg["conv"], 3, padding=1), nn.SiLU(),
                                      nn.Conv3d(cfg["conv"], cfg["conv"], 3, padding=1), nn.SiLU())
            n_in = 3 + 4 * self.xy_freqs + 2 * self.t_freqs + cfg["conv"]
            self.inp = nn.Linear(n_in, h)
            self.film = nn.Linear(c, 2 * h * self.n_layers)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
            self.mlp = nn.ModuleList(nn.Linear(h, h) for _ in range(self.n_layers))
            self.out = nn.Linear(h, 1)

        @property
        def config(self):  # what models/export/common.py's exporter reads
            return SimpleNamespace(in_channels=3, out_channels=3, cross_attention_dim=self.ctx_dim)

        def forward(self, sample, timestep, encoder_hidden_states, return_dict: bool = False):
            x0, _, _ = self.parts(sample, timestep, encoder_hidden_states)
            sigma = (timestep.reshape(-1, 1, 1, 1, 1) / 1000.0).clamp(min=1e-4)
            return ((sample - x0) / sigma,)

        def parts(self, sample, timestep, encoder_hidden_states, idx=None):
            """(x0 [B, 3, F, H, W], alpha logits [B, F, H, W], colours [B, 6]). With ``idx``
            ([B, K] flat voxel indices; training only) just those voxels: x0 [B, 3, K], logits
            [B, K] -- the MLP is most of the cost, and a quarter of the voxels per clip is an
            unbiased estimate of the loss at a quarter of the price."""
            b, _, f, hh, ww = sample.shape
            ctx = encoder_hidden_states
            # the engine repeats the prompt's states per frame; frame 0's copy, mean over tokens
            pooled = ctx.reshape(b, f, ctx.shape[1], ctx.shape[2])[:, 0].mean(dim=1)
            text = self.text(pooled)
            sigma = (timestep.reshape(-1) / 1000.0).expand(b)
            k = torch.arange(1, 9, dtype=sample.dtype, device=sample.device)
            ang = 2 * math.pi * sigma.reshape(b, 1) * k.reshape(1, 8) / 2
            cond = text + self.noise(torch.cat([ang.sin(), ang.cos()], dim=1))
            colours = self.colours(text)
            # per-voxel inputs, channels last: [B, F, H, W, C]
            feats = [self._coords(b, f, hh, ww, sample),
                     self.conv(sample).permute(0, 2, 3, 4, 1)]
            x = torch.cat(feats, dim=-1).reshape(b, f * hh * ww, -1)
            if idx is not None:
                x = x.gather(1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
            x = self.inp(x)
            mod = self.film(torch.nn.functional.silu(cond)).reshape(b, self.n_layers, 2, 1, self.hidden)
            for i, layer in enumerate(self.mlp):
                y = layer(torch.nn.functional.silu(x))
                x = x + y * (1 + mod[:, i, 0]) + mod[:, i, 1]
            logits = self.out(torch.nn.functional.silu(x)).reshape(b, 1, -1)
            alpha = torch.sigmoid(logits)
            bg = colours[:, :3].reshape(b, 3, 1)
            fg = colours[:, 3:].reshape(b, 3, 1)
            x0 = bg + (fg - bg) * alpha
            if idx is not None:
                return x0, logits.reshape(b, -1), colours
            return x0.reshape(b, 3, f, hh, ww), logits.reshape(b, f, hh, ww), colours

        def _coords(self, b, f, hh, ww, like):
            """[B, F, H, W, 3 + 4 * xy_freqs + 2 * t_freqs]: x, y at pixel centres and the
            frame, in [-1, 1], with their Fourier features. Built from the input's shape, so
            the exported graph takes other frame counts (the engine's short previews)."""
            dt, dev = like.dtype, like.device
            ys = (torch.arange(hh, dtype=dt, device=dev) + 0.5) / hh * 2 - 1
            xs = (torch.arange(ww, dtype=dt, device=dev) + 0.5) / ww * 2 - 1
            # linspace, not arange / (f - 1): the exporter's trace keeps it a function of the
            # input's frame count (Python arithmetic on a traced size would freeze it at 16)
            ts = torch.linspace(-1.0, 1.0, f, dtype=dt, device=dev)
            gy = ys.reshape(1, hh, 1, 1).expand(f, hh, ww, 1)
            gx = xs.reshape(1, 1, ww, 1).expand(f, hh, ww, 1)
            gt = ts.reshape(f, 1, 1, 1).expand(f, hh, ww, 1)
            fxy = math.pi * 2.0 ** torch.arange(self.xy_freqs, dtype=dt, device=dev)
            ft = math.pi * 2.0 ** torch.arange(self.t_freqs, dtype=dt, device=dev) / 2
            axy = torch.cat([gx * fxy, gy * fxy], dim=-1)
            at = gt * ft
            grid = torch.cat([gx, gy, gt, axy.sin(), axy.cos(), at.sin(), at.cos()], dim=-1)
            return grid.unsqueeze(0).expand(b, f, hh, ww, grid.shape[-1])

    return LayeredDenoiser


def build_denoiser(cfg: dict, ctx_dim: int):
    return _module_class()(cfg, ctx_dim)


def colour_targets(labels, caps) -> tuple[np.ndarray, np.ndarray]:
    """[N, 6] named colours in [-1, 1] (background, subject) and [N, 2] masks: a colour is
    supervised only when the caption names it (not for dropped captions, nor for a background
    the caption leaves out)."""
    t = np.zeros((len(labels), 6), np.float32)
    m = np.zeros((len(labels), 2), np.float32)
    for i, (lab, c) in enumerate(zip(labels, caps)):
        t[i, :3] = np.array(D.COLOURS[lab.background][0]) * 2 - 1
        t[i, 3:] = np.array(D.COLOURS[lab.subjects[0].colour][0]) * 2 - 1
        if c:
            m[i, 0] = 1.0 if lab.bg_in_caption else 0.0
            m[i, 1] = 1.0
    return t, m


def batch_for_step(seed: int, step: int, batch: int, drop_prob: float, shift: float, spread: float,
                   boost: dict[str, int] | None = None):
    """Like train.batch_for_step (one-subject clips only), plus the subject coverage."""
    from train import drop_and_noise

    rng = np.random.default_rng([seed, step])
    g = D.Generator(0, two_prob=0.0, spread=spread, boost=boost)
    g.rng = rng
    clips, caps, labels, masks = g.batch_with_alpha(batch)
    caps, sig, noise = drop_and_noise(rng, clips, caps, drop_prob, shift)
    return clips, caps, sig, noise, labels, masks


def losses(denoiser, xt, sigma, ctx, x0, masks, col_t, col_m, *, x0_floor: float, fg_weight: float,
           alpha_weight: float, colour_weight: float, voxels: int = 4096, seed: int = 0):
    """(total, parts): the diffusion loss (x0 error / max(sigma, floor)^2, subject pixels
    weighted 1 + fg_weight), the coverage cross-entropy and the colour error, on ``voxels``
    random voxels per clip (all of them when 0)."""
    import torch
    import torch.nn.functional as Fn

    b = x0.shape[0]
    n = int(np.prod(x0.shape[2:]))
    idx = None
    if voxels and voxels < n:
        g = torch.Generator().manual_seed(seed)
        idx = torch.rand(b, n, generator=g).argsort(dim=1)[:, :voxels].to(x0.device)
    x0_hat, logits, colours = denoiser.parts(xt, sigma.view(-1) * 1000.0, ctx, idx)
    x0 = x0.reshape(b, 3, n)
    masks = masks.reshape(b, n)
    if idx is not None:
        x0 = x0.gather(2, idx.unsqueeze(1).expand(-1, 3, -1))
        masks = masks.gather(1, idx)
    else:
        x0_hat, logits = x0_hat.reshape(b, 3, n), logits.reshape(b, n)
    s = sigma.view(-1, 1, 1).clamp(min=x0_floor)
    w = 1 + fg_weight * (masks > 0.5).float()
    diff = ((x0_hat - x0) / s).pow(2) * w.unsqueeze(1)
    dl = diff.mean()
    al = (Fn.binary_cross_entropy_with_logits(logits, masks, reduction="none") * w).mean()
    cl = ((colours - col_t).pow(2).reshape(-1, 2, 3).mean(-1) * col_m).sum() / col_m.sum().clamp(min=1)
    total = dl + alpha_weight * al + colour_weight * cl
    return total, {"diffusion": dl, "alpha": al, "colour": cl, "per_clip": diff.detach().mean(dim=(1, 2))}
