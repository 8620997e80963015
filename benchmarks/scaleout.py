"""Scale-out on Ray: replicas of a remote bottleneck node, the cost of a remote hop, memory.

Runs on one simulated cluster (``ray.cluster_utils.Cluster``: a head and two worker
nodes) in this process tree, and prints JSON:

* ``scaling``: items/s through ``source -> wait -> sink`` where ``wait`` is placed on
  Ray with 1, 2 and 4 replicas spread over the nodes. Its work is 100 ms of GIL-free
  waiting per item (``asyncio.sleep``): it stands in for a remote GPU, whose kernels
  do not hold the driver's or the worker's GIL. ``vs_linear`` = throughput /
  (replicas x the 1-replica throughput of the same run); the target is >= 0.9.
  The same graph all-local (``wait`` as local replicas) is the reference.
* ``hop``: per-item latency of one remote node (``input -> echo -> output``, one item
  at a time) against a plain Ray actor call of the same echo, same run: the extra
  is what actorflow's proxy, ledger and re-ordering add to Ray's own round trip.
* ``memory``: a fast source into a remote node taking 50 ms per 480x640x3 frame. The
  driver's own memory (``RssAnon + RssFile``) must stay within
  (mailboxes + windows) x frame + 60 MB; the pages of Ray's shared object store the
  driver touched putting frames there (``RssShmem``) are reported apart: they are
  capped by the store's size, not by the flow.

Timings are medians of ``--repeats`` runs; read ratios, the machine is shared.

    python benchmarks/scaleout.py [--items-per-replica 40] [--frames 2000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

import numpy as np
import structlog

import actorflow as af

WORK_S = 0.100
FRAME = (480, 640, 3)
FRAME_BYTES = int(np.prod(FRAME))
FRAME_WORK_S = 0.050
QUEUE = 4
WINDOW = 2
MB = 1 << 20


class Numbers(af.SourceUnit):
    """``n`` small items, as fast as they are taken."""

    out = af.Output("out")

    def __init__(self, *, n: int) -> None:
        self.n = n

    async def generate(self, ctx: af.Context) -> Any:
        for i in range(self.n):
            yield i


class Frames(af.SourceUnit):
    """``n`` 480x640x3 frames, as fast as they are taken."""

    out = af.Output("out")

    def __init__(self, *, n: int) -> None:
        self.n = n

    async def generate(self, ctx: af.Context) -> Any:
        for i in range(self.n):
            yield np.full(FRAME, i % 251, np.uint8)


class Wait(af.FlowUnit):
    """``seconds`` of GIL-free waiting per item (stands in for a remote GPU)."""

    inp = af.Input("in")
    out = af.Output("out")

    def __init__(self, *, seconds: float) -> None:
        self.seconds = seconds

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await asyncio.sleep(self.seconds)
        data = packet.data
        await ctx.emit(self.out, packet.replace(data if np.isscalar(data) else int(data[0, 0, 0])))


class Echo(af.FlowUnit):
    """Returns its input."""

    inp = af.Input("in")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await ctx.emit(self.out, packet)


class Sink(af.FlowUnit):
    """Counts items, records the driver's memory every ``every`` items."""

    inp = af.Input("in")

    def __init__(self, *, rss: list[dict[str, int]] | None = None, every: int = 10) -> None:
        self.count = 0
        self.rss, self.every = rss, every

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        self.count += 1
        if self.rss is not None and self.count % self.every == 0:
            self.rss.append(rss_parts())


def rss_parts() -> dict[str, int]:
    """``RssAnon``, ``RssFile``, ``RssShmem`` of this process, in bytes."""
    parts = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Rss"):
                name, value = line.split(":")
                parts[name] = int(value.split()[0]) * 1024
    return parts


async def run_chain(n: int, replicas: int, placement: str) -> tuple[float, af.Flow]:
    """Seconds to push ``n`` items through ``source -> wait -> sink``."""
    source = Numbers(n=n)
    wait = Wait(seconds=WORK_S).options(
        placement=placement, replicas=replicas, window=WINDOW, resources={"num_cpus": 0.5}
    )
    sink = Sink()
    flow = af.Flow([source], [sink(wait(source))], watchdog_threshold=None)
    flow.build()
    await flow.run_async()  # opens every unit (the actors start) before timing
    start = time.perf_counter()
    await flow.wait()
    elapsed = time.perf_counter() - start
    assert sink.count == n, (sink.count, n)
    assert flow.statistics().balanced
    return elapsed, flow


async def scaling(per_replica: int, repeats: int) -> dict[str, Any]:
    """Items/s per placement and replica count; repeats interleave the configurations,
    so load from other jobs on the machine falls on all of them alike."""
    configs = [(p, r) for p in ("ray", "local") for r in (1, 2, 4)]
    rates: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    spread: dict[tuple[str, int], list[int]] = {c: [] for c in configs}
    for _ in range(repeats):
        for placement, replicas in configs:
            n = per_replica * replicas
            elapsed, flow = await run_chain(n, replicas, placement)
            rates[placement, replicas].append(n / elapsed)
            info = flow.statistics().nodes[_wait_node(flow)].info
            spread[placement, replicas].append(
                len({r["node_id"] for r in info.get("replicas", ())})
            )
    rows: dict[str, Any] = {}
    ideal = 1.0 / WORK_S
    for placement, replicas in configs:
        median = statistics.median(rates[placement, replicas])
        one = statistics.median(rates[placement, 1])
        rows[f"{placement}_{replicas}"] = {
            "items_per_s": round(median, 2),
            "runs": [round(r, 2) for r in rates[placement, replicas]],
            "vs_linear": round(median / (replicas * one), 3),
            "vs_ideal": round(median / (replicas * ideal), 3),
            "ray_nodes_per_run": spread[placement, replicas],
        }
    return rows


