"""Shared pieces of loopsmith's model exporters.

Used by ``make_parity_fixture.py`` (the tiny offline parity fixture) and ``animatediff.py``
(real AnimateDiff / AnimateDiff-Lightning checkpoints). Everything here works offline: no
function downloads anything, and model configs are written in code.

Bundle format: ``models/BUNDLE.md`` (``model.toml`` + tokenizer.json + three ONNX graphs).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DIFFUSERS_OFFLINE", "1")

OPSET = 17

# Graph input/output names, as BUNDLE.md's [tensors] table names them.
TENSORS = {
    "text_input_ids": "input_ids",
    "text_output": "last_hidden_state",
    "denoiser_sample": "sample",
    "denoiser_timestep": "timestep",
    "denoiser_context": "encoder_hidden_states",
    "denoiser_output": "out_sample",
    "vae_input": "latent_sample",
    "vae_output": "sample",
}

FILES = {
    "tokenizer": "tokenizer.json",
    "text_encoder": "text_encoder.onnx",
    "denoiser": "denoiser.onnx",
    "vae_decoder": "vae_decoder.onnx",
}

# ---------------------------------------------------------------------------------------------
# Tiny random-weight AnimateDiff (diffusers' tests/pipelines/animatediff/test_animatediff.py,
# get_dummy_components), with the seeds the test uses.
# ---------------------------------------------------------------------------------------------

TINY_UNET = dict(
    block_out_channels=(8, 8),
    layers_per_block=2,
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=8,
    norm_num_groups=2,
)
TINY_VAE = dict(
    block_out_channels=(8, 8),
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 2,
    up_block_types=["UpDecoderBlock2D"] * 2,
    latent_channels=4,
    norm_num_groups=2,
)
TINY_TEXT = dict(
    bos_token_id=0,
    eos_token_id=2,
    hidden_size=8,
    intermediate_size=37,
    layer_norm_eps=1e-05,
    num_attention_heads=4,
    num_hidden_layers=5,
    pad_token_id=1,
    vocab_size=1000,
)
TINY_MOTION = dict(
    block_out_channels=(8, 8),
    motion_layers_per_block=2,
    motion_norm_num_groups=2,
    motion_num_attention_heads=4,
)


def tiny_components() -> dict[str, Any]:
    """The tiny AnimateDiff components, built exactly as diffusers' test builds them.

    Returns ``unet2d`` (UNet2DConditionModel), ``vae``, ``text_encoder``, ``motion_adapter`` and
    ``unet`` (``UNetMotionModel.from_unet2d(unet2d, motion_adapter)``), all in eval mode, fp32.
    """
    import torch
    from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet2d = UNet2DConditionModel(**TINY_UNET)
    torch.manual_seed(0)
    vae = AutoencoderKL(**TINY_VAE)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TINY_TEXT))
    torch.manual_seed(0)
    motion_adapter = MotionAdapter(**TINY_MOTION)
    unet = UNetMotionModel.from_unet2d(unet2d, motion_adapter)
    for m in (unet2d, vae, text_encoder, motion_adapter, unet):
        m.eval()
    return dict(
        unet2d=unet2d, vae=vae, text_encoder=text_encoder, motion_adapter=motion_adapter, unet=unet
    )


# ---------------------------------------------------------------------------------------------
# A small offline tokenizer for the tiny text encoder (vocab 1000).
# ---------------------------------------------------------------------------------------------

TINY_BOS = ("<|startoftext|>", 0)
TINY_PAD = ("<|pad|>", 1)
TINY_EOS = ("<|endoftext|>", 2)
TINY_UNK = ("<|unk|>", 3)
TINY_MAX_LENGTH = 77

# A fixed word list: ids are 4 + position. Lower-case (the normalizer lower-cases input).
TINY_WORDS = """
a an the of and or with in on at to from by for as is are be this that it its
painting photo picture drawing sketch cartoon sticker emoji video clip animation render
squirrel burger cat dog bird fish horse cow pig sheep fox wolf bear lion tiger panda rabbit
mouse frog duck owl penguin monkey dragon robot astronaut wizard knight pirate ninja ghost
man woman boy girl baby person people child friends family crowd
eating drinking dancing running jumping flying swimming walking sleeping sitting standing
laughing crying smiling waving playing singing reading cooking riding spinning falling
pizza cake apple banana coffee tea ice cream cookie donut sandwich noodles sushi taco
hat glasses scarf shoes umbrella balloon flower tree forest mountain river ocean beach
sky cloud sun moon star rain snow fire water city street house castle space planet
red orange yellow green blue purple pink black white brown gray gold silver rainbow
big small tiny huge happy sad angry cute funny scary cool old young little fluffy shiny
fast slow bright dark colorful beautiful detailed simple pixel art style oil watercolor
3d anime realistic cinematic lighting high quality best masterpiece background loop
very so not no yes hello hi love heart party birthday thumbs up down left right
one two three four five many some all
, . ! ? - ' : ; ( )
""".split()


def word_vocab(bos=TINY_BOS, pad=TINY_PAD, eos=TINY_EOS, unk=TINY_UNK, first_word_id: int = 4) -> dict[str, int]:
    vocab = {tok: i for tok, i in (bos, pad, eos, unk)}
    next_id = first_word_id
    for word in TINY_WORDS:
        if word in vocab:
            continue
        while next_id in vocab.values():
            next_id += 1
        vocab[word] = next_id
        next_id += 1
    return vocab


def tiny_vocab() -> dict[str, int]:
    vocab = word_vocab()
    assert len(vocab) < 1000 and max(vocab.values()) < 1000
    return vocab


def build_word_tokenizer(vocab: dict[str, int], bos=TINY_BOS, pad=TINY_PAD, eos=TINY_EOS,
                         unk=TINY_UNK, max_length: int = TINY_MAX_LENGTH):
    """A word-level ``tokenizers.Tokenizer``: NFC + lower-case, split on whitespace and
    punctuation (``\\w+|[^\\w\\s]+``), unknown words -> ``unk``, ``bos ... eos`` added,
    truncated to ``max_length`` tokens (EOS kept last), right-padded to ``max_length`` with
    ``pad``. Padding and truncation are stored in tokenizer.json."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    tok = Tokenizer(WordLevel(vocab, unk_token=unk[0]))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    b, e = bos[0], eos[0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{b} $A {e}", pair=f"{b} $A {e} $B:1 {e}:1", special_tokens=[bos, eos]
    )
    tok.add_special_tokens(list(dict.fromkeys([bos[0], pad[0], eos[0], unk[0]])))
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(direction="right", pad_id=pad[1], pad_token=pad[0], length=max_length)
    return tok


