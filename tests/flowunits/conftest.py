"""Fixtures for the vision/inference unit tests: ONNX models built in memory, real photos."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper


def save_model(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # newest onnx writes an IR the installed onnxruntime may refuse
    onnx.save(model, path)
    return path


@pytest.fixture(scope="session")
def scale_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``y = 2 * x`` on ``x: float32[N, 4]``; ``s = sum(x)`` per row as a second output."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    s = helper.make_tensor_value_info("s", TensorProto.FLOAT, ["N", 1])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "two"], ["y"]),
            helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
        ],
        "scale",
        [x],
        [y, s],
        initializer=[two, axes],
    )
    return save_model(graph, tmp_path_factory.mktemp("models") / "scale.onnx")


@pytest.fixture(scope="session")
def conv_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3x3 conv + relu + global pool on ``float32[N, 3, 32, 32]`` -> ``[N, 8]``."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor(
        "w",
        TensorProto.FLOAT,
        [8, 3, 3, 3],
        rng.standard_normal((8, 3, 3, 3)).astype(np.float32).ravel(),
    )
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 32, 32])
    y = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 8])
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["images", "w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["p"]),
            helper.make_node("Flatten", ["p"], ["features"]),
        ],
        "conv",
        [x],
        [y],
        initializer=[w],
    )
    return save_model(graph, tmp_path_factory.mktemp("models") / "conv.onnx")


def _rgb(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    return np.stack([image] * 3, axis=-1) if image.ndim == 2 else np.ascontiguousarray(image)


@pytest.fixture(scope="session")
def sample() -> Callable[[str], np.ndarray]:
    """``sample("astronaut")``: a scikit-image photo as H x W x 3 RGB ``uint8``."""
    return _rgb


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hundreds of chained 256 x 256 MatMuls: seconds per call, for terminate tests."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [256, 256])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [256, 256])
    count = 3000
    nodes = [
        helper.make_node(
            "MatMul", ["x" if i == 0 else f"m{i}", "x"], ["y" if i == count - 1 else f"m{i + 1}"]
        )
        for i in range(count)
    ]
    graph = helper.make_graph(nodes, "slow", [x], [y])
    return save_model(graph, tmp_path_factory.mktemp("models") / "slow.onnx")
