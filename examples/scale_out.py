"""Scale a node out on Ray: the same graph, its heavy node placed as Ray actors.

python examples/scale_out.py                  # starts a local Ray for this run
python examples/scale_out.py --ray HOST:6379  # uses a running cluster

Needs the ray extra: pip install 'actorflow[ray]'.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from typing import Any

import actorflow as af


@af.source
async def frames(*, count: int = 40) -> AsyncIterator[int]:
    """Pretend camera: numbered frames."""
    for i in range(count):
        yield i


class Embed(af.FlowUnit):
    """The heavy node: 20 ms of waiting stands in for a model on a remote GPU."""

    inp = af.Input("in")
    out = af.Output("out")

    async def open(self, ctx: af.Context) -> None:
        ctx.log.info("model_loaded")  # runs in the Ray actor, once per replica

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await asyncio.sleep(0.02)
        await ctx.emit(self.out, packet.replace(packet.data * packet.data))


class Collect(af.FlowUnit):
    """A local sink: results arrive here in the source's order."""

    inp = af.Input("in")

    def __init__(self) -> None:
        self.items: list[int] = []

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        self.items.append(packet.data)


async def main(address: str | None) -> None:
    source = frames(count=40)
    heavy = Embed().options(placement="ray", replicas=2, window=2, resources={"num_cpus": 0.5})
    sink = Collect()(heavy(source))
    flow = af.Flow([source], [sink], ray_address=address)
    await flow.run_async()  # starts the actors; returns once their units opened
    status = await flow.wait(timeout=120)
    stats = flow.statistics()
    replicas = stats.nodes["embed"].info["replicas"]
    in_order = sink.items == [i * i for i in range(40)]
    print(f"{status.name}: {len(sink.items)} results, in order: {in_order}")
    print(f"ledger balanced: {stats.balanced}; calls per replica: {[r['calls'] for r in replicas]}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="scale a node out on Ray")
    parser.add_argument("--ray", metavar="ADDRESS", default=None, help="a Ray cluster address")
    asyncio.run(main(parser.parse_args().ray))
