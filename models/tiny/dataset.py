#!/usr/bin/env python3
"""Synthetic text-to-video data for loopsmith's tiny pixel-space model.

Clips are ``[3, frames, size, size]`` float32 in [-1, 1] (channels first, as the denoiser's
``sample`` is laid out): one or two flat-coloured subjects (circle/ball, square/box, triangle,
star, heart, ring, diamond) on a flat named background colour, moving in one of eleven ways
(left, right, up, down, bouncing, spinning, growing, shrinking, pulsing, orbiting, still), with
a templated English caption that varies synonyms and word order ("a red ball bouncing on a blue
background", "crimson circle hops over navy"). Shapes are drawn from signed distance functions
with one pixel of anti-aliasing, so any size works (the model uses 32x32, 16 frames).

Everything is numpy and deterministic by seed: ``Generator(seed).sample()`` or
``.batch(n)``; ``clip_at(seed, index)`` gives the same clip whatever was drawn before.

Also here:

* ``HELDOUT_TEMPLATES``: caption word orders never used for training (all their words are in
  the training vocabulary) -> ``caption(label, rng, heldout=True)``;
* ``eval_prompts()``: 40 fixed colour x shape x motion prompts with labels (canonical phrasing,
  plus a held-out phrasing of each);
* ``check_clip(frames, label)``: the automatic check those prompts are scored with (background
  colour, foreground colour and motion, from a foreground mask, its centroid and area per frame);
* ``vocabulary()`` / ``build_tokenizer()``: the word-level tokenizer.json (via
  ``models/export/common.py``'s builder).

    python3 models/tiny/dataset.py --out /tmp/samples          # PNG grids + captions
    python3 models/tiny/dataset.py --self-check                # checks pass on ground truth
    python3 models/tiny/dataset.py --write-tokenizer models/tiny/tokenizer/tokenizer.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXPORT = HERE.parent / "export"

FRAMES = 16
SIZE = 32
MAX_LENGTH = 24  # tokens incl. BOS/EOS; the longest training caption is 20

# ---------------------------------------------------------------------------------------------
# Vocabulary of the world
# ---------------------------------------------------------------------------------------------

# canonical name -> (RGB in [0, 1], synonyms used in captions; the name itself comes first)
COLOURS: dict[str, tuple[tuple[float, float, float], list[str]]] = {
    "red": ((0.90, 0.08, 0.08), ["red", "crimson", "scarlet"]),
    "orange": ((1.00, 0.55, 0.00), ["orange", "tangerine"]),
    "yellow": ((1.00, 0.90, 0.10), ["yellow", "golden", "lemon"]),
    "green": ((0.10, 0.72, 0.18), ["green", "emerald", "lime"]),
    "cyan": ((0.00, 0.85, 0.90), ["cyan", "aqua", "turquoise"]),
    "blue": ((0.10, 0.22, 0.90), ["blue", "navy", "azure", "cobalt"]),
    "purple": ((0.55, 0.12, 0.80), ["purple", "violet"]),
    "pink": ((1.00, 0.45, 0.75), ["pink", "rose"]),
    "white": ((0.97, 0.97, 0.97), ["white", "snowy", "ivory"]),
    "black": ((0.05, 0.05, 0.05), ["black", "jet", "ebony"]),
}
COLOUR_NAMES = list(COLOURS)

# canonical shape -> caption nouns
SHAPES: dict[str, list[str]] = {
    "circle": ["ball", "circle", "dot", "disc", "orb"],
    "square": ["square", "box", "block"],
    "triangle": ["triangle"],
    "star": ["star"],
    "heart": ["heart"],
    "ring": ["ring", "donut", "hoop"],
    "diamond": ["diamond", "rhombus"],
}
SHAPE_NAMES = list(SHAPES)
ROUND = {"circle", "ring"}  # spinning is invisible for these: never drawn spinning

# motion -> (participle phrases, third-person phrases). "" = no motion word (still only).
MOTIONS: dict[str, tuple[list[str], list[str]]] = {
    "left": (["moving left", "sliding left", "drifting left", "going left", "moving to the left"],
             ["moves left", "slides left", "drifts left", "goes left"]),
    "right": (["moving right", "sliding right", "drifting right", "going right", "moving to the right"],
              ["moves right", "slides right", "drifts right", "goes right"]),
    "up": (["moving up", "rising", "floating up", "going up", "flying up"],
           ["moves up", "rises", "floats up", "goes up"]),
    "down": (["moving down", "falling", "dropping", "sinking", "going down"],
             ["moves down", "falls", "drops", "sinks"]),
    "bouncing": (["bouncing", "hopping", "jumping", "bouncing up and down"],
                 ["bounces", "hops", "jumps"]),
    "spinning": (["spinning", "rotating", "turning", "twirling", "spinning around"],
                 ["spins", "rotates", "turns", "twirls"]),
    "growing": (["growing", "expanding", "getting bigger", "growing bigger"],
                ["grows", "expands", "gets bigger"]),
    "shrinking": (["shrinking", "getting smaller", "contracting", "shrinking away"],
                  ["shrinks", "gets smaller", "contracts"]),
    "pulsing": (["pulsing", "pulsating", "throbbing", "beating"],
                ["pulses", "pulsates", "throbs", "beats"]),
    "orbiting": (["orbiting", "circling", "going in circles", "moving in a circle"],
                 ["orbits", "circles", "goes in circles", "moves in a circle"]),
    "still": (["standing still", "resting", "sitting still", "staying still", ""],
              ["stands still", "rests", "sits still", "stays still"]),
}
MOTION_NAMES = list(MOTIONS)

# Background phrases ({b} = a colour word). Starting phrases come first in some templates.
BG_SUFFIX = ["on {ab} background", "on {b}", "over {b}", "against {ab} background",
             "in front of {ab} backdrop", "with {ab} background", "on a plain {b} background",
             "on {ab} backdrop"]
BG_PREFIX = ["{b} background", "on {b}", "on {ab} background", "{b} backdrop"]

# Templates: {a} article+adjective+noun ("a red ball"), {n} bare ("red ball"), {m} participle,
# {v} third person, {bg} suffix phrase, {pre} prefix phrase.
TRAIN_TEMPLATES = [
    "{a} {m} {bg}",
    "{n} {m} {bg}",
    "{a} {v} {bg}",
    "{n} {v} {bg}",
    "{a} that is {m} {bg}",
    "{pre}, {a} {m}",
    "{pre}: {n} {m}",
    "{m} {n} {bg}",
    "{a} {bg}, {m}",
    "{a} {m}",             # background unspecified: any colour is right
    "{n} {m}",
    "sticker of {a} {m} {bg}",
]
# Word orders never trained on; every word in them appears in training captions.
HELDOUT_TEMPLATES = [
    "{bg}, {a} is {m}",
    "{pre} with {a} {m}",
    "{m} {a}, {bg}",
    "there is {a} {m} {bg}",
]

# Two subjects: "{s1} and {s2} {bg}", each subject "{a} {m}".
TWO_TEMPLATES = ["{s1} and {s2} {bg}", "{pre}, {s1} and {s2}", "{s1} and {s2}"]

VOCAB_EXTRA = ["a", "an", "the", "and", "that", "is", "of", "with", "on", "over", "sticker",
               "there", "background", "backdrop", "plain", "in", "front", "to", ".", "!"]
# Adjectives that change nothing; sprinkled in so the model learns to ignore them.
FILLERS = ["cute", "little", "happy", "shiny", "simple", "flat", "cartoon", "tiny", "nice"]
# Made-up words: they tokenize to <|unk|>, so the model learns to ignore unknown words too.
NONSENSE = ["zorp", "blick", "quux", "wibble"]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# ---------------------------------------------------------------------------------------------
# Labels and captions
# ---------------------------------------------------------------------------------------------


@dataclass
class Subject:
    colour: str
    shape: str
    motion: str


@dataclass
class Label:
    subjects: list[Subject]
    background: str
    bg_in_caption: bool = True
    words: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"subjects": [s.__dict__ for s in self.subjects], "background": self.background,
                "bg_in_caption": self.bg_in_caption}


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _subject_phrase(s: Subject, rng, *, bare=False, third=False) -> tuple[str, str, str]:
    cw = _pick(rng, COLOURS[s.colour][1])
    sw = _pick(rng, SHAPES[s.shape])
    u = rng.random()
    if u < 0.08:
        cw = f"{_pick(rng, FILLERS)} {cw}"
    elif u < 0.11:
        cw = f"{_pick(rng, NONSENSE)} {cw}"
    part, third_p = MOTIONS[s.motion]
    m = _pick(rng, third_p if third else part)
    noun = f"{cw} {sw}"
    return (noun if bare else f"{article(cw)} {noun}"), m, cw


def caption(label: Label, rng: np.random.Generator, heldout: bool = False) -> str:
    """A caption for ``label``; ``heldout`` uses the held-out word orders (one subject only)."""
    bw = _pick(rng, COLOURS[label.background][1])
    ab = f"{article(bw)} {bw}"
    bg = _pick(rng, BG_SUFFIX).format(b=bw, ab=ab)
    pre = _pick(rng, BG_PREFIX).format(b=bw, ab=ab)
    pre = pre[0].upper() + pre[1:] if rng.random() < 0.2 else pre
    if len(label.subjects) == 2:
        parts = []
        for s in label.subjects:
            a, m, _ = _subject_phrase(s, rng)
            parts.append(f"{a} {m}".strip())
        t = _pick(rng, TWO_TEMPLATES) if label.bg_in_caption else "{s1} and {s2}"
        text = t.format(s1=parts[0], s2=parts[1], bg=bg, pre=pre)
    else:
        s = label.subjects[0]
        a, m, _ = _subject_phrase(s, rng)
        n, _, _ = _subject_phrase(s, rng, bare=True)
        _, v, _ = _subject_phrase(s, rng, third=True)
        if heldout:
            t = _pick(rng, HELDOUT_TEMPLATES)
        elif label.bg_in_caption:
            t = _pick(rng, [x for x in TRAIN_TEMPLATES if "{bg}" in x or "{pre}" in x])
        else:
            t = _pick(rng, [x for x in TRAIN_TEMPLATES if "{bg}" not in x and "{pre}" not in x])
        if not m and ("{m} {n}" in t or "that is {m}" in t or "is {m}" in t or ", {m}" in t):
            m = "standing still"
        text = t.format(a=a, n=n, m=m, v=v, bg=bg, pre=pre)
    text = " ".join(text.split())
    u = rng.random()
    if u < 0.05:
        text += "."
    elif u < 0.07:
        text += "!"
    elif u < 0.12:
        text = text[0].upper() + text[1:]
    return text


def random_label(rng: np.random.Generator, two_prob: float = 0.2, no_bg_prob: float = 0.08,
                 boost: dict[str, int] | None = None) -> Label:
    """A random label. ``boost`` draws some motions more often: {"still": 3} makes "still" as
    likely as three other motions (for a fine-tune aimed at one weakness)."""
    bg = _pick(rng, COLOUR_NAMES)
    n = 2 if rng.random() < two_prob else 1
    subjects, used = [], {bg}
    for _ in range(n):
        colour = _pick(rng, [c for c in COLOUR_NAMES if c not in used])
        used.add(colour)
        shape = _pick(rng, SHAPE_NAMES)
        motions = [m for m in MOTION_NAMES if not (m == "spinning" and shape in ROUND)]
        motions += [m for m, k in (boost or {}).items() if m in motions for _ in range(k - 1)]
        subjects.append(Subject(colour, shape, _pick(rng, motions)))
    return Label(subjects, bg, bg_in_caption=not (rng.random() < no_bg_prob))


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _polygon(kind: str) -> np.ndarray:
    """Outline of unit size (fits a radius-1 circle, roughly), y pointing down."""
    if kind == "square":
        return np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]])
    if kind == "diamond":
        return np.array([[0, -1.05], [0.72, 0], [0, 1.05], [-0.72, 0]])
    if kind == "triangle":
        a = np.deg2rad([-90, 30, 150])
        return np.stack([np.cos(a), np.sin(a) + 0.15], -1) * 1.1
    if kind == "star":
        a = np.deg2rad(np.arange(10) * 36 - 90)
        r = np.where(np.arange(10) % 2 == 0, 1.1, 0.45)
        return np.stack([np.cos(a) * r, np.sin(a) * r], -1)
    if kind == "heart":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return np.stack([x, y + 2.5], -1) / 15.0
    raise ValueError(kind)


_POLYS = {k: _polygon(k) for k in ("square", "diamond", "triangle", "star", "heart")}


def _sd_polygon(px: np.ndarray, py: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance to a polygon (negative inside), Inigo Quilez's sdPolygon, vectorised."""
    d = (px - v[0, 0]) ** 2 + (py - v[0, 1]) ** 2
    s = np.ones_like(px)
    n = len(v)
    for i in range(n):
        j = i - 1
        ex, ey = v[j, 0] - v[i, 0], v[j, 1] - v[i, 1]
        wx, wy = px - v[i, 0], py - v[i, 1]
        h = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        bx, by = wx - ex * h, wy - ey * h
        d = np.minimum(d, bx * bx + by * by)
        c1 = py >= v[i, 1]
        c2 = py < v[j, 1]
        c3 = ex * wy > ey * wx
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        s = np.where(flip, -s, s)
    return s * np.sqrt(d)