def build_tiny_tokenizer():
    """The fixture's tokenizer: word-level, vocab < 1000, BOS 0, pad 1, EOS 2, unk 3 (the tiny
    CLIP text config's ids; pads with id 1, unlike SD's CLIP, which pads with EOS)."""
    return build_word_tokenizer(tiny_vocab())


def hf_tokenizer_from(tokenizer_json: str | Path, model_max_length: int = 77):
    """Wrap a tokenizer.json as a transformers tokenizer that diffusers' pipelines accept."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_file(str(tokenizer_json))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=TINY_BOS[0],
        eos_token=TINY_EOS[0],
        pad_token=TINY_PAD[0],
        unk_token=TINY_UNK[0],
        model_max_length=model_max_length,
    )


def encode_ids(tokenizer_json: str | Path, prompts: Iterable[str]) -> list[list[int]]:
    """Token ids as the Rust side gets them: tokenizer.json with its own padding/truncation."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    return [tok.encode(p).ids for p in prompts]


# ---------------------------------------------------------------------------------------------
# Export wrappers: plain tensors in, one tensor out, names as in BUNDLE.md.
# ---------------------------------------------------------------------------------------------


def _wrappers():
    import torch

    class TextEncoder(torch.nn.Module):
        def __init__(self, te):
            super().__init__()
            self.te = te

        def forward(self, input_ids):
            return self.te(input_ids=input_ids, return_dict=True).last_hidden_state

    class Denoiser(torch.nn.Module):
        def __init__(self, unet):
            super().__init__()
            self.unet = unet

        def forward(self, sample, timestep, encoder_hidden_states):
            return self.unet(sample, timestep, encoder_hidden_states, return_dict=False)[0]

    class VaeDecoder(torch.nn.Module):
        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def forward(self, latent_sample):
            return self.vae.decode(latent_sample, return_dict=False)[0]

    return TextEncoder, Denoiser, VaeDecoder


def set_output_dims(model, dims: dict[str, list]) -> None:
    """Name/fix graph output dimensions (the exporter leaves names like
    ``Transposeout_sample_dim_1`` where a size is really static)."""
    for out in model.graph.output:
        if out.name not in dims:
            continue
        shape = out.type.tensor_type.shape
        for d, want in zip(shape.dim, dims[out.name]):
            if isinstance(want, int):
                d.ClearField("dim_param")
                d.dim_value = want
            else:
                d.ClearField("dim_value")
                d.dim_param = want


