"""Cost of one message hop: actorflow vs asyncio.Queue vs a naive anyio memory stream.

A source feeds a chain of 4 no-op units into a sink (4 hops between actors plus the
source's and the sink's), the same shape built three ways, in one process, in the
same run. Prints one JSON object: medians over rounds, in microseconds per message
per hop, and the ratios the acceptance criteria use.

    python benchmarks/hops.py [--messages 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from typing import Any

import anyio

import actorflow as af

HOPS = 5  # source -> n1 -> n2 -> n3 -> n4 -> sink: five channel hand-offs
QUEUE = 32


@af.source(register=False)
async def numbers(*, n: int) -> Any:
    for i in range(n):
        yield i


@af.flowunit(register=False)
async def noop(x: int) -> int:
    return x


class Drain(af.FlowUnit):
    inp = af.Input("in")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        pass


async def actorflow_chain(n: int) -> float:
    src = numbers(n=n)
    node: af.FlowUnit = src
    for _ in range(4):
        node = noop().options(queue_size=QUEUE)(node)
    flow = af.Flow([src], [Drain().options(queue_size=QUEUE)(node)])
    flow.build()
    start = time.perf_counter()
    await flow.run_async()
    await flow.wait()
    elapsed = time.perf_counter() - start
    assert flow.statistics().nodes["drain"].processed == n
    return elapsed


async def asyncio_chain(n: int) -> float:
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


async def anyio_chain(n: int) -> float:
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


async def main(messages: int, rounds: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"actorflow": [], "asyncio_queue": [], "anyio_stream": []}
    for _ in range(rounds):
        runs["actorflow"].append(await actorflow_chain(messages))
        runs["asyncio_queue"].append(await asyncio_chain(messages))
        runs["anyio_stream"].append(await anyio_chain(messages // 4))
    per_hop = {
        "actorflow": statistics.median(runs["actorflow"]) / messages / HOPS * 1e6,
        "asyncio_queue": statistics.median(runs["asyncio_queue"]) / messages / HOPS * 1e6,
        "anyio_stream": statistics.median(runs["anyio_stream"]) / (messages // 4) / HOPS * 1e6,
    }
    ratio = per_hop["actorflow"] / per_hop["asyncio_queue"]
    return {
        "benchmark": "hops",
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "messages": messages,
        "rounds": rounds,
        "hops": HOPS,
        "queue_size": QUEUE,
        "us_per_message_per_hop_median": {k: round(v, 3) for k, v in per_hop.items()},
        "ratio_actorflow_to_asyncio_queue": round(ratio, 2),
        "ratio_anyio_stream_to_actorflow": round(per_hop["anyio_stream"] / per_hop["actorflow"], 2),
        "acceptance": {
            "actorflow_us_per_hop_le_1.0": per_hop["actorflow"] <= 1.0,
            "ratio_to_asyncio_queue_le_1.5": ratio <= 1.5,
        },
    }


if __name__ == "__main__":
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.messages, args.rounds)), indent=2))