def shape_alpha(shape: str, cx, cy, r, theta, size: int = SIZE) -> np.ndarray:
    """Coverage [F, size, size] in [0, 1] of ``shape`` centred at (cx, cy) (pixels, per frame),
    radius r (pixels, per frame), rotated by theta (radians, per frame)."""
    cx, cy, r, theta = (np.asarray(a, np.float64).reshape(-1, 1, 1) for a in (cx, cy, r, theta))
    g = np.arange(size, dtype=np.float64) + 0.5
    x = g[None, None, :] - cx
    y = g[None, :, None] - cy
    c, s = np.cos(theta), np.sin(theta)
    u = (c * x + s * y) / r  # rotate by -theta, then unit size
    w = (-s * x + c * y) / r
    if shape == "circle":
        d = np.sqrt(u * u + w * w) - 1.0
    elif shape == "ring":
        d = np.abs(np.sqrt(u * u + w * w) - 0.72) - 0.28
    else:
        d = _sd_polygon(u, w, _POLYS[shape])
    return np.clip(0.5 - d * r, 0.0, 1.0)  # distance back in pixels, 1 px ramp


def trajectory(motion: str, rng: np.random.Generator, frames: int = FRAMES, size: int = SIZE,
               slot: int | None = None, spread: float = 1.0):
    """Per-frame (cx, cy, r, theta) for a motion. ``slot`` 0/1 keeps two subjects apart
    (left/right or top/bottom half); None = whole frame.

    ``spread`` in (0, 1] narrows every random range around its middle (1 = the full range),
    and below 1 also fixes the discrete choices (linear ease, one bounce, counter-clockwise
    orbit and spin): a "canonical" composition per motion. Why: with positions drawn over the
    whole frame the mean clip for a prompt is a faint smear, which is what a diffusion model
    learns first, and a 2-core CPU run never got past it (0% subject colour after 2,000 steps);
    around a canonical layout the mean already shows the subject and its motion."""
    t = np.arange(frames) / (frames - 1)
    canonical = spread < 1.0

    class _R:  # rng with its uniform ranges narrowed by ``spread``
        def uniform(self, a, b, size=None):
            m = (a + b) / 2
            return m + spread * (rng.uniform(a, b, size) - m)

        def choice(self, items):
            return items[-1] if canonical else rng.choice(items)

        def random(self):
            return 0.0 if canonical else rng.random()

        def integers(self, a, b):
            return a if canonical else rng.integers(a, b)

    R_ = _R()
    S = float(size)
    r0 = S * R_.uniform(0.14, 0.22) if slot is None else S * R_.uniform(0.11, 0.16)
    theta0 = R_.uniform(-0.35, 0.35)
    lo, hi = r0 + 1, S - r0 - 1

    def span(a, b):  # a random position in [a, b] of the free range
        return R_.uniform(a, b)

    xr = (lo, hi) if slot is None else ((lo, S / 2 - 1) if slot == 0 else (S / 2 + 1, hi))
    cx = np.full(frames, span(*xr)) if xr[0] < xr[1] else np.full(frames, S / 2)
    cy = np.full(frames, span(lo, hi))
    r = np.full(frames, r0)
    th = np.full(frames, theta0)
    ease = t if R_.random() < 0.6 else 0.5 - 0.5 * np.cos(np.pi * t)
    if motion in ("left", "right"):
        dist = R_.uniform(0.6, 0.95) * (hi - lo) if slot is None else R_.uniform(0.5, 0.8) * (hi - lo)
        start = R_.uniform(lo + dist, hi) if motion == "left" else R_.uniform(lo, hi - dist)
        cx = start + (-dist if motion == "left" else dist) * ease
        if slot is not None:  # two subjects moving sideways: keep them on separate rows
            cy = np.full(frames, R_.uniform(lo, S / 2 - 1) if slot == 0 else R_.uniform(S / 2 + 1, hi))
    elif motion in ("up", "down"):
        dist = R_.uniform(0.6, 0.95) * (hi - lo) if slot is None else R_.uniform(0.5, 0.8) * (hi - lo)
        start = R_.uniform(lo + dist, hi) if motion == "up" else R_.uniform(lo, hi - dist)
        cy = start + (-dist if motion == "up" else dist) * ease
    elif motion == "bouncing":
        floor = R_.uniform(hi - 2, hi)
        height = R_.uniform(0.5, 0.8) * (hi - lo)
        n = int(R_.integers(1, 3))  # bounces per clip
        phase = R_.uniform(0, 1)
        cy = floor - height * np.abs(np.sin(np.pi * (n * t + phase)))
        cx = cx + R_.uniform(-0.1, 0.1) * S * t
    elif motion == "spinning":
        # canonical: half a turn (a square's or star's symmetry makes a full turn in 16 frames
        # read as jitter), drawn larger so the turn shows at 32 px
        turns = R_.choice([1.0, 0.5]) * R_.choice([-1, 1])
        th = theta0 + 2 * np.pi * turns * t
        r = r * (1.1 if not canonical else 1.4)
    elif motion in ("growing", "shrinking"):
        a, b = R_.uniform(0.3, 0.5), R_.uniform(1.1, 1.4)
        scale = a + (b - a) * ease
        if motion == "shrinking":
            scale = scale[::-1]
        r = r0 * scale
        if slot is None:
            cx = np.full(frames, S / 2 + R_.uniform(-0.1, 0.1) * S)
            cy = np.full(frames, S / 2 + R_.uniform(-0.1, 0.1) * S)
    elif motion == "pulsing":
        k = R_.choice([1.0, 2.0])
        r = r0 * (1 + R_.uniform(0.25, 0.4) * np.sin(2 * np.pi * (k * t + R_.uniform(0, 1))))
    elif motion == "orbiting":
        R = (R_.uniform(0.22, 0.3) if slot is None else R_.uniform(0.12, 0.16)) * S
        c0x = S / 2 if slot is None else (S / 4 if slot == 0 else 3 * S / 4)
        c0y = S / 2 + (R_.uniform(-0.05, 0.05) * S if slot is None else 0)
        phi = R_.uniform(0, 2 * np.pi) + R_.choice([-1, 1]) * 2 * np.pi * t
        cx = c0x + R * np.cos(phi)
        cy = c0y + R * np.sin(phi)
        r = np.full(frames, min(r0, 0.8 * R + 1))
    elif motion == "still":
        pass
    else:
        raise ValueError(motion)
    return cx, cy, r, th


