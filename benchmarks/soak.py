"""Soak: concurrent sessions through a small image graph for N minutes; RSS slope as JSON.

Graph: ``input`` (JPEG bytes) -> ``image_decode`` -> ``resize`` (96 x 96) ->
``normalize`` (CHW float) -> ``onnx_inference`` (a conv net built with onnx.helper) ->
``soak_top1`` (top-1 class; drops every third frame: a filter) -> ``output``. Every
``--bad-every``-th item is not an image: its decode fails, the session receives an
error, and the flow goes on.

Each of ``--sessions`` workers opens a session, sends ``--per-session`` items while
reading the results, closes it, checks that session's ledger, and starts over until
``--minutes`` have passed: sessions come and go as they do under a server. RSS is
sampled every ``--sample-s`` seconds; the least-squares slope (MB/min) of the samples
after the warm-up (the first ``--warmup`` fraction of the run) is the leak figure.
Issue 9's acceptance: <= 0.5 MB/min over 30 minutes, every ledger closed.

    python benchmarks/soak.py [--minutes 30] [--sessions 4] [--per-session 20]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import cv2
import numpy as np
import onnx
import onnxruntime as ort
import psutil
import structlog
from onnx import TensorProto, helper

import actorflow as af

SIZE = 96
CLASSES = 10
BAD_ITEM = b"this is not an image" * 8


def build_model(path: Path) -> Path:
    """Two 3x3 stride-2 convs (16, 32 channels) + ReLU, global pool, dense, softmax."""
    rng = np.random.default_rng(0)
    inits, nodes, prev, cin = [], [], "images", 3
    for i, cout in enumerate((16, 32)):
        w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2 / (cin * 9))).astype(np.float32)
        inits += [
            helper.make_tensor(f"w{i}", TensorProto.FLOAT, w.shape, w.ravel()),
            helper.make_tensor(f"b{i}", TensorProto.FLOAT, [cout], np.zeros(cout, np.float32)),
        ]
        nodes += [
            helper.make_node(
                "Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1], strides=[2, 2]
            ),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        prev, cin = f"r{i}", cout
    fc = rng.standard_normal((cin, CLASSES)).astype(np.float32)
    inits += [
        helper.make_tensor("fc_w", TensorProto.FLOAT, fc.shape, fc.ravel()),
        helper.make_tensor("fc_b", TensorProto.FLOAT, [CLASSES], np.zeros(CLASSES, np.float32)),
    ]
    nodes += [
        helper.make_node("GlobalAveragePool", [prev], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
    ]
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", CLASSES])
    model = helper.make_model(
        helper.make_graph(nodes, "soak", [x], [y], initializer=inits),
        opset_imports=[helper.make_opsetid("", 13)],
    )
    model.ir_version = 8
    onnx.save(model, path)
    return path


class SoakTop1(af.FlowUnit):
    """Top-1 class and score; drops every third frame (``seq % 3 == 2``), a filter."""

    name = "soak_top1"
    scores_in = af.Input("scores", np.ndarray)
    top_out = af.Output("top", tuple)

    async def process(self, ctx: af.Context, packet: af.Packet[np.ndarray]) -> None:
        """Emit ``(class, score)`` for two frames in three."""
        if packet.seq % 3 == 2:
            return
        k = int(np.argmax(packet.data))
        await ctx.emit(self.top_out, packet.replace((k, float(packet.data[k]))))


def graph(model: Path) -> dict[str, Any]:
    return {
        "name": "soak",
        "nodes": {
            "input": {"type": "input"},
            "decode": {"flowunit": "image_decode"},
            "resize": {"flowunit": "resize", "width": SIZE, "height": SIZE},
            "normalize": {
                "flowunit": "normalize",
                "mean": [123.7, 116.3, 103.5],
                "std": [58.4, 57.1, 57.4],
                "chw": True,
            },
            "infer": {
                "flowunit": "onnx_inference",
                "model": str(model),
                "device": "cpu",
                "intra_op_threads": 1,
            },
            "top1": {"flowunit": "soak_top1"},
            "output": {"type": "output"},
        },
        "edges": [
            "input -> decode:data",
            "decode:image -> resize:image",
            "resize:image -> normalize:image",
            "normalize:tensor -> infer:in",
            "infer:out -> top1:scores",
            "top1:top -> output",
        ],
    }


def frames(count: int = 16) -> list[bytes]:
    """JPEG files of 240 x 320 gradients with a moving square (what a camera might send)."""
    out = []
    yy, xx = np.mgrid[0:240, 0:320]
    for i in range(count):
        img = np.stack([(xx + 8 * i) % 256, (yy + 4 * i) % 256, (xx + yy) % 256], -1)
        img = img.astype(np.uint8)
        img[40 + 5 * i : 90 + 5 * i, 60 + 8 * i : 110 + 8 * i] = 255
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
        assert ok
        out.append(buf.tobytes())
    return out


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``(minutes, MB)`` samples; ``None`` with fewer than 3."""
    if len(samples) < 3:
        return None
    t, mb = np.array(samples).T
    return float(np.polyfit(t, mb, 1)[0])


