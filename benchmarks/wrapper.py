"""Wrapper serving throughput: HTTP through ``actorflow serve`` vs direct calls.

A wrapper whose ``wrapperOnceExec`` spends 20 ms in ``time.sleep`` (work that releases
the GIL, like a model call or an upstream API) is measured two ways in the same run:

* direct: 16 threads call ``wrapperOnceExec`` back to back;
* served: ``actorflow.wrapper.build_app`` in a separate process (the app of
  ``actorflow serve``: the wrapper as a one-node graph, one flow session per request),
  16 concurrent keep-alive HTTP/1.1 clients posting JSON requests to ``/v1/infer``.
  The clients are minimal raw-socket ones, so that the benchmark's own client CPU
  takes as little as possible from the server on a small machine; the same with
  aiohttp's client is reported too.

Each round runs for ``--seconds``; the medians of ``--rounds`` rounds are compared
(acceptance: served >= 0.9 x direct). A sweep over the wrapper node's replicas
shows why the default is what it is. Prints one JSON object.

    .venv/bin/python benchmarks/wrapper.py [--rounds 5] [--seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import platform
import statistics
import sys
import threading
import time
from typing import Any

import aiohttp

import actorflow
from actorflow.wrapper import (
    DataListCls,
    DataListNode,
    IntegerParamField,
    Response,
    ResponseData,
    StringBodyField,
    WrapperBase,
    build_app,
)

EXEC_S = 0.020
CLIENTS = 16


class SleepyRequest:
    n = IntegerParamField("n", minimum=0, maximum=1_000_000, value=0)
    text = StringBodyField("text", value="hello")


class Sleepy(WrapperBase):
    """Spends 20 ms with the GIL released, then echoes its input."""

    requestCls = SleepyRequest()

    def wrapperInit(self, config: dict[str, Any]) -> int:
        return 0

    def wrapperOnceExec(self, params: dict[str, Any], reqData: DataListCls) -> Response:
        time.sleep(EXEC_S)
        return Response([ResponseData("text", reqData.list[0].data, reqData.list[0].len)])

    def wrapperFini(self) -> int:
        return 0

    def wrapperError(self, code: int) -> str:
        return str(code)


def direct_round(seconds: float) -> float:
    """Requests per second with CLIENTS threads calling wrapperOnceExec directly."""
    wrapper = Sleepy()
    wrapper.init()
    req = DataListCls([DataListNode("text", b"hello", 5)])
    counts = [0] * CLIENTS
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> None:
        while time.perf_counter() < deadline:
            wrapper.wrapperOnceExec({"n": i}, req)
            counts[i] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def _serve(concurrency: int, conn: Any) -> None:
    """Child process: serve Sleepy on 127.0.0.1 and report the port."""
    import logging

    import structlog
    from aiohttp import web

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    async def main() -> None:
        runner = web.AppRunner(build_app(Sleepy, concurrency=concurrency), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        conn.send(runner.addresses[0][1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # wait for "stop"
        await runner.cleanup()

    asyncio.run(main())


async def _http_round(url: str, seconds: float) -> float:
    body = {"parameter": {"n": 1}, "payload": {"text": "hello"}}
    counts = [0] * CLIENTS
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def warm() -> None:
            async with session.post(url, json=body) as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in range(CLIENTS)))
        deadline = time.perf_counter() + seconds

        async def client(i: int) -> None:
            while time.perf_counter() < deadline:
                async with session.post(url, json=body) as response:
                    assert response.status == 200, await response.text()
                    await response.read()
                counts[i] += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(CLIENTS)))
        return sum(counts) / (time.perf_counter() - started)


async def _raw_round(port: int, seconds: float) -> float:
    """Like ``_http_round`` with minimal HTTP/1.1 keep-alive clients on raw sockets.

    aiohttp's client costs about as much CPU per request as the server does; on a
    2-core machine that CPU is taken from the server under test. These clients send a
    pre-encoded request and read the answer by Content-Length, nothing more.
    """
    body = json.dumps({"parameter": {"n": 1}, "payload": {"text": "hello"}}).encode()
    head = (
        f"POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    counts = [0] * CLIENTS

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(request)
        headers = await reader.readuntil(b"\r\n\r\n")
        assert headers.startswith(b"HTTP/1.1 200"), headers
        length = int(headers.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        await reader.readexactly(length)

    async def client(i: int, deadline: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await exchange(reader, writer)  # warm-up: connection open, server hot
            await start.wait()
            while time.perf_counter() < deadline:
                await exchange(reader, writer)
                counts[i] += 1
        finally:
            writer.close()
            await writer.wait_closed()

    start = asyncio.Event()
    deadline = time.perf_counter() + seconds + 1.0
    tasks = [asyncio.create_task(client(i, deadline)) for i in range(CLIENTS)]
    await asyncio.sleep(1.0)  # every client connected and warmed up
    started = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    return sum(counts) / (time.perf_counter() - started)


async def _latency(url: str, count: int) -> float:
    """Median milliseconds of one request at a time (the per-request overhead + 20 ms)."""
    body = {"parameter": {"n": 1}, "payload": {"text": "hello"}}
    times = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count + 5):
            started = time.perf_counter()
            async with session.post(url, json=body) as response:
                await response.read()
            times.append(time.perf_counter() - started)
    return statistics.median(times[5:]) * 1e3


def served_round(
    concurrency: int,
    seconds: float,
    *,
    client: str = "raw",
    latency: int = 0,
) -> tuple[float, float]:
    """Requests per second over HTTP (a fresh server process), and single-client latency."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(concurrency, child))
    process.start()
    try:
        port = parent.recv()
        url = f"http://127.0.0.1:{port}/v1/infer"
        if client == "raw":
            rps = asyncio.run(_raw_round(port, seconds))
        else:
            rps = asyncio.run(_http_round(url, seconds))
        return rps, asyncio.run(_latency(url, latency)) if latency else 0.0
    finally:
        parent.send("stop")
        process.join(30)


