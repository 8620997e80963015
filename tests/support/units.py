"""Small units and graph builders shared by the runtime tests."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio

import actorflow as af
from actorflow.unit import Registry


class Numbers(af.SourceUnit):
    """Yields ``0..count-1`` (forever when ``count`` is ``None``)."""

    out = af.Output("out")

    def __init__(self, *, count: int | None = 10) -> None:
        self.count = count

    async def generate(self, ctx: af.Context) -> AsyncIterator[int]:
        i = 0
        while self.count is None or i < self.count:
            yield i
            i += 1


class Collect(af.FlowUnit):
    """Appends every payload to ``items``; records its lifecycle in ``events``."""

    inp = af.Input("in")

    def __init__(self, *, delay: float = 0.0) -> None:
        self.items: list[Any] = []
        self.events: list[str] = []
        self.delay = delay

    async def open(self, ctx: af.Context) -> None:
        self.events.append("open")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        if self.delay:
            await anyio.sleep(self.delay)
        self.items.append(packet.data)

    async def close(self, ctx: af.Context) -> None:
        self.events.append("close")


class AddOne(af.FlowUnit):
    """``x + 1``; raises ``ZeroDivisionError`` for payloads listed in ``fail_on``."""

    inp = af.Input("in")
    out = af.Output("out")

    def __init__(self, *, fail_on: tuple[int, ...] = (), delay: float = 0.0) -> None:
        self.fail_on = set(fail_on)
        self.delay = delay
        self.opens = 0
        self.closes = 0

    async def open(self, ctx: af.Context) -> None:
        self.opens += 1

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        if self.delay:
            await anyio.sleep(self.delay)
        if packet.data in self.fail_on:
            raise ZeroDivisionError(f"boom at {packet.data}")
        await ctx.emit(self.out, packet.replace(packet.data + 1))

    async def close(self, ctx: af.Context) -> None:
        self.closes += 1


class FatalAddOne(AddOne):
    """``AddOne`` whose ``ZeroDivisionError`` means the unit is broken: it restarts."""

    fatal_errors = (ZeroDivisionError,)


class Split(af.FlowUnit):
    """Expand: one child per item of a list payload."""

    inp = af.Input("in")
    out = af.Output("out", expand=True)

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        for item in packet.data:
            await ctx.emit(self.out, packet.replace(item))


class Pair(af.FlowUnit):
    """Join: receives ``{"left": ..., "right": ...}`` for the same item."""

    left = af.Input("left")
    right = af.Input("right")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await ctx.emit(self.out, packet.replace((packet.data["left"], packet.data["right"])))


class Gather(af.FlowUnit):
    """Collapse the children of each parent, joined with the parent itself."""

    whole = af.Input("whole")
    parts = af.Input("parts", collapse=True)
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await ctx.emit(self.out, packet.replace((packet.data["whole"], packet.data["parts"])))


def registry_with(*units: type[af.FlowUnit]) -> Registry:
    """A private registry holding ``units`` under their class names, snake-cased."""
    registry = Registry()
    for cls in units:
        registry.register(cls, cls.__name__.lower())
    return registry


def session_graph(*middle: str, **attrs: Any) -> dict[str, Any]:
    """``input -> m1 -> m2 ... -> output`` in the dict form; ``attrs`` go to every middle node."""
    nodes: dict[str, Any] = {"input": {"type": "input"}}
    chain = ["input"]
    for i, unit in enumerate(middle):
        nodes[f"n{i}"] = {"unit": unit, **attrs}
        chain.append(f"n{i}")
    nodes["output"] = {"type": "output"}
    chain.append("output")
    edges = [f"{a} -> {b}" for a, b in itertools.pairwise(chain)]
    return {"name": "test", "nodes": nodes, "edges": edges}


async def run_session(flow: af.Flow, items: list[Any], port: str = "input") -> list[af.Result]:
    """Send ``items`` through a new session of a running flow; return every result."""
    session = flow.session()
    results: list[af.Result] = []

    async def reader() -> None:
        async for result in session:
            results.append(result)

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        for item in items:
            await session.send(port, item)
        await session.close()
    return results