def _export(module, args: tuple, path: Path, input_names, output_names, dynamic_axes,
            external_data: bool | None = None, output_dims: dict | None = None) -> None:
    """TorchScript-based ``torch.onnx.export`` (dynamo=False) at opset 17, fp32.

    The dynamo exporter's minimum opset is 18, and it needs ``torch.export`` dynamic-shape
    specs for UNetMotionModel's frame folding; the TorchScript exporter handles both directly.
    """
    import warnings

    import onnx
    import torch

    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Export into a scratch folder: past 2 GiB the TorchScript exporter writes one external
    # file per weight there; reload and save as one graph (+ one .data file) at ``path``.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmpdir:
        tmp = Path(tmpdir) / "model.onnx"
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                str(tmp),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        model = onnx.load(str(tmp), load_external_data=True)
    if output_dims:
        set_output_dims(model, output_dims)
    save_onnx(model, path, external_data=external_data)


def compact_names(model) -> None:
    """Shorten node names (``Conv_12``) and intermediate tensor names (``t12``) in place.

    Graph inputs, outputs and initializers keep their names. The TorchScript exporter's
    scoped names (``/unet/down_blocks.0/motion_modules.0/...``) are most of a tiny graph's
    bytes; the fixture uses this to stay small. Semantics are unchanged."""
    g = model.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output} | {t.name for t in g.initializer}
    rename: dict[str, str] = {}
    for i, node in enumerate(g.node):
        node.name = f"{node.op_type}_{i}"
        for j, o in enumerate(node.output):
            if o and o not in keep:
                rename[o] = f"t{i}" if j == 0 else f"t{i}_{j}"
    for node in g.node:
        for k, x in enumerate(node.input):
            if x in rename:
                node.input[k] = rename[x]
        for k, x in enumerate(node.output):
            if x in rename:
                node.output[k] = rename[x]
    for v in g.value_info:
        if v.name in rename:
            v.name = rename[v.name]


def save_onnx(model, path: Path, external_data: bool | None = None) -> list[Path]:
    """Save an ONNX model; weights go to ``<name>.data`` beside it when ``external_data`` (or,
    with None, when the model is past 1.8 GB). Returns the files written."""
    import onnx

    path = Path(path)
    if external_data is None:
        external_data = model.ByteSize() > 1_800_000_000 if _byte_size_ok(model) else True
    data_name = path.name + ".data"
    if (path.parent / data_name).exists():
        (path.parent / data_name).unlink()
    if external_data:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data_name,
            size_threshold=1024,
        )
        return [path, path.parent / data_name]
    onnx.save_model(model, str(path))
    return [path]


def _byte_size_ok(model) -> bool:
    try:
        model.ByteSize()
        return True
    except Exception:  # protobuf refuses to size messages past 2 GiB
        return False


def export_text_encoder(text_encoder, path: Path, seq_len: int = 77, external_data=None) -> None:
    import torch

    TextEncoder, _, _ = _wrappers()
    ids = torch.zeros((1, seq_len), dtype=torch.int64)
    _export(
        TextEncoder(text_encoder).eval(),
        (ids,),
        path,
        [TENSORS["text_input_ids"]],
        [TENSORS["text_output"]],
        {TENSORS["text_input_ids"]: {0: "batch"}, TENSORS["text_output"]: {0: "batch"}},
        external_data=external_data,
        output_dims={TENSORS["text_output"]: ["batch", seq_len, text_encoder.config.hidden_size]},
    )


def export_denoiser(unet, path: Path, frames: int, latent_h: int, latent_w: int,
                    dynamic_spatial: bool = True, external_data=None) -> None:
    """UNetMotionModel -> ONNX. Batch is always dynamic; frames/height/width too unless
    ``dynamic_spatial`` is False (static shapes suit CUDA graphs)."""
    import torch

    _, Denoiser, _ = _wrappers()
    cfg = unet.config
    ctx_dim = cfg.cross_attention_dim
    b = 2
    sample = torch.randn(b, cfg.in_channels, frames, latent_h, latent_w)
    timestep = torch.full((b,), 999.0)
    context = torch.randn(b * frames, 77, ctx_dim)
    s, t, c, o = (TENSORS[k] for k in ("denoiser_sample", "denoiser_timestep",
                                          "denoiser_context", "denoiser_output"))
    if dynamic_spatial:
        axes = {s: {0: "batch", 2: "frames", 3: "height", 4: "width"}, t: {0: "batch"},
                c: {0: "batch_frames"}, o: {0: "batch", 2: "frames", 3: "height", 4: "width"}}
    else:
        axes = {s: {0: "batch"}, t: {0: "batch"}, c: {0: "batch_frames"}, o: {0: "batch"}}
    out_dims = (["batch", cfg.out_channels, "frames", "height", "width"] if dynamic_spatial
                else ["batch", cfg.out_channels, frames, latent_h, latent_w])
    _export(Denoiser(unet).eval(), (sample, timestep, context), path, [s, t, c], [o], axes,
            external_data=external_data, output_dims={o: out_dims})