def _wait_node(flow: af.Flow) -> str:
    return next(n for n in flow.statistics().nodes if n.startswith("wait"))


async def hop(n: int, blocks: int = 5) -> dict[str, Any]:
    """Per-item latency, one at a time: a remote node vs a plain actor call (same node).

    Both actors are pinned to worker node ``node_a``; the two are measured in
    alternating blocks (medians), so load on the shared machine hits both alike.
    """
    import ray

    @ray.remote
    class PlainEcho:
        async def echo(self, x: Any) -> Any:
            return x

    pin = {"num_cpus": 0.25, "node_a": 1}
    options = {"num_cpus": 0.25, "resources": {"node_a": 1}}
    plain = PlainEcho.options(**options).remote()  # type: ignore[attr-defined]
    await plain.echo.remote(0)
    echo = {"unit": "echo", "placement": "ray", "window": 1, "resources": pin}
    graph = {
        "name": "hop",
        "nodes": {"input": {"type": "input"}, "echo": echo, "output": {"type": "output"}},
        "edges": ["input -> echo", "echo -> output"],
    }
    registry = af.unit.Registry()
    registry.register(Echo, "echo")
    flow = af.Flow(graph, registry=registry, watchdog_threshold=None)
    await flow.run_async()
    session = flow.session()
    await session.send("input", -1)
    await session.recv()
    per_block = max(1, n // blocks)
    plain_s, hop_s = [], []
    for _ in range(blocks):
        started = time.perf_counter()
        for i in range(per_block):
            await plain.echo.remote(i)
        plain_s.append((time.perf_counter() - started) / per_block)
        started = time.perf_counter()
        for i in range(per_block):
            await session.send("input", i)
            result = await session.recv()
            assert result.data == i
        hop_s.append((time.perf_counter() - started) / per_block)
    await session.close()
    await flow.stop()
    ray.kill(plain)
    assert flow.statistics().balanced
    plain_ms = statistics.median(plain_s) * 1e3
    hop_ms = statistics.median(hop_s) * 1e3
    return {
        "items": per_block * blocks,
        "plain_ray_call_ms": round(plain_ms, 3),
        "remote_node_hop_ms": round(hop_ms, 3),
        "overhead_ms": round(hop_ms - plain_ms, 3),
        "ratio": round(hop_ms / plain_ms, 2),
    }


async def memory(frames: int) -> dict[str, Any]:
    rss: list[dict[str, int]] = []
    source = Frames(n=frames)
    wait = Wait(seconds=FRAME_WORK_S).options(placement="ray", window=WINDOW, queue_size=QUEUE)
    sink = Sink(rss=rss).options(queue_size=QUEUE)
    flow = af.Flow([source], [sink(wait(source))], watchdog_threshold=None)
    flow.build()
    await flow.run_async()
    before = rss_parts()
    started = time.perf_counter()
    await flow.wait()
    elapsed = time.perf_counter() - started
    assert sink.count == frames
    assert flow.statistics().balanced
    own = max(r["RssAnon"] + r["RssFile"] for r in rss) - before["RssAnon"] - before["RssFile"]
    shared = max(r["RssShmem"] for r in rss) - before["RssShmem"]
    total = max(sum(r.values()) for r in rss) - sum(before.values())
    mailboxes = 2 * QUEUE
    bound = (mailboxes + WINDOW) * FRAME_BYTES + 60 * MB
    return {
        "frames": frames,
        "frame_mb": round(FRAME_BYTES / MB, 3),
        "seconds": round(elapsed, 1),
        "frames_per_s": round(frames / elapsed, 2),
        "mailboxes": mailboxes,
        "window": WINDOW,
        "bound_mb": round(bound / MB, 1),
        "driver_own_growth_mb": round(own / MB, 1),
        "within_bound": own <= bound,
        "object_store_pages_growth_mb": round(shared / MB, 1),
        "total_rss_growth_mb": round(total / MB, 1),
        "unbounded_would_be_mb": round(frames * FRAME_BYTES / MB, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items-per-replica", type=int, default=40)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--hops", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    import ray
    from ray.cluster_utils import Cluster

    store = 128 * MB
    started = time.perf_counter()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": store, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=2, resources={"node_a": 100}, object_store_memory=store)
        cluster.add_node(num_cpus=2, resources={"node_b": 100}, object_store_memory=store)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        up_s = time.perf_counter() - started

        async def everything() -> dict[str, Any]:
            return {
                "scaling": await scaling(args.items_per_replica, args.repeats),
                "hop": await hop(args.hops),
                "memory": await memory(args.frames),
            }

        result = asyncio.run(everything())
    finally:
        ray.shutdown()
        cluster.shutdown()
    result["cluster"] = {"nodes": 3, "start_s": round(up_s, 1), "cpus": os.cpu_count()}
    result["work"] = (
        "100 ms of GIL-free waiting per item (asyncio.sleep): a stand-in for a remote GPU"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
