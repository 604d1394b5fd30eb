"""Writes the tiny ONNX graphs (and a tiny tokenizer.json) that the models crate's tests load.

The graphs are committed under models/tests/fixtures/; rerun this only to change them:

    python3 -m pip install onnx==1.23.2 numpy
    python3 models/export/make_test_graphs.py

Every graph is a handful of nodes with fixed, hand-picked weights so a test can compute the
expected output by hand. Opset 17 and IR version 8 keep them loadable by any ONNX Runtime from
1.14 on, so a version mismatch shows up in the runtime's own version check, not here.
"""

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "tests", "fixtures"))
GRAPHS = os.path.join(FIXTURES, "graphs")
OPSET = [helper.make_opsetid("", 17)]


def save(graph, name):
    model = helper.make_model(graph, opset_imports=OPSET, producer_name="loopsmith-tests")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(GRAPHS, name)
    # Deterministic bytes: the bundle tests hash these files.
    with open(path, "wb") as f:
        f.write(model.SerializeToString(deterministic=True))
    print(path)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name=name)


def matmul_add():
    """y = x @ W + b with x: f32 [batch, 4], W = [[1,2,3],[4,5,6],[7,8,9],[10,11,12]], b = [0.5, -1, 2]."""
    w = np.arange(1, 13, dtype=np.float32).reshape(4, 3)
    b = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["y"]),
        ],
        "matmul_add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [const("W", w), const("b", b)],
    )
    save(graph, "matmul_add.onnx")


def step():
    """next = latent * 0.5 + cond: a stand-in for one denoiser step, for IO binding loops."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["latent", "half"], ["scaled"]),
            helper.make_node("Add", ["scaled", "cond"], ["next"]),
        ],
        "step",
        [
            helper.make_tensor_value_info("latent", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("cond", TensorProto.FLOAT, [1, 4]),
        ],
        [helper.make_tensor_value_info("next", TensorProto.FLOAT, [1, 4])],
        [const("half", np.array(0.5, dtype=np.float32))],
    )
    save(graph, "step.onnx")


def half_io():
    """y = x * 2 with float16 input and output, for the fp16 conversion helpers."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        "half_io",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["n"])],
        [const("two", np.array(2.0, dtype=np.float16))],
    )
    save(graph, "half_io.onnx")


# A bundle of three graphs with the tensor names BUNDLE.md's example uses, at a made-up tiny size:
# max_length 8, hidden_size 4, latent channels 4.


def text_encoder():
    """last_hidden_state[b, t, k] = input_ids[b, t] * scale[k], scale = [1, 0.5, 0.25, 0.125]."""
    scale = np.array([1.0, 0.5, 0.25, 0.125], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["ids_f", "axis2"], ["ids_3d"]),
            helper.make_node("Mul", ["ids_3d", "scale"], ["last_hidden_state"]),
        ],
        "text_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", 8])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", 8, 4])],
        [const("scale", scale), const("axis2", np.array([2], dtype=np.int64))],
    )
    save(graph, "text_encoder.onnx")


def denoiser():
    """out_sample = sample * 0.5 - timestep (broadcast per batch); the context is accepted and unused."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["sample", "half"], ["scaled"]),
            helper.make_node("Reshape", ["timestep", "t_shape"], ["t5"]),
            helper.make_node("Sub", ["scaled", "t5"], ["out_sample"]),
        ],
        "denoiser",
        [
            helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch", 4, "frames", "height", "width"]),
            helper.make_tensor_value_info("timestep", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT, ["batch_frames", 8, 4]),
        ],
        [helper.make_tensor_value_info("out_sample", TensorProto.FLOAT, ["batch", 4, "frames", "height", "width"])],
        [
            const("half", np.array(0.5, dtype=np.float32)),
            const("t_shape", np.array([-1, 1, 1, 1, 1], dtype=np.int64)),
        ],
    )
    save(graph, "denoiser.onnx")


def vae_decoder():
    """sample = tanh(conv1x1(latent_sample)): 4 latent channels to 3 colour channels, same size."""
    weight = np.array(
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 1.0],
        ],
        dtype=np.float32,
    ).reshape(3, 4, 1, 1)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["latent_sample", "weight"], ["rgb"]),
            helper.make_node("Tanh", ["rgb"], ["sample"]),
        ],
        "vae_decoder",
        [helper.make_tensor_value_info("latent_sample", TensorProto.FLOAT, ["n", 4, "height", "width"])],
        [helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["n", 3, "height", "width"])],
        [const("weight", weight)],
    )
    save(graph, "vae_decoder.onnx")


def tokenizer():
    """A word-level tokenizer in the `tokenizers` JSON format, written by hand (no download)."""
    vocab = {"<pad>": 0, "<unk>": 1, "a": 2, "cat": 3, "dances": 4}
    data = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": 0, "content": "<pad>", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True},
            {"id": 1, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True},
        ],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    }
    path = os.path.join(FIXTURES, "tokenizer.json")
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    print(path)


if __name__ == "__main__":
    os.makedirs(GRAPHS, exist_ok=True)
    matmul_add()
    step()
    half_io()
    text_encoder()
    denoiser()
    vae_decoder()
    tokenizer()
