"""Cost of one message hop: actorflow's unit kinds against queue baselines, same run.

A source feeds a chain of 4 no-op stages into a sink (five hand-offs), the same shape
built several ways:

* ``asyncio_queue``: tasks joined by ``asyncio.Queue(32)`` (the baseline of the async
  variants);
* ``actorflow_async``: four async ``@flowunit`` functions;
* ``actorflow_class``: four ``FlowUnit`` classes (``process`` + ``ctx.emit``);
* ``actorflow_thread``: four plain-``def`` ``@flowunit`` functions, each on its own
  worker thread; ``actorflow_thread_replicas``: the same with two replicas (two
  threads) per stage, outputs kept in order;
* ``mp_queue``: five processes joined by ``multiprocessing.JoinableQueue(32)`` (the
  baseline of the thread variant: work off the event loop, handed over by queue);
* ``anyio_stream``: anyio memory object streams (checkpoint on every call).

Rounds are interleaved (every variant once per round, in the same process except the
multiprocessing chain) and the figures are medians, in microseconds per message per
hop, with each variant's ratio to its baseline. Also measured: the latency of one item
alone through a one-node flow with a plain-``def`` unit (send, wait for the result),
against one ``run_in_executor`` round trip on a dedicated thread.

    python benchmarks/hops.py [--messages 200000] [--rounds 5] [--only NAME ...]

Prints one JSON object (``benchmarks/run.py`` stores it with the machine description).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

import actorflow as af
from actorflow.unit import Registry

HOPS = 5  # source -> n1 -> n2 -> n3 -> n4 -> sink: five channel hand-offs
QUEUE = 32
SLOW = {"actorflow_thread": 10, "actorflow_thread_replicas": 10, "mp_queue": 10, "anyio_stream": 20}
"""Variants run on 1/N of the messages (they are slower; figures are per message)."""


@af.source(register=False)
async def numbers(*, n: int) -> Any:
    for i in range(n):
        yield i


@af.flowunit(register=False)
async def noop(x: int) -> int:
    return x


@af.flowunit(register=False)
def noop_thread(x: int) -> int:
    return x


class Noop(af.FlowUnit):
    inp = af.Input("in")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await ctx.emit(self.out, packet)


class Drain(af.FlowUnit):
    inp = af.Input("in")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        pass


async def _actorflow_chain(n: int, stage: Callable[[], af.FlowUnit], replicas: int = 1) -> float:
    src = numbers(n=n)
    node: af.FlowUnit = src
    for _ in range(4):
        node = stage().options(queue_size=QUEUE, replicas=replicas)(node)
    flow = af.Flow([src], [Drain().options(queue_size=QUEUE)(node)])
    flow.build()
    start = time.perf_counter()
    await flow.run_async()
    await flow.wait()
    elapsed = time.perf_counter() - start
    assert flow.statistics().nodes["drain"].processed == n
    return elapsed


async def actorflow_async(n: int) -> float:
    return await _actorflow_chain(n, noop)


async def actorflow_class(n: int) -> float:
    return await _actorflow_chain(n, Noop)


async def actorflow_thread(n: int) -> float:
    return await _actorflow_chain(n, noop_thread)


async def actorflow_thread_replicas(n: int) -> float:
    return await _actorflow_chain(n, noop_thread, replicas=2)


async def asyncio_queue(n: int) -> float:
    queues: list[asyncio.Queue[int | None]] = [asyncio.Queue(QUEUE) for _ in range(HOPS)]

    async def source() -> None:
        for i in range(n):
            await queues[0].put(i)
        await queues[0].put(None)

    async def stage(inbox: asyncio.Queue[int | None], outbox: asyncio.Queue[int | None]) -> None:
        while (item := await inbox.get()) is not None:
            await outbox.put(item)
        await outbox.put(None)

    async def sink(inbox: asyncio.Queue[int | None]) -> None:
        while await inbox.get() is not None:
            pass

    start = time.perf_counter()
    await asyncio.gather(
        source(), *(stage(queues[i], queues[i + 1]) for i in range(4)), sink(queues[4])
    )
    return time.perf_counter() - start


async def anyio_stream(n: int) -> float:
    streams = [anyio.create_memory_object_stream[int](QUEUE) for _ in range(HOPS)]

    async def source() -> None:
        async with streams[0][0] as send:
            for i in range(n):
                await send.send(i)

    async def stage(i: int) -> None:
        async with streams[i][1] as receive, streams[i + 1][0] as send:
            async for item in receive:
                await send.send(item)

    async def sink() -> None:
        async with streams[4][1] as receive:
            async for _ in receive:
                pass

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(source)
        for i in range(4):
            tg.start_soon(stage, i)
        tg.start_soon(sink)
    return time.perf_counter() - start


def _mp_stage(inbox: Any, outbox: Any) -> None:
    while (item := inbox.get()) is not None:
        outbox.put(item)
        inbox.task_done()
    inbox.task_done()
    outbox.put(None)


def _mp_source(outbox: Any, n: int) -> None:
    for i in range(n):
        outbox.put(i)
    outbox.put(None)


async def mp_queue(n: int) -> float:
    """Source and four stages in their own processes; the sink in this one."""
    ctx = mp.get_context("fork")
    queues = [ctx.JoinableQueue(QUEUE) for _ in range(HOPS)]
    stages = [ctx.Process(target=_mp_stage, args=(queues[i], queues[i + 1])) for i in range(4)]
    for proc in stages:
        proc.start()
    sink = queues[-1]
    start = time.perf_counter()
    source = ctx.Process(target=_mp_source, args=(queues[0], n))
    source.start()
    while sink.get() is not None:
        sink.task_done()
    sink.task_done()
    elapsed = time.perf_counter() - start
    for proc in (source, *stages):
        proc.join()
    return elapsed


VARIANTS: dict[str, Callable[[int], Coroutine[Any, Any, float]]] = {
    "asyncio_queue": asyncio_queue,
    "actorflow_async": actorflow_async,
    "actorflow_class": actorflow_class,
    "actorflow_thread": actorflow_thread,
    "actorflow_thread_replicas": actorflow_thread_replicas,
    "mp_queue": mp_queue,
    "anyio_stream": anyio_stream,
}
BASELINE = {
    "actorflow_async": "asyncio_queue",
    "actorflow_class": "asyncio_queue",
    "anyio_stream": "asyncio_queue",
    "actorflow_thread": "mp_queue",
    "actorflow_thread_replicas": "mp_queue",
}


async def single_item_latency(samples: int) -> dict[str, float]:
    """Median µs for one item alone through a one-node flow, and a raw executor round trip."""
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raw")
    loop = asyncio.get_running_loop()
    raw: list[float] = []
    fn = noop_thread._fn
    for _ in range(samples):
        start = time.perf_counter()
        await loop.run_in_executor(pool, fn, 1)
        raw.append(time.perf_counter() - start)
    pool.shutdown()
    registry = Registry()
    registry.register(noop_thread, "noop_thread")
    graph = {
        "name": "latency",
        "nodes": {
            "input": {"type": "input"},
            "n": {"unit": "noop_thread"},
            "output": {"type": "output"},
        },
        "edges": ["input -> n", "n -> output"],
    }
    flow = af.Flow(graph, registry=registry)
    await flow.run_async()
    session = flow.session()
    through: list[float] = []
    for i in range(samples):
        start = time.perf_counter()
        await session.send("input", i)
        await session.recv()
        through.append(time.perf_counter() - start)
    await session.close()
    await flow.stop()
    return {
        "one_item_through_thread_unit_us": round(statistics.median(through) * 1e6, 1),
        "raw_executor_round_trip_us": round(statistics.median(raw) * 1e6, 1),
    }


async def main(
    messages: int, rounds: int, only: list[str], latency_samples: int = 2000
) -> dict[str, Any]:
    names = [n for n in VARIANTS if not only or n in only or n in BASELINE.values()]
    runs: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(rounds):
        for name in names:
            n = messages // SLOW.get(name, 1)
            runs[name].append((await VARIANTS[name](n)) / n / HOPS * 1e6)
    per_hop = {n: statistics.median(v) for n, v in runs.items()}
    ratios = {
        f"{name}_to_{base}": round(per_hop[name] / per_hop[base], 3)
        for name, base in BASELINE.items()
        if name in per_hop and base in per_hop
    }
    paired = {  # each round against its own baseline run, seconds apart: steadier under load
        f"{name}_to_{base}": round(
            statistics.median(a / b for a, b in zip(runs[name], runs[base], strict=True)), 3
        )
        for name, base in BASELINE.items()
        if name in runs and base in runs
    }
    return {
        "benchmark": "hops",
        "messages": messages,
        "rounds": rounds,
        "hops": HOPS,
        "queue_size": QUEUE,
        "us_per_message_per_hop_median": {k: round(v, 3) for k, v in per_hop.items()},
        "us_per_message_per_hop_rounds": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "ratios": ratios,
        "ratios_paired_median": paired,
        "single_item_latency_median": await single_item_latency(latency_samples),
    }


if __name__ == "__main__":
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=[], choices=list(VARIANTS))
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.messages, args.rounds, args.only)), indent=2))
