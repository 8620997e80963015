"""Memory under a fast source and a slow sink: bounded mailboxes vs an unbounded pipeline.

A source produces 480x640x3 frames as fast as it can; a sink takes 5 ms per frame.
actorflow's bounded mailboxes hold the source back, so peak memory stays near
(sum of mailbox capacities x frame size); the same pipeline on unbounded
``asyncio.Queue`` grows with every frame the sink has not taken yet. Each variant
runs in its own subprocess so peak RSS (``ru_maxrss``) is its own.

    python benchmarks/backpressure.py [--frames 10000] [--baseline-frames 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

FRAME = (480, 640, 3)
FRAME_BYTES = int(np.prod(FRAME))
SINK_SECONDS = 0.005
QUEUE = 8


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_actorflow(frames: int) -> dict[str, Any]:
    import actorflow as af

    @af.source(register=False)
    async def camera(*, n: int) -> Any:
        for i in range(n):
            yield np.full(FRAME, i % 255, np.uint8)

    @af.flowunit(register=False)
    async def preprocess(frame: np.ndarray) -> np.ndarray:
        return frame

    class SlowSink(af.FlowUnit):
        inp = af.Input("in")

        async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
            await asyncio.sleep(SINK_SECONDS)

    src = camera(n=frames)
    mid = preprocess().options(queue_size=QUEUE)(src)
    sink = SlowSink().options(queue_size=QUEUE)(mid)
    flow = af.Flow([src], [sink])
    before = _rss_mb()
    start = time.perf_counter()
    await flow.run_async()
    await flow.wait()
    stats = flow.statistics()
    capacity = sum(n.mailbox_size for n in stats.nodes.values())
    return {
        "variant": "actorflow",
        "frames": frames,
        "seconds": time.perf_counter() - start,
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "mailbox_capacity_frames": capacity,
        "bound_mb": round(before + capacity * FRAME_BYTES / 2**20 + 40, 1),
        "delivered": stats.nodes["slow_sink"].processed,
    }


async def run_unbounded(frames: int) -> dict[str, Any]:
    queues: list[asyncio.Queue[np.ndarray | None]] = [asyncio.Queue(), asyncio.Queue()]
    before = _rss_mb()
    start = time.perf_counter()

    async def source() -> None:
        for i in range(frames):
            await queues[0].put(np.full(FRAME, i % 255, np.uint8))
        await queues[0].put(None)

    async def preprocess() -> None:
        while (frame := await queues[0].get()) is not None:
            await queues[1].put(frame)
        await queues[1].put(None)

    async def sink() -> None:
        while await queues[1].get() is not None:
            await asyncio.sleep(SINK_SECONDS)

    await asyncio.gather(source(), preprocess(), sink())
    return {
        "variant": "unbounded_asyncio",
        "frames": frames,
        "seconds": time.perf_counter() - start,
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
    }


def child(variant: str, frames: int) -> None:
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    runner = run_actorflow if variant == "actorflow" else run_unbounded
    print(json.dumps(asyncio.run(runner(frames))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--baseline-frames", type=int, default=2_000)
    parser.add_argument("--child", choices=["actorflow", "unbounded"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.frames)
        return
    results = []
    for variant, frames in (("actorflow", args.frames), ("unbounded", args.baseline_frames)):
        out = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--frames", str(frames)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout))
    ours, base = results
    print(
        json.dumps(
            {
                "benchmark": "backpressure",
                "frame_shape": FRAME,
                "sink_ms": SINK_SECONDS * 1000,
                "actorflow": ours,
                "unbounded_baseline": base,
                "actorflow_growth_mb": round(ours["peak_rss_mb"] - ours["rss_before_mb"], 1),
                "unbounded_growth_mb": round(base["peak_rss_mb"] - base["rss_before_mb"], 1),
                "acceptance": {"peak_rss_within_bound": ours["peak_rss_mb"] <= ours["bound_mb"]},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
