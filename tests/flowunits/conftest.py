"""Fixtures for the vision/inference unit tests: ONNX models built in memory, real photos."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
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
    """A 3x3 conv + relu + global pool on ``float32[N, 3, H, W]`` -> ``[N, 8]``."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor(
        "w",
        TensorProto.FLOAT,
        [8, 3, 3, 3],
        rng.standard_normal((8, 3, 3, 3)).astype(np.float32).ravel(),
    )
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, "H", "W"])
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


RunGraph = Callable[..., Awaitable[list[Any]]]


async def _run_graph(
    nodes: dict[str, Any], edges: list[str], inputs: list[Any], *, sessions: int = 1
) -> list[Any]:
    """Run ``input -> nodes -> output`` and return each session's results, in order.

    With ``sessions > 1`` the inputs are sent through that many concurrent sessions
    (round robin) and a list of result lists comes back.
    """
    from actorflow.runtime import Flow

    graph = {
        "name": "test",
        "nodes": {"input": {"type": "input"}, **nodes, "output": {"type": "output"}},
        "edges": edges,
    }
    flow = Flow(graph)
    results: list[list[Any]] = [[] for _ in range(sessions)]
    with anyio.fail_after(60):
        async with flow, anyio.create_task_group() as tg:
            for k in range(sessions):
                tg.start_soon(_one_session, flow, inputs[k::sessions], results[k])
    return results[0] if sessions == 1 else results


async def _one_session(flow: Any, items: list[Any], out: list[Any]) -> None:
    session = flow.create_external_data_map()

    async def send() -> None:
        for item in items:
            await session.send("input", item)
        await session.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        async for result in session:
            out.append(result)


@pytest.fixture
def run_graph() -> RunGraph:
    """``await run_graph(nodes, edges, inputs)``: results of a one-input graph."""
    return _run_graph
