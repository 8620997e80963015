"""Serving throughput: ``actorflow serve`` (cross-request batching) vs a plain aiohttp handler.

Both servers run the same small ONNX model (built with ``onnx.helper``: a 512 -> 2048 ->
16 MLP, float32) on one onnxruntime thread, each in its own process, with the load
generator in this process: ``--concurrency`` clients (default 32) post one sample each
per request, as fast as they can, for ``--duration`` seconds per round. The rounds
alternate between the two servers; the medians over ``--rounds`` are reported.

* plain: an aiohttp handler decodes the JSON (the sample as a base64 float32 tensor),
  calls ``session.run`` directly (one sample per call), and answers.
* actorflow: ``actorflow.serve.build_app`` on a graph ``x -> onnx_inference -> y``
  with ``batch_size`` 32 and a short ``batch_timeout``: requests from different
  clients share one onnxruntime call.

Goal (issue 5): actorflow >= 1.5x the plain handler's requests/s, with p99 latency no
worse than 2x the plain handler's.

Run: ``python benchmarks/serve.py [--rounds 5] [--duration 5] [--concurrency 32]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

IN, HIDDEN, OUT = 1024, 4096, 16


def build_model(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(
        (rng.standard_normal((IN, HIDDEN)) * 0.05).astype(np.float32), "w1"
    )
    w2 = numpy_helper.from_array(
        (rng.standard_normal((HIDDEN, OUT)) * 0.05).astype(np.float32), "w2"
    )
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", IN])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", OUT])
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "mlp", [x], [y], initializer=[w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


# -- servers (run in a child process) --------------------------------------------------


def plain_app(model: Path) -> Any:
    import onnxruntime as ort
    from aiohttp import web

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    async def infer(request: web.Request) -> web.Response:
        doc = (await request.json())["inputs"]["x"]
        x = np.frombuffer(base64.b64decode(doc["base64"]), doc["dtype"]).reshape(doc["shape"])
        x = x[None]
        (y,) = session.run(None, {"x": x})
        return web.json_response({"outputs": {"y": [y[0].tolist()]}, "errors": []})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=8 * 1024**2)
    app.router.add_post("/v1/infer", infer)
    app.router.add_get("/healthz", healthz)
    return app


def actorflow_app(model: Path, batch_size: int, batch_timeout: float) -> Any:
    from actorflow.runtime import Flow
    from actorflow.serve import build_app

    graph = {
        "name": "mlp",
        "nodes": {
            "x": {"type": "input"},
            "infer": {
                "flowunit": "onnx_inference",
                "model": str(model),
                "queue_size": 256,
                "batch_size": batch_size,
                "batch_timeout": batch_timeout,
                "device": "cpu",
            },
            "y": {"type": "output"},
        },
        "edges": ["x -> infer", "infer -> y"],
    }
    return build_app(Flow(graph), max_sessions=256)


def run_server(kind: str, model: Path, port: int, batch_size: int, batch_timeout: float) -> None:
    from aiohttp import web

    app = plain_app(model) if kind == "plain" else actorflow_app(model, batch_size, batch_timeout)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, handler_cancellation=True
    )


# -- load generator ----------------------------------------------------------------------


async def load(port: int, concurrency: int, duration: float, warmup: float) -> dict[str, float]:
    import aiohttp

    rng = np.random.default_rng(1)
    bodies = [
        json.dumps({"inputs": {"x": tensor(rng.standard_normal(IN, np.float32))}})
        for _ in range(64)
    ]
    url = f"http://127.0.0.1:{port}/v1/infer"
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, end = start + warmup, start + warmup + duration

    async def client(i: int, http: aiohttp.ClientSession) -> None:
        nonlocal errors
        n = i
        while (now := loop.time()) < end:
            body = bodies[n % len(bodies)]
            n += concurrency
            async with http.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                await resp.read()
                ok = resp.status == 200
            done = loop.time()
            if now >= measure_from:
                if ok:
                    latencies.append(done - now)
                else:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(client(i, http) for i in range(concurrency)))
    latencies.sort()
    return {
        "rps": len(latencies) / duration,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "errors": errors,
    }


def tensor(array: np.ndarray) -> dict[str, Any]:
    """The raw-tensor JSON form both servers accept: base64 + dtype + shape."""
    return {
        "base64": base64.b64encode(array.tobytes()).decode("ascii"),
        "dtype": str(array.dtype),
        "shape": list(array.shape),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def one_round(kind: str, model: Path, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    cmd = [
        sys.executable,
        __file__,
        "--serve",
        kind,
        "--model",
        str(model),
        "--port",
        str(port),
        "--batch-size",
        str(args.batch_size),
        "--batch-timeout",
        str(args.batch_timeout),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        return asyncio.run(load(port, args.concurrency, args.duration, args.warmup))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batch-timeout", type=float, default=0.005)
    parser.add_argument("--serve", choices=["plain", "actorflow"], help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve, args.model, args.port, args.batch_size, args.batch_timeout)
        return
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "mlp.onnx"
        build_model(model)
        runs: dict[str, list[dict[str, float]]] = {"plain": [], "actorflow": []}
        for r in range(args.rounds):
            for kind in ("plain", "actorflow"):
                result = one_round(kind, model, args)
                runs[kind].append(result)
                print(
                    f"round {r + 1} {kind:9s} {result['rps']:8.0f} req/s  "
                    f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  "
                    f"errors {result['errors']}",
                    flush=True,
                )
    med = {
        k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50_ms", "p99_ms")}
        for k, v in runs.items()
    }
    speedup = med["actorflow"]["rps"] / med["plain"]["rps"]
    p99_ratio = med["actorflow"]["p99_ms"] / med["plain"]["p99_ms"]
    print()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}"
    )
    print(f"{args.concurrency} clients, {args.rounds} rounds x {args.duration:g} s, medians:")
    print("| server | req/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    for kind in ("plain", "actorflow"):
        m = med[kind]
        print(f"| {kind} | {m['rps']:.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} |")
    print(
        f"throughput ratio {speedup:.2f}x (goal >= 1.5x); p99 ratio {p99_ratio:.2f}x (goal <= 2x)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"runs": runs, "medians": med, "speedup": speedup, "p99_ratio": p99_ratio}, indent=2
            )
        )


if __name__ == "__main__":
    main()