def render(label: Label, rng: np.random.Generator, frames: int = FRAMES, size: int = SIZE,
           jitter: float = 0.05, spread: float = 1.0, alphas: list | None = None) -> np.ndarray:
    """Clip [3, F, H, W] float32 in [-1, 1]. ``alphas``, when given, receives each subject's
    coverage [F, H, W] in [0, 1] (the layered model's mask target)."""
    bg = np.array(COLOURS[label.background][0]) + rng.uniform(-jitter, jitter, 3)
    img = np.broadcast_to(np.clip(bg, 0, 1)[:, None, None, None], (3, frames, size, size)).copy()
    two = len(label.subjects) == 2
    slots = [0, 1] if two else [None]
    if two and rng.random() < 0.5:
        slots = [1, 0]
    for s, slot in zip(label.subjects, slots):
        col = np.clip(np.array(COLOURS[s.colour][0]) + rng.uniform(-jitter, jitter, 3), 0, 1)
        cx, cy, r, th = trajectory(s.motion, rng, frames, size, slot, spread)
        a = shape_alpha(s.shape, cx, cy, r, th, size)[None]
        if alphas is not None:
            alphas.append(a[0].astype(np.float32))
        img = img * (1 - a) + col[:, None, None, None] * a
    return (img * 2 - 1).astype(np.float32)


