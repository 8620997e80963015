"""A first flow: a source, two async flowunits, a sink; run it, then read its ledger.

python examples/first_flow.py
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import actorflow as af


@af.source
async def frames(*, count: int = 100) -> AsyncIterator[dict[str, int]]:
    """Pretend camera: numbered frames."""
    for i in range(count):
        yield {"frame": i, "brightness": (i * 37) % 255}


@af.flowunit
async def normalize(frame: dict[str, int]) -> dict[str, Any]:
    """Scale brightness to 0..1 (returns a new dict: packets are never modified)."""
    return {**frame, "brightness": frame["brightness"] / 255}


@af.flowunit
async def keep_bright(frame: dict[str, Any], *, threshold: float = 0.5) -> dict[str, Any] | None:
    """Returning None drops the packet: a filter."""
    return frame if frame["brightness"] >= threshold else None


class Printer(af.FlowUnit):
    """A sink: prints what reaches it and counts it."""

    inp = af.Input("in")

    def __init__(self) -> None:
        self.seen = 0

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        self.seen += 1
        if self.seen <= 3:
            print(f"frame {packet.data['frame']}: brightness {packet.data['brightness']:.2f}")


async def main() -> af.FlowStatistics:
    source = frames(count=100)
    bright = keep_bright(threshold=0.5)(normalize()(source))
    printer = Printer()(bright)
    flow = af.Flow([source], [printer])
    await flow.run_async()  # returns once every node has opened
    status = await flow.wait(timeout=10)  # Status.STOP when the source ends
    stats = flow.statistics()
    print(f"{status.name}: {printer.seen} bright frames of {stats.nodes['frames'].processed}")
    for node in stats.nodes.values():
        print(f"  {node.node:12} in={node.received:3} out={node.emitted:3} failed={node.failed}")
    return stats


if __name__ == "__main__":
    asyncio.run(main())