def export_vae_decoder(vae, path: Path, latent_h: int, latent_w: int,
                       dynamic_spatial: bool = True, external_data=None) -> None:
    import torch

    _, _, VaeDecoder = _wrappers()
    z = torch.randn(2, vae.config.latent_channels, latent_h, latent_w)
    i, o = TENSORS["vae_input"], TENSORS["vae_output"]
    if dynamic_spatial:
        axes = {i: {0: "batch", 2: "height", 3: "width"}, o: {0: "batch", 2: "out_height", 3: "out_width"}}
    else:
        axes = {i: {0: "batch"}, o: {0: "batch"}}
    f = 2 ** (len(vae.config.block_out_channels) - 1)
    out_dims = (["batch", vae.config.out_channels, "out_height", "out_width"] if dynamic_spatial
                else ["batch", vae.config.out_channels, latent_h * f, latent_w * f])
    _export(VaeDecoder(vae).eval(), (z,), path, [i], [o], axes, external_data=external_data,
            output_dims={o: out_dims})


def torch_forward(kind: str, module, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """Run the torch module the way its ONNX graph runs, for ONNX-vs-torch checks."""
    import torch

    TextEncoder, Denoiser, VaeDecoder = _wrappers()
    wrap = {"text_encoder": TextEncoder, "denoiser": Denoiser, "vae_decoder": VaeDecoder}[kind]
    args = [torch.from_numpy(np.ascontiguousarray(v)) for v in feeds.values()]
    with torch.no_grad():
        return wrap(module).eval()(*args).numpy()


def ort_session(path: Path, provider: str = "cpu", threads: int | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if provider == "cuda":
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=so, providers=providers)


def check_graph(kind: str, module, onnx_path: Path, feeds: dict[str, np.ndarray],
                threads: int | None = None) -> float:
    """Max abs difference between the ONNX graph (onnxruntime, CPU) and the torch module."""
    ref = torch_forward(kind, module, feeds)
    sess = ort_session(onnx_path, threads=threads)
    got = sess.run(None, feeds)[0]
    assert got.shape == ref.shape, (kind, got.shape, ref.shape)
    return float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))


# ---------------------------------------------------------------------------------------------
# model.toml
# ---------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isfinite(v) and v == int(v) and abs(v) < 1e15:
            return f"{v:.1f}"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    raise TypeError(f"no TOML for {v!r}")


def default_scheduler_table(**overrides) -> dict[str, Any]:
    """BUNDLE.md's [scheduler] table with every field, AnimateDiff-Lightning's values."""
    table = {
        "kind": "euler_discrete",
        "num_train_timesteps": 1000,
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "linear",
        "timestep_spacing": "trailing",
        "prediction_type": "epsilon",
        "steps_offset": 0,
        "clip_sample": False,
        "set_alpha_to_one": False,
        "original_inference_steps": 50,
        "shift": 1.0,
        "use_dynamic_shifting": False,
        "base_shift": 0.5,
        "max_shift": 1.15,
        "base_image_seq_len": 256,
        "max_image_seq_len": 4096,
        "shift_terminal": 0.0,
    }
    table.update(overrides)
    return table


def write_model_toml(bundle: Path, *, name: str, family: str, licence: str, description: str,
                     video: dict, latent: dict, scheduler: dict, defaults: dict, text: dict,
                     files: dict | None = None, extra_hashed: Iterable[str] = ()) -> Path:
    """Write ``model.toml`` (BUNDLE.md format 1) with the sha256 of every file it names and of
    any external-data files beside the graphs."""
    bundle = Path(bundle)
    files = dict(files or FILES)
    hashed: list[str] = []
    for fname in files.values():
        hashed.append(fname)
        data = bundle / (fname + ".data")
        if data.exists():
            hashed.append(data.name)
    hashed.extend(extra_hashed)
    lines = [
        "format = 1",
        f"name = {_toml_value(name)}",
        f"family = {_toml_value(family)}",
        f"licence = {_toml_value(licence)}",
        f"description = {_toml_value(description)}",
    ]

    def table(title, d):
        lines.append("")
        lines.append(f"[{title}]")
        for k, v in d.items():
            key = k if k.replace("_", "").isalnum() else json.dumps(k)
            lines.append(f"{key} = {_toml_value(v)}")

    table("video", video)
    table("latent", latent)
    table("scheduler", scheduler)
    table("defaults", defaults)
    table("text", text)
    table("tensors", TENSORS)
    table("files", files)
    table("sha256", {f: sha256_file(bundle / f) for f in hashed})
    path = bundle / "model.toml"
    path.write_text("\n".join(lines) + "\n")
    import tomllib

    tomllib.loads(path.read_text())  # must parse
    return path


class Timer:
    def __init__(self):
        self.t = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        dt, self.t = now - self.t, now
        return dt
