"""The dashboard's own cost: flow throughput with viewers attached vs without, same run.

A source of 640x480 frames (pre-rendered, cycled) feeds an ``annotate`` unit (a blur
and a box on the node's executor thread, ~3 ms of CPU: a stand-in for a small detector
plus drawing) into a ``dashboard`` sink, served by ``serve_dashboard`` on 127.0.0.1.
Each round runs the flow once per mode, in rotating order:

* ``none``: nobody watches (nothing is encoded);
* ``viewer``: one WebSocket viewer reading everything (the page's protocol), default
  sink settings (15 JPEGs/s, quality 70, 640 px);
* ``stuck``: one WebSocket viewer that stops reading after the handshake;
* ``viewer_uncapped``: as ``viewer`` with ``max_fps=0`` (encode every frame it can).

Viewers that read run in a process of their own (as a browser would), so the figures
are the serving side's. Two measures per run:

* wall-clock frames/s (what the flow achieved; on a shared machine other people's load
  swings it, so read the medians);
* process CPU milliseconds per frame (every thread of this process: the loop, the
  node's executor, the encoder), which other processes' load barely moves. When every
  core is busy, throughput is its inverse: ``cpu_ratio`` = CPU per frame without a
  viewer / CPU per frame with one.

Prints one JSON object: per mode the medians and the ratios to ``none`` (acceptance:
the ``viewer`` mode's ratios >= 0.95), JPEGs encoded and viewer drops.

    python benchmarks/dashboard.py [--rounds 9] [--frames 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from typing import Any

import cv2
import numpy as np
import structlog

import actorflow as af
from actorflow.dashboard import serve_dashboard
from actorflow.flowunits.dashboard.hub import _HUBS
from actorflow.flowunits.dashboard.sink import DashboardSink

MODES = ("none", "viewer", "stuck", "viewer_uncapped")

VIEWER = """
import asyncio, sys, aiohttp
async def main():
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(sys.argv[1], max_msg_size=0) as ws:
            print("connected", flush=True)
            async for _ in ws:
                pass
asyncio.run(main())
"""


def frames(count: int = 16) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), (31, 31), 0)
    return [np.roll(base, 8 * i, axis=1) for i in range(count)]


class Annotate(af.FlowUnit):
    inp = af.Input("image")
    out = af.Output("image")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await ctx.emit("image", packet.replace(await ctx.run_blocking(_draw, packet.data)))


def _draw(image: np.ndarray) -> np.ndarray:
    drawn = cv2.GaussianBlur(image, (21, 21), 0)
    cv2.rectangle(drawn, (200, 120), (360, 300), (0, 155, 255), 3)
    return drawn


async def viewer(url: str) -> asyncio.subprocess.Process:
    """A WebSocket viewer in another process that reads everything (a browser's part)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", VIEWER, url, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    await proc.stdout.readline()  # "connected"
    return proc


async def stuck(port: int) -> asyncio.StreamWriter:
    """A WebSocket client that completes the handshake and never reads again."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /dashboard/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    await reader.readline()
    return writer


async def one(mode: str, count: int, images: list[np.ndarray], index: int) -> dict[str, Any]:
    hub = f"bench-{index}"

    @af.source(register=False)
    async def camera() -> Any:
        for i in range(count):
            yield images[i % len(images)]

    src = camera()
    sink = DashboardSink(hub=hub, max_fps=0 if mode == "viewer_uncapped" else 15)
    flow = af.Flow([src], [sink(Annotate()(src))])
    async with serve_dashboard(flow, port=0, hub_name=hub) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        proc = writer = None
        if mode in ("viewer", "viewer_uncapped"):
            proc = await viewer(url.replace("http:", "ws:") + "/ws")
        elif mode == "stuck":
            writer = await stuck(port)
        started, cpu = time.perf_counter(), time.process_time()
        await flow.run_async()
        status = await flow.wait(300)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        counts = _HUBS[hub].counters()
        if proc is not None:
            proc.terminate()
            await proc.wait()
        if writer is not None:
            writer.close()
    _HUBS.pop(hub, None)
    stats = flow.statistics()
    assert status is af.Status.STOP
    assert stats.balanced
    assert sum(n.processed for n in stats.nodes.values() if n.unit == "dashboard") == count
    return {
        "fps": count / elapsed,
        "cpu_ms": 1000 * cpu / count,
        "encoded": counts["encoded"],
        "dropped": counts["viewer_dropped"],
    }


async def main(rounds: int, count: int) -> dict[str, Any]:
    images = frames()
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    index = 0
    for r in range(rounds):
        order = MODES[r % len(MODES) :] + MODES[: r % len(MODES)]
        for mode in order:
            index += 1
            results[mode].append(await one(mode, count, images, index))
    base = statistics.median(x["fps"] for x in results["none"])
    base_cpu = statistics.median(x["cpu_ms"] for x in results["none"])
    out: dict[str, Any] = {"frames": count, "rounds": rounds, "cpus": os.cpu_count(), "modes": {}}
    for mode, runs in results.items():
        fps = statistics.median(x["fps"] for x in runs)
        cpu = statistics.median(x["cpu_ms"] for x in runs)
        out["modes"][mode] = {
            "fps_median": round(fps, 1),
            "fps_runs": [round(x["fps"], 1) for x in runs],
            "ratio_to_none": round(fps / base, 3),
            "cpu_ms_per_frame_median": round(cpu, 3),
            "cpu_ratio": round(base_cpu / cpu, 3),
            "encoded_median": statistics.median(x["encoded"] for x in runs),
            "viewer_dropped_median": statistics.median(x["dropped"] for x in runs),
        }
    watched = out["modes"]["viewer"]
    out["acceptance"] = {
        "goal": 0.95,
        "viewer_ratio_wall": watched["ratio_to_none"],
        "viewer_ratio_cpu": watched["cpu_ratio"],
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print(json.dumps(asyncio.run(main(args.rounds, args.frames)), indent=2))
