"""Streams coming and going under load, and a camera that loses its RTSP server.

1. ``pause``: a ninth stream (a 30 frames/s synthetic camera, results read as they
   come) flows through a plain-``def`` unit (resize to 96x96, mean) while 8 streams
   from video files written with OpenCV are added one by one, then 4 removed. The
   figure is the longest gap between two of the ninth stream's results, against the
   same stream's longest gap with nothing else running (same run).
2. ``rtsp``: a ``video_source`` on GStreamer's RTSP server (``tests/support``); the
   server is killed, then started again; the figure is the time from the restart to
   the first frame after it (issue 12: within 2 s).

Prints one JSON object. ``python benchmarks/streams.py [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import cv2
import numpy as np
import structlog

import actorflow as af
from actorflow.flowunits.video.sources import VideoSource

ROOT = Path(__file__).resolve().parents[1]


class Camera(af.SourceUnit):
    """Synthetic 240x320 frames at ``fps``, forever."""

    out = af.Output("frame", np.ndarray)

    def __init__(self, *, fps: float = 30.0) -> None:
        self.fps = fps

    async def generate(self, ctx: af.Context) -> Any:
        frame = np.zeros((240, 320, 3), np.uint8)
        while True:
            yield frame
            await anyio.sleep(1 / self.fps)


@af.flowunit(name="bench_streams_shrink", register=True)
def shrink(frame: np.ndarray) -> float:
    small = cv2.resize(frame, (96, 96))
    return float(small.astype(np.float32).mean())


def graph() -> af.Flow:
    return af.Flow(
        {
            "nodes": {
                "frames": {"type": "input", "queue_size": 8},
                "shrink": {"flowunit": "bench_streams_shrink"},
                "out": {"type": "output"},
            },
            "edges": ["frames -> shrink", "shrink -> out"],
        },
        watchdog_threshold=None,
    )


def video(path: Path, frames: int = 150) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    for i in range(frames):
        writer.write(np.full((240, 320, 3), i % 255, np.uint8))
    writer.release()
    return str(path)


async def ninth_gaps(files: list[str], *, churn: bool) -> dict[str, Any]:
    flow = graph()
    gaps: list[float] = []
    async with flow:
        ninth = flow.add_source(Camera(), stream_id="ninth", collect=True)

        async def read() -> None:
            last = None
            async for _ in ninth.session:
                now = time.perf_counter()
                if last is not None:
                    gaps.append(now - last)
                last = now

        async with anyio.create_task_group() as tg:
            tg.start_soon(read)
            await anyio.sleep(1.0)
            if churn:
                for k, path in enumerate(files):
                    flow.add_source(VideoSource(uri=path), stream_id=f"file{k}")
                    await anyio.sleep(0.5)
                for k in range(4):
                    await flow.remove_source(f"file{k}")
                await anyio.sleep(1.0)
            else:
                await anyio.sleep(0.5 * len(files) + 1.0)
            await flow.remove_source("ninth")
        stats = flow.statistics()
    return {
        "max_gap_s": max(gaps),
        "p99_gap_s": float(np.percentile(gaps, 99)),
        "results": len(gaps) + 1,
        "ledgers_closed": stats.balanced,
    }


async def rtsp_reconnect() -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server_cmd = ["/usr/bin/python3", str(ROOT / "tests/support/rtsp_server.py"), str(port)]

    def start() -> subprocess.Popen[str]:
        proc = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        return proc

    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
    proc = start()
    flow = graph()
    url = f"rtsp://127.0.0.1:{port}/test"
    camera = VideoSource(uri=url, backoff=0.2, backoff_max=0.5, timeout=1.0, max_reconnects=-1)
    try:
        async with flow:
            cam = flow.add_source(camera, stream_id="cam", collect=True)
            frames = cam.session.__aiter__()
            for _ in range(10):
                await frames.__anext__()
            proc.terminate()
            proc.wait()
            while camera.status != "reconnecting":
                await anyio.sleep(0.01)
            await anyio.sleep(1.0)  # the outage
            restarted = time.perf_counter()
            proc = start()
            while True:  # drain frames buffered before the outage, then the first new one
                await frames.__anext__()
                if camera.status == "live" and camera.outages == 1:
                    return time.perf_counter() - restarted
    finally:
        proc.terminate()
        proc.wait()


async def main(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        files = [video(Path(tmp) / f"v{k}.avi") for k in range(8)]
        alone, churned = [], []
        for _ in range(rounds):  # interleaved: alone, then with 8 streams coming and going
            alone.append(await ninth_gaps(files, churn=False))
            churned.append(await ninth_gaps(files, churn=True))
    reconnects = [await rtsp_reconnect() for _ in range(rounds)]
    med = statistics.median
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "rounds": rounds,
        "ninth_alone_max_gap_s": round(med(r["max_gap_s"] for r in alone), 4),
        "ninth_with_churn_max_gap_s": round(med(r["max_gap_s"] for r in churned), 4),
        "ninth_with_churn_max_gap_each_round_s": [round(r["max_gap_s"], 4) for r in churned],
        "ninth_with_churn_p99_gap_s": round(med(r["p99_gap_s"] for r in churned), 4),
        "frame_interval_s": round(1 / 30, 4),
        "ledgers_closed": all(r["ledgers_closed"] for r in alone + churned),
        "rtsp_reconnect_after_restart_s": [round(x, 3) for x in reconnects],
        "rtsp_reconnect_median_s": round(med(reconnects), 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print(json.dumps(anyio.run(main, args.rounds), indent=2))