def direct_latency(count: int) -> float:
    """Median milliseconds of one direct wrapperOnceExec call."""
    wrapper = Sleepy()
    req = DataListCls([DataListNode("text", b"hello", 5)])
    times = []
    for _ in range(count):
        started = time.perf_counter()
        wrapper.wrapperOnceExec({"n": 1}, req)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--sweep", default="4,8,16,32,64")
    args = parser.parse_args()
    from actorflow.serve._wrapper import DEFAULT_CONCURRENCY

    # Interleave the variants round by round so that machine noise hits all alike.
    variants = {
        "served": {"client": "raw"},
        "served_aiohttp_clients": {"client": "aiohttp"},
    }
    direct: list[float] = []
    rps: dict[str, list[float]] = {name: [] for name in variants}
    latency: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        direct.append(direct_round(args.seconds))
        for name, options in variants.items():
            value, ms = served_round(DEFAULT_CONCURRENCY, args.seconds, latency=30, **options)
            rps[name].append(value)
            latency[name].append(ms)
    sweep = {
        n: served_round(n, args.seconds)[0] for n in (int(x) for x in args.sweep.split(",") if x)
    }
    base = statistics.median(direct)
    result = {
        "benchmark": "wrapper_serving",
        "python": platform.python_version(),
        "actorflow": actorflow.__version__,
        "aiohttp": aiohttp.__version__,
        "machine": f"{platform.machine()}, {mp.cpu_count()} cpus",
        "config": {
            "exec_ms": EXEC_S * 1e3,
            "clients": CLIENTS,
            "rounds": args.rounds,
            "seconds_per_round": args.seconds,
            "server_threads": DEFAULT_CONCURRENCY,
        },
        "ideal_rps": CLIENTS / EXEC_S,
        "direct_rps": [round(x, 1) for x in direct],
        "direct_median_rps": round(base, 1),
        "direct_latency_ms": round(direct_latency(30), 2),
        **{
            name: {
                "rps": [round(x, 1) for x in values],
                "median_rps": round(statistics.median(values), 1),
                "ratio": round(statistics.median(values) / base, 3),
                "latency_ms": round(statistics.median(latency[name]), 2),
            }
            for name, values in rps.items()
        },
        "served_rps_by_server_threads": {str(k): round(v, 1) for k, v in sweep.items()},
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
