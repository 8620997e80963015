"""A source for sink tests, and network sink units that signal once they took N items."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio

import actorflow as af
from actorflow.flowunits.sinks.http import HttpSink
from actorflow.flowunits.sinks.websocket import WebSocketSink


class Items(af.SourceUnit):
    """Yields ``count`` small dicts, then stays open until the flow stops."""

    out = af.Output("out")

    def __init__(self, *, count: int) -> None:
        self.count = count

    async def generate(self, ctx: af.Context) -> AsyncIterator[dict[str, int]]:
        for i in range(self.count):
            yield {"i": i}
        await anyio.sleep_forever()


class _Watch:
    """Sets ``all_accepted`` once the sink took ``expect`` items (an event, not a poll)."""

    accepted: int
    expect: int
    all_accepted: asyncio.Event

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await super().process(ctx, packet)  # type: ignore[misc]
        if self.accepted >= self.expect:
            self.all_accepted.set()


class WatchedHttpSink(_Watch, HttpSink):
    def __init__(self, *, expect: int, **options: Any) -> None:
        super().__init__(**options)
        self.expect, self.all_accepted = expect, asyncio.Event()


class WatchedWebSocketSink(_Watch, WebSocketSink):
    def __init__(self, *, expect: int, **options: Any) -> None:
        super().__init__(**options)
        self.expect, self.all_accepted = expect, asyncio.Event()
