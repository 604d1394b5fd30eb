#!/usr/bin/env python3
"""Export an AnimateDiff(-Lightning) checkpoint to a loopsmith model bundle (models/BUNDLE.md).

Inputs are local files only (nothing is downloaded; HF_HUB_OFFLINE is forced):

* ``--sd15 DIR``: a Stable Diffusion 1.5 diffusers folder (``unet/``, ``vae/``,
  ``text_encoder/``, ``tokenizer/``, optionally ``scheduler/scheduler_config.json``);
* ``--motion-adapter PATH``: a diffusers MotionAdapter folder (config.json + weights) or a
  single state-dict file (``.safetensors``, ``.bin``/``.pt``/``.ckpt``), e.g. ByteDance's
  ``animatediff_lightning_4step_diffusers.safetensors``; a file is loaded into
  ``MotionAdapter(**config)``, the config being ``--motion-adapter-config JSON`` or the
  MotionAdapter defaults (which are AnimateDiff v2/v3 and Lightning's).

    python3 models/export/animatediff.py --sd15 ~/sd15 \\
        --motion-adapter ~/animatediff_lightning_4step_diffusers.safetensors \\
        --out bundles/animatediff-lightning-4step --steps 4

What it does:

1. ``UNetMotionModel.from_unet2d(unet, adapter)``; exports text encoder, denoiser and VAE decoder
   to ONNX, opset 17, fp32, with the TorchScript exporter (``dynamo=False``). Batch is dynamic;
   frames and latent height/width are dynamic too unless ``--static-shapes`` (one graph per
   sticker shape, which CUDA graphs need). Weights past 2 GB go to ``<graph>.onnx.data``.
2. Unless ``--no-optimize``: ``onnxruntime.transformers.optimizer`` fusions (model types
   ``unet``/``clip``/``vae``), which turn diffusers' spatial attention into ORT's contrib
   ``MultiHeadAttention`` (flash / memory-efficient kernels on CUDA) and, for ``--target cuda``,
   GroupNorm/SkipGroupNorm/NhwcConv/BiasSplitGelu/BiasAdd (CUDA-only contrib ops);
   ``--target cpu`` keeps only fusions the CPU provider runs.
3. ``--precision fp16`` (default): ``convert_float_to_float16(keep_io_types=True)``: every
   graph's inputs and outputs stay float32 (Cast nodes inside), so the engine always feeds
   and reads f32; the sinusoidal timestep projection (``time_proj``) stays fp32, as in
   diffusers' fp16 pipelines. ``--fp32-ops unet:MultiHeadAttention`` keeps op types in fp32.
4. tokenizer.json from the checkpoint's CLIP tokenizer (``CLIPTokenizer[Fast]`` via
   ``AutoTokenizer``) with padding to 77 with its pad token (SD1.5: ``<|endoftext|>``, 49407)
   and truncation stored in it; ids are checked against transformers.
5. model.toml: AnimateDiff-Lightning's scheduler (``euler_discrete``, ``trailing``, ``linear``
   betas from the checkpoint's scheduler config, default 0.00085..0.012), ``--steps`` (4),
   ``--guidance`` (1.0), sha256 of every file.
6. ``--check`` (default on): each graph in onnxruntime against the torch module on a small
   input (fp32: error must be <= 1e-4; fp16: reported), where the target's provider exists.

``--random-sd15``: no checkpoint; an SD1.5-size UNet + default MotionAdapter + CLIP-L-size text
encoder + SD VAE with random weights from configs written here (for GPU benchmarks; needs
~40 GB of RAM to export, don't run it on a small machine), and a word-level stand-in tokenizer
with CLIP's special ids (or ``--tokenizer DIR`` for a real CLIP tokenizer folder).

``--write-tiny-checkpoint DIR``: saves diffusers' tiny test components (as in
make_parity_fixture.py) as ``DIR/sd15`` + ``DIR/motion_adapter`` (folder) +
``DIR/motion_adapter.safetensors`` (+ ``DIR/motion_adapter_config.json``), to exercise this
script offline:

    python3 models/export/animatediff.py --write-tiny-checkpoint /tmp/tiny-ckpt
    python3 models/export/animatediff.py --sd15 /tmp/tiny-ckpt/sd15 \\
        --motion-adapter /tmp/tiny-ckpt/motion_adapter.safetensors \\
        --motion-adapter-config /tmp/tiny-ckpt/motion_adapter_config.json \\
        --frames 16 --height 16 --width 16 --precision fp32 --target cpu --out /tmp/tiny-bundle

Packages: as make_parity_fixture.py (torch, diffusers, transformers, onnx, onnxruntime 1.31.1,
tokenizers, numpy, safetensors); onnxruntime-gpu to run the fp16/CUDA checks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common as C  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Configs written in code (never downloaded): Stable Diffusion 1.5 and AnimateDiff's adapter.
# ---------------------------------------------------------------------------------------------

SD15_UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, center_input_sample=False,
    flip_sin_to_cos=True, freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, downsample_padding=1,
    mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32, norm_eps=1e-5,
    cross_attention_dim=768, attention_head_dim=8,
)
SD15_VAE = dict(
    in_channels=3, out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), layers_per_block=2, act_fn="silu",
    latent_channels=4, norm_num_groups=32, sample_size=512, scaling_factor=0.18215,
)
# openai/clip-vit-large-patch14's text tower, as SD1.5 ships it (bos/eos/pad 0/2/1 in the
# config; the tokenizer's real ids are 49406/49407).
SD15_TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
    layer_norm_eps=1e-5, projection_dim=768, bos_token_id=0, eos_token_id=2, pad_token_id=1,
)
SD15_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      num_train_timesteps=1000, steps_offset=1, prediction_type="epsilon")
# MotionAdapter() defaults = AnimateDiff v2/v3 and AnimateDiff-Lightning.
MOTION_DEFAULT: dict = {}


def _patch_ort_fusions() -> None:
    """onnxruntime 1.31.1's FusionAttentionUnet.get_num_heads does ``int(array_of_shape_[1])``,
    a TypeError under numpy >= 2.4 that aborts the whole UNet optimisation. Same logic, fixed."""
    import onnxruntime.transformers.optimizer  # noqa: F401  (puts its modules in sys.modules)

    def get_num_heads(self, reshape_q, is_torch2: bool = False) -> int:
        num_heads = 0
        if is_torch2:
            parent = self.model.get_parent(reshape_q, 1)
            if parent and parent.op_type == "Concat" and len(parent.input) == 4:
                v = self.model.get_constant_value(parent.input[2])
                if isinstance(v, np.ndarray) and list(v.shape) == [1]:
                    num_heads = int(v.reshape(-1)[0])
        else:
            v = self.model.get_constant_value(reshape_q.input[1])
            if isinstance(v, np.ndarray) and list(v.shape) == [4]:
                num_heads = int(v[2])
        return num_heads if num_heads > 0 else 0

    # ORT's transformer tools import each other both as a package and as top-level modules.
    for name, mod in list(sys.modules.items()):
        if name.endswith("fusion_attention_unet") and hasattr(mod, "FusionAttentionUnet"):
            mod.FusionAttentionUnet.get_num_heads = get_num_heads


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_motion_adapter(path: Path, config_json: Path | None):
    import torch
    from diffusers import MotionAdapter

    path = Path(path)
    if path.is_dir():
        return MotionAdapter.from_pretrained(str(path), local_files_only=True)
    cfg = json.loads(Path(config_json).read_text()) if config_json else dict(MOTION_DEFAULT)
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    adapter = MotionAdapter(**cfg)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    missing, unexpected = adapter.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SystemExit(f"motion adapter {path}: missing {missing[:5]}..., unexpected {unexpected[:5]}... "
                         "(wrong --motion-adapter-config?)")
    return adapter


def load_checkpoint(sd15: Path, motion: Path, motion_config: Path | None) -> dict:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel

    sd15 = Path(sd15)
    comp = {
        "unet2d": UNet2DConditionModel.from_pretrained(str(sd15 / "unet"), local_files_only=True),
        "vae": AutoencoderKL.from_pretrained(str(sd15 / "vae"), local_files_only=True),
        "text_encoder": CLIPTextModel.from_pretrained(str(sd15 / "text_encoder"), local_files_only=True),
        "tokenizer": AutoTokenizer.from_pretrained(str(sd15 / "tokenizer"), local_files_only=True),
        "motion_adapter": load_motion_adapter(motion, motion_config),
    }
    sched = sd15 / "scheduler" / "scheduler_config.json"
    comp["scheduler_config"] = json.loads(sched.read_text()) if sched.exists() else dict(SD15_SCHEDULER)
    return comp


def random_sd15(tokenizer_dir: Path | None) -> dict:
    import torch
    from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    comp = {
        "unet2d": UNet2DConditionModel(**SD15_UNET),
        "vae": AutoencoderKL(**SD15_VAE),
        "text_encoder": CLIPTextModel(CLIPTextConfig(**SD15_TEXT)),
        "motion_adapter": MotionAdapter(**MOTION_DEFAULT),
        "scheduler_config": dict(SD15_SCHEDULER),
    }
    if tokenizer_dir:
        comp["tokenizer"] = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    else:
        # Stand-in: word-level, CLIP's ids (BOS 49406, EOS = pad 49407), for timing only.
        bos, eos, unk = ("<|startoftext|>", 49406), ("<|endoftext|>", 49407), ("<|unk|>", 49405)
        tok = C.build_word_tokenizer(C.word_vocab(bos=bos, pad=eos, eos=eos, unk=unk, first_word_id=0),
                                     bos=bos, pad=eos, eos=eos, unk=unk)
        comp["tokenizer_json"] = tok
    return comp


def write_tiny_checkpoint(root: Path) -> None:
    """diffusers' tiny AnimateDiff test components as an SD1.5-style folder + motion adapter."""
    from safetensors.torch import save_file

    root = Path(root)
    comp = C.tiny_components()
    sd = root / "sd15"
    comp["unet2d"].save_pretrained(str(sd / "unet"))
    comp["vae"].save_pretrained(str(sd / "vae"))
    comp["text_encoder"].save_pretrained(str(sd / "text_encoder"))
    tokdir = sd / "tokenizer"
    tokdir.mkdir(parents=True, exist_ok=True)
    C.build_tiny_tokenizer().save(str(tokdir / "tokenizer.json"))
    C.hf_tokenizer_from(tokdir / "tokenizer.json").save_pretrained(str(tokdir))
    (sd / "scheduler").mkdir(parents=True, exist_ok=True)
    (sd / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "DDIMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
         "beta_schedule": "linear", "clip_sample": False, "num_train_timesteps": 1000}, indent=1))
    comp["motion_adapter"].save_pretrained(str(root / "motion_adapter"))
    save_file({k: v.contiguous() for k, v in comp["motion_adapter"].state_dict().items()},
              str(root / "motion_adapter.safetensors"))
    cfg = {k: v for k, v in dict(comp["motion_adapter"].config).items() if not k.startswith("_")}
    (root / "motion_adapter_config.json").write_text(json.dumps(cfg, indent=1))
    print(f"tiny checkpoint written to {root}")


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------