class Generator:
    """Deterministic stream of (clip, caption, label)."""

    def __init__(self, seed: int = 0, frames: int = FRAMES, size: int = SIZE, two_prob: float = 0.2,
                 heldout: bool = False, spread: float = 1.0, boost: dict[str, int] | None = None):
        self.rng = np.random.default_rng(seed)
        self.boost = boost
        self.frames, self.size, self.two_prob, self.heldout = frames, size, two_prob, heldout
        self.spread = spread

    def sample(self):
        label = random_label(self.rng, self.two_prob, boost=self.boost)
        if self.heldout:
            label.subjects = label.subjects[:1]
        clip = render(label, self.rng, self.frames, self.size, spread=self.spread)
        return clip, caption(label, self.rng, heldout=self.heldout), label

    def batch(self, n: int):
        items = [self.sample() for _ in range(n)]
        return (np.stack([c for c, _, _ in items]), [t for _, t, _ in items],
                [lab for _, _, lab in items])

    def batch_with_alpha(self, n: int):
        """Like ``batch``, plus each clip's subject coverage [N, F, H, W] (the union over its
        subjects)."""
        clips, caps, labels, masks = [], [], [], []
        for _ in range(n):
            label = random_label(self.rng, self.two_prob, boost=self.boost)
            al: list = []
            clips.append(render(label, self.rng, self.frames, self.size, spread=self.spread, alphas=al))
            caps.append(caption(label, self.rng, heldout=self.heldout))
            labels.append(label)
            masks.append(np.max(np.stack(al), axis=0))
        return np.stack(clips), caps, labels, np.stack(masks)