class Totals:
    def __init__(self) -> None:
        self.sent = 0
        self.ok = 0
        self.errors = 0
        self.sessions = 0
        self.unbalanced = 0
        self.first_unbalanced: str | None = None
        self.refused = 0


async def worker(
    flow: af.Flow,
    k: int,
    images: list[bytes],
    args: argparse.Namespace,
    deadline: float,
    totals: Totals,
) -> None:
    n = 0
    while time.monotonic() < deadline and flow.state == "running":
        session = flow.session()

        async def feed(session: af.Session = session) -> None:
            nonlocal n
            try:
                for _ in range(args.per_session):
                    n += 1
                    bad = args.bad_every and (n * args.sessions + k) % args.bad_every == 0
                    await session.send("input", BAD_ITEM if bad else images[n % len(images)])
                    totals.sent += 1
            except af.SessionClosed:
                totals.refused += 1  # the flow ended under us; reported below
            await session.close()

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            async for result in session:
                if result.ok:
                    totals.ok += 1
                else:
                    totals.errors += 1
        totals.sessions += 1
        ledger = flow.statistics().sessions.get(session.id)
        if ledger is None or not ledger.balanced:
            totals.unbalanced += 1
            totals.first_unbalanced = totals.first_unbalanced or repr(ledger)


async def sample_rss(samples: list[tuple[float, float]], started: float, every: float) -> None:
    proc = psutil.Process()
    while True:
        samples.append(((time.monotonic() - started) / 60, proc.memory_info().rss / 2**20))
        await anyio.sleep(every)


async def soak(args: argparse.Namespace, model: Path) -> dict[str, Any]:
    images = frames()
    flow = af.Flow(graph(model), stop_grace=5.0, close_timeout=5.0)
    await flow.run_async()
    totals = Totals()
    samples: list[tuple[float, float]] = []
    gc.collect()
    objects_start = len(gc.get_objects())
    started = time.monotonic()
    deadline = started + args.minutes * 60
    async with anyio.create_task_group() as tg:
        tg.start_soon(sample_rss, samples, started, args.sample_s)
        async with anyio.create_task_group() as workers:
            for k in range(args.sessions):
                workers.start_soon(worker, flow, k, images, args, deadline, totals)
        elapsed = time.monotonic() - started
        tg.cancel_scope.cancel()
    samples.append((elapsed / 60, psutil.Process().memory_info().rss / 2**20))
    gc.collect()
    objects_end = len(gc.get_objects())
    state_before_stop = flow.state
    await flow.stop()
    stats = flow.statistics()
    warm = [s for s in samples if s[0] >= args.warmup * args.minutes]
    slope = slope_mb_per_min(warm)
    return {
        "benchmark": "soak",
        "minutes": args.minutes,
        "sessions": args.sessions,
        "per_session": args.per_session,
        "bad_every": args.bad_every,
        "elapsed_s": round(elapsed, 1),
        "items_sent": totals.sent,
        "results_ok": totals.ok,
        "results_error": totals.errors,
        "items_per_s": round(totals.sent / elapsed, 1),
        "sessions_run": totals.sessions,
        "sessions_unbalanced": totals.unbalanced,
        "first_unbalanced": totals.first_unbalanced,
        "sessions_refused": totals.refused,
        "flow_state_before_stop": state_before_stop,
        "flow_state": stats.state,
        "flow_exception": str(flow.exception) if flow.exception else None,
        "node_ledgers_closed": stats.balanced,
        "nodes": {
            n.node: {"processed": n.processed, "failed": n.failed, "restarts": n.restarts}
            for n in stats.nodes.values()
        },
        "rss_mb": {
            "first": round(samples[0][1], 1),
            "after_warmup": round(warm[0][1], 1) if warm else None,
            "last": round(samples[-1][1], 1),
            "max": round(max(s[1] for s in samples), 1),
            "samples": len(samples),
        },
        "rss_slope_mb_per_min": None if slope is None else round(slope, 3),
        "rss_slope_all_mb_per_min": _rounded(slope_mb_per_min(samples)),
        "python_objects": {"start": objects_start, "end": objects_end},
        "verdict": {
            "slope_le_0.5_mb_per_min": slope is not None and slope <= 0.5,
            "ledgers_closed": stats.balanced and totals.unbalanced == 0,
            "flow_survived": state_before_stop == "running",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "platform": platform.platform(),
        },
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--per-session", type=int, default=20)
    parser.add_argument("--bad-every", type=int, default=50, help="0: no failing inputs")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the run")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(Path(tmp) / "soak.onnx")
        report = anyio.run(soak, args, model)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