def write_tokenizer(comp: dict, out: Path, max_length: int) -> int:
    """Write tokenizer.json with padding/truncation set; returns the pad id."""
    if "tokenizer_json" in comp:
        tok = comp["tokenizer_json"]
        tok.save(str(out / C.FILES["tokenizer"]))
        return tok.padding["pad_id"]
    hf = comp["tokenizer"]
    backend = hf.backend_tokenizer  # a tokenizers.Tokenizer (CLIPTokenizerFast / TokenizersBackend)
    pad_id = hf.pad_token_id if hf.pad_token_id is not None else hf.eos_token_id
    pad_tok = hf.convert_ids_to_tokens(pad_id)
    backend.enable_truncation(max_length=max_length)
    backend.enable_padding(direction="right", pad_id=pad_id, pad_token=pad_tok, length=max_length)
    path = out / C.FILES["tokenizer"]
    backend.save(str(path))
    prompts = ["A painting of a squirrel eating a burger", "", "a CAT, dancing!",
               " ".join(["happy cat"] * 60)]
    want = [hf(p, padding="max_length", max_length=max_length, truncation=True).input_ids for p in prompts]
    got = C.encode_ids(path, prompts)
    if want != got:
        raise SystemExit(f"tokenizer.json ids differ from transformers': {want[0][:10]} vs {got[0][:10]}")
    return int(pad_id)