def clip_at(seed: int, index: int, **kw):
    """The ``index``-th clip of stream ``seed``, independent of what was drawn before."""
    return Generator(seed=(seed * 1_000_003 + index) & 0x7FFFFFFF, **kw).sample()


# ---------------------------------------------------------------------------------------------
# Evaluation prompts and the automatic check
# ---------------------------------------------------------------------------------------------


def eval_prompts() -> list[dict]:
    """40 fixed single-subject prompts: every colour 4x, every motion 3-4x, every shape 5-6x,
    each with a contrasting background. ``prompt`` is canonical phrasing, ``heldout`` the same
    label in a held-out word order."""
    rng = np.random.default_rng(1234)
    motions = [m for m in MOTION_NAMES]
    out = []
    for i in range(40):
        colour = COLOUR_NAMES[i % 10]
        motion = motions[i % len(motions)]
        shapes = [s for s in SHAPE_NAMES if not (motion == "spinning" and s in ROUND)]
        shape = shapes[(i * 3 + i // 10) % len(shapes)]
        bgs = [b for b in COLOUR_NAMES if b != colour and colour_distance(b, colour) > 0.6]
        bg = bgs[(i * 7) % len(bgs)]
        label = Label([Subject(colour, shape, motion)], bg)
        noun = SHAPES[shape][0]
        mword = MOTIONS[motion][0][0]
        canon = f"{article(colour)} {colour} {noun} {mword} on {article(bg)} {bg} background"
        out.append({"id": i, "prompt": " ".join(canon.split()),
                    "heldout": caption(label, rng, heldout=True), "label": label.to_json()})
    return out


def eval_set() -> dict:
    """What ``eval_prompts.json`` holds: the 40 eval labels in both phrasings (80 prompts; the
    held-out ones use word orders never trained on), each with its expected attributes, plus
    the check's constants and the named colours, so that a test outside Python (the Rust
    conditioning test) can score frames exactly as ``check_clip`` does."""
    prompts = []
    for e in eval_prompts():
        lab = label_from_json(e["label"])
        s = lab.subjects[0]
        for phrasing, key in (("canonical", "prompt"), ("heldout", "heldout")):
            prompts.append({
                "id": f"{e['id']:02d}-{phrasing}", "phrasing": phrasing, "prompt": e[key],
                "background": {"name": lab.background, "rgb": list(COLOURS[lab.background][0])},
                "subject": {"colour": s.colour, "rgb": list(COLOURS[s.colour][0]), "shape": s.shape,
                            "motion": s.motion},
            })
    return {
        "about": "loopsmith tiny model conditioning eval: generate each prompt (16 frames, 32x32 "
                 "RGB), score it with the rules in models/tiny/README.md (Evaluation) using "
                 "'check'; frames are RGB in [0, 1] (u8 / 255). Shape is listed but not checked.",
        "check": CHECK,
        "colours": {k: list(v[0]) for k, v in COLOURS.items()},
        "prompts": prompts,
    }


def dump_eval_set(d: dict) -> str:
    """JSON with one prompt (and one colour) per line, so diffs of the file stay readable."""
    head = {k: v for k, v in d.items() if k not in ("colours", "prompts")}
    lines = json.dumps(head, indent=1)[:-2] + ",\n"
    lines += ' "colours": {\n' + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in d["colours"].items()) + "\n },\n"
    lines += ' "prompts": [\n' + ",\n".join(f"  {json.dumps(p)}" for p in d["prompts"]) + "\n ]\n}\n"
    assert json.loads(lines) == json.loads(json.dumps(d))
    return lines


def label_from_eval(p: dict) -> Label:
    """A ``Label`` from one ``eval_set()["prompts"]`` entry."""
    s = p["subject"]
    return Label([Subject(s["colour"], s["shape"], s["motion"])], p["background"]["name"])


def colour_distance(a: str, b: str) -> float:
    return float(np.linalg.norm(np.subtract(COLOURS[a][0], COLOURS[b][0])))


def nearest_colour(rgb) -> str:
    rgb = np.asarray(rgb, np.float64)
    return min(COLOUR_NAMES, key=lambda c: float(np.sum((np.array(COLOURS[c][0]) - rgb) ** 2)))


def label_from_json(d: dict) -> Label:
    return Label([Subject(**s) for s in d["subjects"]], d["background"], d.get("bg_in_caption", True))


# The automatic check's constants. They are also written into eval_prompts.json ("check"), so
# the Rust conditioning test reads the same numbers; README.md spells the rules out.
CHECK = {
    "ring_inset": 2,       # background ring: pixels exactly this far inside the frame edge
                           # (the outermost pixels are where conv padding artefacts live)
    "colour_tol": 0.25,    # a measured colour must be within this RGB distance of the named one
    "fg_dist": 0.3,        # subject mask: RGB distance from the measured background above this
    "min_fg_pixels": 48,   # fewer subject pixels than this over the whole clip: no subject
    "min_area": 3,         # a frame "has" the subject when its mask has at least this many pixels
    "min_present": 12,     # ... and the motion check needs this many such frames (of 16)
    "move": 0.15,          # left/right/up/down: centroid displacement (frame widths) at least
    "cross": 0.6,          # ... and the other axis' displacement at most this share of it
    "still_range": 0.08,   # growing/shrinking/pulsing/still: centroid range (frame widths) below
    "spin_range": 0.12,    # spinning: centroid range below
    "bounce_range": 0.15,  # bouncing: vertical range above,
    "bounce_leg": 0.08,    # ... with a fall and a rise of at least this each,
    "orbit_range": 0.2,    # orbiting: both ranges above this,
    "orbit_sweep": 0.6,    # ... and the centroid sweeps at least this many turns around its mean
    "grow": 1.6,           # growing: area(end)/area(start) above; shrinking: below 1/grow
    "pulse": 1.3,          # pulsing: max/min area above, and an extreme inside the clip: the
    "pulse_bulge": 1.15,   # max area above both ends' areas (or the min below both) by this factor
    "spin_area": 1.35,     # spinning: max/min area below; still: below still_area
    "still_area": 1.2,
    "spin_iou": 0.8,       # spinning: some frame's mask overlaps frame 0's by IoU below this;
                           # still: every frame's IoU with frame 0 at least this
}


def check_clip(frames: np.ndarray, label: Label | dict, c: dict = CHECK) -> dict:
    """The automatic check of one generated clip against a one-subject label; the exact rules
    (README.md, "Evaluation") so that a Rust test can do the same on RGB frames.

    ``frames``: [F, H, W, 3] in [0, 1] (what the pipeline outputs; u8 frames / 255).

    1. Background = per-channel median (numpy's: the mean of the two middle values for an even
       count) of the ring of pixels ``ring_inset`` px inside the edge, over all frames.
       ``bg`` passes when its nearest named colour is the label's and it lies within
       ``colour_tol`` of it (or the caption named no background).
    2. Subject mask = pixels further than ``fg_dist`` (RGB distance) from that background.
       Subject colour = per-channel median over the mask's pixels of all frames; ``fg`` passes
       like ``bg``; fewer than ``min_fg_pixels`` mask pixels: fg and motion fail.
    3. Per frame: area = mask pixel count, centroid = mean of (x + 0.5, y + 0.5) over the mask.
       Motion statistics over the frames with area >= ``min_area`` (``_motion_stats``) and the
       rule for the label's motion (``_motion_ok``).
    ``ok`` = bg and fg and motion. Shape is not checked."""
    if isinstance(label, dict):
        label = label_from_json(label)
    s = label.subjects[0]
    f, h, w, _ = frames.shape
    fr = frames.astype(np.float64)
    k = int(c["ring_inset"])
    ring = np.concatenate([fr[:, k, k:w - k], fr[:, h - 1 - k, k:w - k],
                           fr[:, k + 1:h - 1 - k, k], fr[:, k + 1:h - 1 - k, w - 1 - k]], axis=1)
    bg = np.median(ring.reshape(-1, 3), axis=0)
    res = {"bg_rgb": bg.round(3).tolist(), "bg_name": nearest_colour(bg)}
    want_bg = np.array(COLOURS[label.background][0])
    res["bg"] = bool(not label.bg_in_caption or (
        res["bg_name"] == label.background and np.linalg.norm(bg - want_bg) <= c["colour_tol"]))
    mask = np.linalg.norm(fr - bg, axis=-1) > c["fg_dist"]  # [F, H, W]
    if mask.sum() < c["min_fg_pixels"]:
        res.update(fg=False, motion=False, ok=False, why="no subject")
        return res
    fg = np.median(fr[mask], axis=0)
    res["fg_rgb"] = fg.round(3).tolist()
    res["fg_name"] = nearest_colour(fg)
    res["fg"] = bool(res["fg_name"] == s.colour
                     and np.linalg.norm(fg - np.array(COLOURS[s.colour][0])) <= c["colour_tol"])
    m = _motion_stats(mask, c)
    res["stats"] = {k2: round(float(v), 3) for k2, v in m.items()}
    res["motion_guess"] = _guess_motion(m, c)
    res["motion"] = bool(_motion_ok(s.motion, m, c))
    res["ok"] = bool(res["bg"] and res["fg"] and res["motion"])
    return res


def _motion_stats(mask: np.ndarray, c: dict = CHECK) -> dict:
    """Statistics of the subject mask [F, H, W] (bool) that the motion rules use. Lengths are
    in frame widths; only frames with area >= min_area count ("present")."""
    f, h, w = mask.shape
    W = float(w)
    area = mask.sum(axis=(1, 2)).astype(np.float64)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    a = np.maximum(area, 1.0)
    cx = (mask * xs).sum(axis=(1, 2)) / a
    cy = (mask * ys).sum(axis=(1, 2)) / a
    idx = np.flatnonzero(area >= c["min_area"])
    if len(idx) < 4:
        return {"frames_present": len(idx)}
    x, y, ar = cx[idx], cy[idx], area[idx]
    # displacement: mean of the last 3 present frames minus mean of the first 3
    dx = (x[-3:].mean() - x[:3].mean()) / W
    dy = (y[-3:].mean() - y[:3].mean()) / W
    # bouncing: the largest fall (y increasing) after a high point, and the largest rise after
    # a low point (image y points down)
    y_down = (y - np.minimum.accumulate(y)).max() / W
    y_up = (np.maximum.accumulate(y) - y).max() / W
    # orbiting: the angle of the centroid around its mean, unwrapped, first to last, in turns
    ang = np.unwrap(np.arctan2(y - y.mean(), x - x.mean()))
    sweep = abs(ang[-1] - ang[0]) / (2 * np.pi)
    # spinning vs still: overlap (IoU) of each present frame's mask with the first present one
    m0 = mask[idx[0]]
    ious = [np.logical_and(m0, mask[j]).sum() / max(np.logical_or(m0, mask[j]).sum(), 1) for j in idx[1:]]
    return {"frames_present": len(idx), "dx": dx, "dy": dy, "xrange": np.ptp(x) / W,
            "yrange": np.ptp(y) / W,
            # area of the last 2 present frames over the first 2 (+1 px each: no division by 0)
            "area_end": (a1 := ar[-2:].mean() + 1) / (a0 := ar[:2].mean() + 1),
            "area_minmax": (ar.max() + 1) / (ar.min() + 1),
            # pulsing: how far the largest (smallest) area rises above (falls below) both ends
            "area_bulge": max((ar.max() + 1) / max(a0, a1), min(a0, a1) / (ar.min() + 1)), "y_up": y_up, "y_down": y_down,
            "sweep": sweep, "iou_min": float(min(ious))}


def _motion_ok(motion: str, m: dict, c: dict = CHECK) -> bool:
    if m["frames_present"] < c["min_present"]:
        return False
    still_pos = m["xrange"] < c["still_range"] and m["yrange"] < c["still_range"]
    mv, cr = c["move"], c["cross"]
    if motion == "left":
        return m["dx"] < -mv and abs(m["dy"]) < cr * abs(m["dx"])
    if motion == "right":
        return m["dx"] > mv and abs(m["dy"]) < cr * abs(m["dx"])
    if motion == "up":
        return m["dy"] < -mv and abs(m["dx"]) < cr * abs(m["dy"])
    if motion == "down":
        return m["dy"] > mv and abs(m["dx"]) < cr * abs(m["dy"])
    if motion == "bouncing":
        return (m["yrange"] > c["bounce_range"] and m["y_up"] > c["bounce_leg"]
                and m["y_down"] > c["bounce_leg"] and m["xrange"] < cr * m["yrange"])
    if motion == "orbiting":
        return m["xrange"] > c["orbit_range"] and m["yrange"] > c["orbit_range"] and m["sweep"] > c["orbit_sweep"]
    if motion == "growing":
        return m["area_end"] > c["grow"] and still_pos
    if motion == "shrinking":
        return m["area_end"] < 1 / c["grow"] and still_pos
    if motion == "pulsing":
        return m["area_minmax"] > c["pulse"] and m["area_bulge"] > c["pulse_bulge"] and still_pos
    if motion == "spinning":
        return (m["xrange"] < c["spin_range"] and m["yrange"] < c["spin_range"]
                and m["area_minmax"] < c["spin_area"] and m["iou_min"] < c["spin_iou"])
    if motion == "still":
        return still_pos and m["area_minmax"] < c["still_area"] and m["iou_min"] >= c["spin_iou"]
    raise ValueError(motion)


def _guess_motion(m: dict, c: dict = CHECK) -> str:
    """The first motion whose rule the statistics pass (for the printed matrix only)."""
    for motion in ("orbiting", "bouncing", "left", "right", "up", "down", "growing", "shrinking",
                   "pulsing", "spinning", "still"):
        if _motion_ok(motion, m, c):
            return motion
    return "?"


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------


def vocabulary() -> list[str]:
    """Every word and punctuation mark a caption can contain, in a fixed order."""
    import re

    words: list[str] = []

    def add(text: str):
        for w in re.findall(r"\w+|[^\w\s]+", text.lower()):
            if w not in words:
                words.append(w)

    for w in VOCAB_EXTRA + FILLERS:
        add(w)
    for _, syn in COLOURS.values():
        add(" ".join(syn))
    for syn in SHAPES.values():
        add(" ".join(syn))
    for part, third in MOTIONS.values():
        add(" ".join(part + third))
    for t in BG_SUFFIX + BG_PREFIX + TRAIN_TEMPLATES + HELDOUT_TEMPLATES + TWO_TEMPLATES:
        add(re.sub(r"\{\w+\}", " ", t))
    return words


def build_tokenizer(max_length: int = MAX_LENGTH):
    """Word-level tokenizer.json via common.py: <|startoftext|> 0, <|pad|> 1, <|endoftext|> 2,
    <|unk|> 3, then the caption vocabulary; right-padded with 1 to ``max_length``."""
    sys.path.insert(0, str(EXPORT))
    import common as C

    vocab = {tok: i for tok, i in (C.TINY_BOS, C.TINY_PAD, C.TINY_EOS, C.TINY_UNK)}
    for w in vocabulary():
        vocab.setdefault(w, len(vocab))
    return C.build_word_tokenizer(vocab, max_length=max_length)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def save_grid(clips: np.ndarray, captions: list[str], path: Path, scale: int = 3) -> None:
    """Clips [N, 3, F, H, W] in [-1, 1] -> one PNG, a row of frames per clip, caption above."""
    from PIL import Image, ImageDraw

    n, _, f, h, w = clips.shape
    pad, text_h = 2, 12
    W = f * (w * scale + pad) + pad
    H = n * (h * scale + pad + text_h) + pad
    img = Image.new("RGB", (W, H), (128, 128, 128))
    draw = ImageDraw.Draw(img)
    u8 = (np.clip(clips / 2 + 0.5, 0, 1) * 255).round().astype(np.uint8)
    for i in range(n):
        y0 = pad + i * (h * scale + pad + text_h)
        draw.text((pad, y0), captions[i][:150], fill=(255, 255, 255))
        for k in range(f):
            fr = Image.fromarray(u8[i, :, k].transpose(1, 2, 0)).resize((w * scale, h * scale), Image.NEAREST)
            img.paste(fr, (pad + k * (w * scale + pad), y0 + text_h))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def self_check(n: int = 400, seed: int = 7) -> dict:
    """check_clip on ground-truth one-subject clips: pass rate per motion, and on the 40 eval
    labels rendered directly."""
    rng = np.random.default_rng(seed)
    per: dict[str, list[int]] = {}
    fails = []
    for i in range(n):
        label = random_label(rng, two_prob=0.0, no_bg_prob=0.0)
        clip = render(label, rng)
        r = check_clip(clip.transpose(1, 2, 3, 0) / 2 + 0.5, label)
        k = label.subjects[0].motion
        per.setdefault(k, []).append(int(r["ok"]))
        if not r["ok"] and len(fails) < 10 and k != "pulsing":
            fails.append({"label": label.to_json(), **{k2: r.get(k2) for k2 in ("bg", "fg", "motion", "motion_guess", "stats")}})
    ev = eval_prompts()
    ev_ok = 0
    for e in ev:
        lab = label_from_json(e["label"])
        clip = render(lab, np.random.default_rng(e["id"]))
        ev_ok += int(check_clip(clip.transpose(1, 2, 3, 0) / 2 + 0.5, lab)["ok"])
    return {"ground_truth_pass": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(per.items())},
            "overall": sum(sum(v) for v in per.values()) / n, "eval40_ground_truth_pass": ev_ok,
            "first_failures": fails}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="write sample grids (PNG) and captions here")
    ap.add_argument("--n", type=int, default=24, help="clips to dump with --out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=SIZE)
    ap.add_argument("--heldout", action="store_true", help="held-out phrasings")
    ap.add_argument("--self-check", action="store_true")
    ap.add_argument("--write-tokenizer", type=Path, metavar="PATH")
    ap.add_argument("--write-eval", type=Path, metavar="PATH", help="write eval_prompts.json")
    ap.add_argument("--captions", type=int, default=0, help="print N captions")
    ap.add_argument("--bench", action="store_true", help="time clip generation")
    a = ap.parse_args(argv)
    if a.write_tokenizer:
        a.write_tokenizer.parent.mkdir(parents=True, exist_ok=True)
        tok = build_tokenizer()
        tok.save(str(a.write_tokenizer))
        print(f"wrote {a.write_tokenizer}: {tok.get_vocab_size()} tokens, max_length {MAX_LENGTH}")
    if a.write_eval:
        a.write_eval.write_text(dump_eval_set(eval_set()))
        print(f"wrote {a.write_eval}: {len(eval_set()['prompts'])} prompts")
    if a.captions:
        g = Generator(a.seed, heldout=a.heldout)
        for _ in range(a.captions):
            print(g.sample()[1])
    if a.out:
        g = Generator(a.seed, size=a.size, heldout=a.heldout)
        clips, caps, labels = g.batch(a.n)
        for j in range(0, a.n, 8):
            save_grid(clips[j:j + 8], caps[j:j + 8], a.out / f"grid_{j // 8:02d}.png")
        (a.out / "captions.json").write_text(json.dumps(
            [{"caption": c, "label": lab.to_json()} for c, lab in zip(caps, labels)], indent=1))
        print(f"wrote {len(range(0, a.n, 8))} grids to {a.out}")
    if a.self_check:
        print(json.dumps(self_check(), indent=1))
    if a.bench:
        import time

        g = Generator(0)
        t = time.perf_counter()
        g.batch(64)
        print(f"{64 / (time.perf_counter() - t):.0f} clips/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
