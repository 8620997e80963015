"""Units and a gate for the Ray placement tests (importable by Ray workers).

The test cluster's workers get ``tests/`` on their ``PYTHONPATH``, so these classes
travel by reference, as units from an installed package would.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import ray

import actorflow as af


@ray.remote
class Gate:
    """An async Ray actor that remote units wait on; tests open it (no sleeps)."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._arrived = 0
        self._changed = asyncio.Event()
        self._waiters: list[Any] = []

    async def wait(self, who: Any) -> None:
        """Called by a remote unit with its own actor handle: block until opened."""
        self._arrived += 1
        self._waiters.append(who)
        self._changed.set()
        await self._open.wait()

    async def arrived(self, count: int) -> list[Any]:
        """Wait until ``count`` calls are blocked here; return the callers' handles."""
        while self._arrived < count:
            self._changed.clear()
            await self._changed.wait()
        return list(self._waiters)

    def open(self) -> None:
        """Let every blocked call (and every later one) return."""
        self._open.set()


class GatedAddOne(af.FlowUnit):
    """``x + 1``, waiting at the named ``Gate`` first (``close_blocks``: at close too)."""

    inp = af.Input("in")
    out = af.Output("out")

    def __init__(self, *, gate: str, close_blocks: bool = False) -> None:
        self.gate_name = gate
        self.close_blocks = close_blocks
        self.gate: Any = None

    async def open(self, ctx: af.Context) -> None:
        self.gate = ray.get_actor(self.gate_name)

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await self.gate.wait.remote(ray.get_runtime_context().current_actor)
        await ctx.emit(self.out, packet.replace(packet.data + 1))

    async def close(self, ctx: af.Context) -> None:
        if self.close_blocks:
            await asyncio.Event().wait()  # a close that never returns: ray.kill ends it


class Double(af.FlowUnit):
    """``2 * x``; fails payloads divisible by 7 with ``ValueError``; reports its pid."""

    inp = af.Input("in")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        if packet.data % 7 == 0:
            raise ValueError(f"{packet.data} is divisible by 7")
        await ctx.emit(self.out, packet.replace(2 * packet.data))


class Where(af.FlowUnit):
    """Emits ``(payload, pid)``: which process ran it (the driver or a Ray worker)."""

    inp = af.Input("in")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await ctx.emit(self.out, packet.replace((packet.data, os.getpid())))


class Frames(af.SourceUnit):
    """``count`` frames of ``shape`` (uint8), counting how many it produced in ``made``."""

    out = af.Output("out")

    def __init__(self, *, count: int, shape: tuple[int, ...], made: list[int]) -> None:
        self.count, self.shape, self.made = count, shape, made

    async def generate(self, ctx: af.Context) -> AsyncIterator[np.ndarray]:
        for i in range(self.count):
            self.made[0] += 1
            yield np.full(self.shape, i % 251, dtype=np.uint8)


class Mean(af.FlowUnit):
    """The mean of a frame (runs remotely: the frame goes to Ray, a float comes back)."""

    inp = af.Input("in")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await ctx.emit(self.out, packet.replace(float(packet.data.mean())))


class Watch(af.FlowUnit):
    """A local sink recording the driver's RSS and how far the source ran ahead."""

    inp = af.Input("in")

    def __init__(
        self, *, made: list[int], seen: list[float], rss: list[dict[str, int]], ahead: list[int]
    ) -> None:
        self.made, self.seen, self.rss, self.ahead = made, seen, rss, ahead

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        self.seen.append(packet.data)
        self.ahead.append(self.made[0] - len(self.seen))
        self.rss.append(rss_parts())


def rss_parts() -> dict[str, int]:
    """``RssAnon``, ``RssFile`` and ``RssShmem`` of this process, in bytes.

    ``RssShmem`` counts the pages of Ray's shared object store this process touched
    (frames it put there): capped by the store's size, and not the driver's own.
    """
    parts = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Rss"):
                name, value = line.split(":")
                parts[name] = int(value.split()[0]) * 1024
    return parts