# ---------------------------------------------------------------------------------------------
# Optimisation and fp16
# ---------------------------------------------------------------------------------------------

CUDA_ONLY_FUSIONS = ("enable_nhwc_conv", "enable_group_norm", "enable_skip_group_norm",
                     "enable_bias_splitgelu", "enable_packed_qkv", "enable_packed_kv", "enable_bias_add")


def optimize_graph(src: Path, dst: Path, model_type: str, target: str, precision: str,
                   fp32_ops: list[str]) -> dict:
    """ORT transformer fusions (+ fp16), src -> dst. Returns fused-operator counts."""
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    _patch_ort_fusions()
    opts = FusionOptions(model_type)
    if target == "cpu":
        for k in CUDA_ONLY_FUSIONS:
            if hasattr(opts, k):
                setattr(opts, k, False)
    elif model_type == "unet":
        # as onnxruntime's stable_diffusion/optimize_pipeline.py: packed K/V only for fp16
        opts.enable_packed_kv = precision == "fp16" and opts.enable_packed_kv
        opts.enable_packed_qkv = precision == "fp16" and opts.enable_packed_qkv
    m = optimize_model(str(src), model_type=model_type, num_heads=0, hidden_size=0, opt_level=0,
                       optimization_options=opts, use_gpu=(target == "cuda"))
    if precision == "fp16":
        # Keep the sinusoidal timestep projection in fp32 (sin/cos of t*freq up to 999).
        keep = [n.name for n in m.model.graph.node if "time_proj" in n.name]
        m.convert_float_to_float16(keep_io_types=True, op_block_list=fp32_ops, node_block_list=keep)
    size = sum(t.ByteSize() for t in m.model.graph.initializer)
    external = size > 1_800_000_000
    for f in (dst, dst.parent / (dst.name + ".data")):
        if f.exists():
            f.unlink()
    m.save_model_to_file(str(dst), use_external_data_format=external, all_tensors_to_one_file=True)
    if not external:
        onnx.checker.check_model(str(dst))
    counts = {}
    for n in m.model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    interesting = ("MultiHeadAttention", "Attention", "GroupNorm", "SkipGroupNorm", "NhwcConv",
                   "BiasSplitGelu", "BiasAdd", "SkipLayerNormalization", "LayerNormalization",
                   "Gelu", "QuickGelu", "FastGelu", "BiasGelu", "Softmax")
    return {k: counts[k] for k in interesting if k in counts}


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def check_bundle(out: Path, comp: dict, unet, frames: int, lh: int, lw: int, target: str,
                 precision: str) -> dict:
    import onnxruntime as ort

    have_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    provider = "cuda" if target == "cuda" and have_cuda else "cpu"
    rng = np.random.default_rng(0)
    ctx = unet.config.cross_attention_dim
    f = frames
    feeds = {
        "text_encoder": {"input_ids": rng.integers(0, 1000, (2, 77)).astype(np.int64)},
        "denoiser": {
            "sample": rng.standard_normal((2, unet.config.in_channels, f, lh, lw)).astype(np.float32),
            "timestep": np.array([999.0, 499.0], np.float32),
            "encoder_hidden_states": rng.standard_normal((2 * f, 77, ctx)).astype(np.float32),
        },
        "vae_decoder": {"latent_sample": rng.standard_normal((2, comp["vae"].config.latent_channels, lh, lw)).astype(np.float32)},
    }
    modules = {"text_encoder": comp["text_encoder"], "denoiser": unet, "vae_decoder": comp["vae"]}
    result = {}
    for key, module in modules.items():
        try:
            sess = C.ort_session(out / C.FILES[key], provider=provider)
        except Exception as e:  # e.g. fp16 / CUDA-only contrib ops on a CPU-only machine
            result[key] = f"not run on {provider}: {str(e).splitlines()[0][:200]}"
            continue
        got = sess.run(None, feeds[key])[0]
        want = C.torch_forward(key, module, feeds[key])
        err = float(np.max(np.abs(got.astype(np.float64) - want)))
        scale = float(np.max(np.abs(want)))
        result[key] = {"provider": provider, "max_abs_err": err, "max_abs_ref": scale}
        if precision == "fp32" and not err <= 1e-4 * max(1.0, scale):
            raise SystemExit(f"{key}: ONNX differs from torch by {err}")
    return result


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Export AnimateDiff(-Lightning) to a loopsmith bundle.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--sd15", type=Path, help="SD1.5 diffusers folder")
    src.add_argument("--random-sd15", action="store_true", help="random SD1.5-size weights")
    src.add_argument("--write-tiny-checkpoint", type=Path, metavar="DIR",
                     help="save the tiny test components as a checkpoint and exit")
    ap.add_argument("--motion-adapter", type=Path, help="MotionAdapter folder or state-dict file")
    ap.add_argument("--motion-adapter-config", type=Path, help="JSON config for a state-dict file")
    ap.add_argument("--tokenizer", type=Path, help="(--random-sd15) a CLIP tokenizer folder")
    ap.add_argument("--out", type=Path, help="bundle folder to write")
    ap.add_argument("--work-dir", type=Path, help="for the fp32 graphs (default: a temp folder)")
    ap.add_argument("--name", default="animatediff-lightning-4step")
    ap.add_argument("--licence", default="creativeml-openrail-m")
    ap.add_argument("--description", default="AnimateDiff-Lightning (SD1.5 + distilled motion adapter), "
                    "4 steps, no CFG.")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--height", type=int, default=None, help="pixels (default: UNet sample_size x VAE factor)")
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--fps", type=int, default=8)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--static-shapes", action="store_true", help="fixed frames/height/width")
    ap.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    ap.add_argument("--target", choices=["cuda", "cpu"], default="cuda", help="which fusions to allow")
    ap.add_argument("--no-optimize", action="store_true", help="skip ORT fusions (fp16 still applies)")
    ap.add_argument("--fp32-ops", default="", help="e.g. unet:MultiHeadAttention,vae:Softmax")
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args(argv)

    if a.write_tiny_checkpoint:
        write_tiny_checkpoint(a.write_tiny_checkpoint)
        return 0
    if not a.out:
        ap.error("--out is required")
    if a.sd15 and not a.motion_adapter:
        ap.error("--sd15 needs --motion-adapter")

    import torch
    from diffusers import UNetMotionModel

    torch.set_grad_enabled(False)
    comp = random_sd15(a.tokenizer) if a.random_sd15 else load_checkpoint(a.sd15, a.motion_adapter,
                                                                         a.motion_adapter_config)
    unet = UNetMotionModel.from_unet2d(comp["unet2d"], comp["motion_adapter"]).eval()
    comp["text_encoder"].eval()
    comp["vae"].eval()
    vae_factor = 2 ** (len(comp["vae"].config.block_out_channels) - 1)
    height = a.height or unet.config.sample_size * vae_factor
    width = a.width or unet.config.sample_size * vae_factor
    if height % (vae_factor * 8) or width % (vae_factor * 8):
        # The UNet downsamples the latent 2^(levels-1) times; diffusers wants multiples of 8.
        print(f"warning: {width}x{height} is not a multiple of {vae_factor * 8} pixels")
    lh, lw = height // vae_factor, width // vae_factor

    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    for name in [*C.FILES.values(), *(f + ".data" for f in C.FILES.values()), "model.toml"]:
        if (out / name).is_file():
            (out / name).unlink()
    tmp = None
    work = a.work_dir
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="loopsmith-export-", dir=out.parent)
        work = Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    fp32_dir = work / "fp32"
    fp32_dir.mkdir(exist_ok=True)

    # Dynamic-shape graphs are traced at a small latent (cheaper); static ones at the target.
    trace_h, trace_w = (lh, lw) if a.static_shapes else (min(lh, 16), min(lw, 16))
    print(f"exporting fp32 ONNX to {fp32_dir} (latent {lh}x{lw}, {a.frames} frames, "
          f"{'static' if a.static_shapes else 'dynamic'} shapes)")
    C.export_text_encoder(comp["text_encoder"], fp32_dir / C.FILES["text_encoder"])
    C.export_denoiser(unet, fp32_dir / C.FILES["denoiser"], a.frames, trace_h, trace_w,
                      dynamic_spatial=not a.static_shapes)
    C.export_vae_decoder(comp["vae"], fp32_dir / C.FILES["vae_decoder"], trace_h, trace_w,
                         dynamic_spatial=not a.static_shapes)

    fp32_ops = {"unet": [], "clip": [], "vae": []}
    for spec in filter(None, a.fp32_ops.split(",")):
        part, op = spec.split(":")
        fp32_ops[{"text_encoder": "clip", "vae_decoder": "vae", "denoiser": "unet"}.get(part, part)].append(op)
    fused = {}
    for key, mtype in (("text_encoder", "clip"), ("denoiser", "unet"), ("vae_decoder", "vae")):
        src_path, dst_path = fp32_dir / C.FILES[key], out / C.FILES[key]
        if a.no_optimize and a.precision == "fp32":
            import onnx

            C.save_onnx(onnx.load(str(src_path)), dst_path)
            continue
        if a.no_optimize:
            import onnx
            from onnxruntime.transformers.onnx_model import OnnxModel

            m = OnnxModel(onnx.load(str(src_path)))
            keep = [n.name for n in m.model.graph.node if "time_proj" in n.name]
            m.convert_float_to_float16(keep_io_types=True, op_block_list=fp32_ops[mtype], node_block_list=keep)
            C.save_onnx(m.model, dst_path)
            continue
        print(f"optimizing {key} ({mtype}, target {a.target}, {a.precision})")
        fused[key] = optimize_graph(src_path, dst_path, mtype, a.target, a.precision, fp32_ops[mtype])
        print(f"  {fused[key]}")

    max_len = int(getattr(comp.get("tokenizer"), "model_max_length", 77) or 77)
    max_len = 77 if max_len > 10_000 else max_len
    pad_id = write_tokenizer(comp, out, max_len)

    sc = comp["scheduler_config"]
    beta_start, beta_end = float(sc.get("beta_start", 0.00085)), float(sc.get("beta_end", 0.012))
    scheduler = C.default_scheduler_table(
        kind="euler_discrete", beta_start=beta_start, beta_end=beta_end, beta_schedule="linear",
        timestep_spacing="trailing", num_train_timesteps=int(sc.get("num_train_timesteps", 1000)),
        prediction_type=sc.get("prediction_type", "epsilon"), steps_offset=int(sc.get("steps_offset", 0)),
    )
    C.write_model_toml(
        out, name=a.name, family="animatediff", licence=a.licence, description=a.description,
        video={"width": width, "height": height, "frames": a.frames, "fps": a.fps},
        latent={"channels": int(comp["vae"].config.latent_channels), "downscale": vae_factor,
                "scaling_factor": float(comp["vae"].config.scaling_factor)},
        scheduler=scheduler,
        defaults={"steps": a.steps, "guidance": a.guidance},
        text={"max_length": max_len, "pad_id": pad_id,
              "hidden_size": int(comp["text_encoder"].config.hidden_size)},
    )
    report = {"bundle": str(out), "precision": a.precision, "target": a.target, "fused_ops": fused,
              "files": {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}}
    if not a.no_check:
        ch, cw = (lh, lw) if a.static_shapes else (min(lh, 16), min(lw, 16))
        cf = a.frames if a.static_shapes else min(a.frames, 16)
        report["check"] = check_bundle(out, comp, unet, cf, ch, cw, a.target, a.precision)
    if tmp is not None:
        tmp.cleanup()
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
