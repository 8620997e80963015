"""The floor of a hop in CPython: hand-written chains doing only what a hop must do.

``benchmarks/hops.py`` measures actorflow's hops against an ``asyncio.Queue`` chain.
This script measures how low a hop *can* go with actorflow's unit API, by stripping
everything but the unavoidable work from the same shape (a source, four stages, a
sink; bounded deques of 32 between them, tasks parked on bare futures while they
wait) — no statistics, no ledger, no markers, no failure handling, no checkpoints:

* ``deque_chain``: items moved from deque to deque (the mailbox alone);
* ``function_floor``: each stage awaits an async one-in/one-out function on the
  payload and puts a new ``Packet`` (an async ``@flowunit``);
* ``function_floor_reused``: the same, writing the result into the input packet (what
  ``runtime/_plain.py`` does when nothing else holds it);
* ``class_floor``: each stage awaits ``unit.process(ctx, packet)``, which awaits
  ``ctx.emit(port, packet)`` (a ``FlowUnit`` class: two coroutines per hop).

Rounds are interleaved and figures are medians in microseconds per message per hop,
with each variant's ratio to ``asyncio.Queue`` in the same run.

    python benchmarks/hop_floor.py [--messages 200000] [--rounds 5]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from hops import asyncio_queue  # the same baseline as benchmarks/hops.py

from actorflow.unit import Packet

HOPS = 5
QUEUE = 32
END: Any = object()


async def noop(x: int) -> int:
    return x


class Hand:
    """A bounded deque with a parked consumer and a parked producer."""

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.data: asyncio.Future[None] | None = None
        self.space: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> bool:
        if len(self.items) >= QUEUE:
            return False
        self.items.append(item)
        if self.data is not None and not self.data.done():
            self.data.set_result(None)
        return True

    async def put(self, item: Any) -> None:
        while not self.put_nowait(item):
            self.space = asyncio.get_running_loop().create_future()
            await self.space

    def took(self) -> None:
        if self.space is not None and not self.space.done():
            self.space.set_result(None)

    async def wait(self) -> None:
        self.data = asyncio.get_running_loop().create_future()
        await self.data


class Context:
    """Just enough of ``ctx`` for ``emit``."""

    def __init__(self, out: Hand) -> None:
        self.out = out

    async def emit(self, port: str, packet: Packet[Any]) -> None:
        if not self.out.put_nowait(packet):
            await self.out.put(packet)


class Unit:
    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit("out", packet)


def chain(kind: str) -> Callable[[int], Coroutine[Any, Any, float]]:
    """One variant: the stage loop is written out per kind (a call per item would cost)."""

    async def run(n: int) -> float:
        hands = [Hand() for _ in range(HOPS)]

        async def source() -> None:
            first = hands[0]
            for i in range(n):
                packet = Packet(i)
                if not first.put_nowait(packet):
                    await first.put(packet)
            await first.put(END)

        async def stage(inbox: Hand, out: Hand) -> None:
            items, ctx, unit = inbox.items, Context(out), Unit()
            while True:
                if not items:
                    await inbox.wait()
                    continue
                item = items.popleft()
                inbox.took()
                if item is END:
                    break
                if kind == "deque_chain":
                    packet = item
                elif kind == "class_floor":
                    await unit.process(ctx, item)
                    continue
                else:
                    result = await noop(item.data)
                    if kind == "function_floor_reused":
                        item.data = result
                        packet = item
                    else:
                        packet = Packet(result, item.session, item.seq, item.lineage, item.meta)
                if not out.put_nowait(packet):
                    await out.put(packet)
            await out.put(END)

        async def sink(inbox: Hand) -> None:
            items = inbox.items
            while True:
                if not items:
                    await inbox.wait()
                    continue
                item = items.popleft()
                inbox.took()
                if item is END:
                    return

        start = time.perf_counter()
        await asyncio.gather(
            source(), *(stage(hands[i], hands[i + 1]) for i in range(4)), sink(hands[4])
        )
        return time.perf_counter() - start

    return run


VARIANTS: dict[str, Callable[[int], Coroutine[Any, Any, float]]] = {
    "asyncio_queue": asyncio_queue,
    **{
        kind: chain(kind)
        for kind in ("deque_chain", "function_floor", "function_floor_reused", "class_floor")
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, variant in VARIANTS.items():
            seconds = asyncio.run(variant(args.messages))
            runs[name].append(round(seconds / args.messages / HOPS * 1e6, 3))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    base = medians["asyncio_queue"]
    print(
        json.dumps(
            {
                "benchmark": "hop_floor",
                "messages": args.messages,
                "rounds": args.rounds,
                "us_per_message_per_hop": runs,
                "medians_us": medians,
                "ratios_to_asyncio_queue": {
                    name: round(value / base, 3) for name, value in medians.items()
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
