"""WebSocketDelivery / WebSocketSink against real aiohttp WebSocket servers on 127.0.0.1.

Fault tests count both sides: distinct message ids the server received plus dead-letter
records equal the items submitted, exactly.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from actorflow.errors import UnitConfigError
from actorflow.flowunits.sinks._delivery import Item, idempotency_key
from actorflow.flowunits.sinks.websocket import (
    WebSocketDelivery,
    WebSocketSink,
    reconnect_delay,
)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


class WsServer:
    """A WebSocket server that acks, and can drop, close with a code, or play dead."""

    def __init__(
        self,
        *,
        drop_every: int = 0,
        close_code: int = 1012,
        autoping: bool = True,
        ack: bool = True,
    ) -> None:
        self.drop_every, self.close_code, self.autoping, self.ack = (
            drop_every,
            close_code,
            autoping,
            ack,
        )
        self.received: list[dict[str, Any]] = []
        self.ids: set[str] = set()
        self.connects = 0
        self.connect_times: list[float] = []
        self.sockets: set[web.WebSocketResponse] = set()
        self.changed = asyncio.Condition()
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(30):  # a guard against hangs, not a timing check
            async with self.changed:
                await self.changed.wait_for(predicate)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=self.autoping)
        await ws.prepare(request)
        self.connects += 1
        self.connect_times.append(asyncio.get_running_loop().time())
        self.sockets.add(ws)
        await self._notify()
        count = 0
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                count += 1
                data = json.loads(msg.data)
                if self.drop_every and count % self.drop_every == 0:
                    await ws.close(code=self.close_code)  # this message is never acked
                    break
                self.received.append(data)
                if isinstance(data, dict) and "id" in data:
                    self.ids.add(data["id"])
                    if self.ack:
                        await ws.send_json({"ack": data["id"]})
                await self._notify()
        finally:
            self.sockets.discard(ws)
        return ws

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1012)

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/ws", self.handle)
        app.on_shutdown.append(self._close_sockets)
        self.runner = web.AppRunner(app, shutdown_timeout=1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        """Restart-style shutdown, in aiohttp's order: stop listening, *then* close
        every WebSocket with 1012. Closing them while still listening (as this
        harness once did) let a sink reconnect to the dying server; under load that
        connection could be accepted as the server shut down and its socket was never
        closed (``ResourceWarning`` from ``_accept_connection``, server side)."""
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@pytest.fixture
async def server() -> AsyncIterator[WsServer]:
    srv = WsServer()
    await srv.start()
    yield srv
    await srv.stop()


def item(i: int, sink: int = 0) -> Item:
    return Item({"i": i, "sink": sink}, idempotency_key("f", f"s{sink}", 1, i, ()), 1, i)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_reconnect_delays_follow_the_documented_policy() -> None:
    rnd = random.Random(3).random
    firsts = [reconnect_delay(0, 1.0, 30.0, rnd) for _ in range(200)]
    assert all(1.0 <= d <= 3.0 for d in firsts)
    assert max(firsts) - min(firsts) > 1.5  # spread, not a synchronised wave
    for failures in range(1, 12):
        d = reconnect_delay(failures, 1.0, 30.0, rnd)
        assert 1.0 <= d <= min(30.0, 2.0 ** (failures + 1))


async def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(UnitConfigError, match="ws://"):
        WebSocketSink(url="http://example.org/ws")


async def test_delivers_with_acks(server: WsServer) -> None:
    async with WebSocketDelivery(server.url, ack=True, close_timeout=5) as d:
        for i in range(100):
            await d.submit(item(i))
    assert (d.delivered, d.dead_lettered) == (100, 0)
    assert [m["data"]["i"] for m in server.received] == list(range(100))


async def test_plain_messages_carry_only_the_data(server: WsServer) -> None:
    async with WebSocketDelivery(server.url, close_timeout=5) as d:
        for i in range(3):
            await d.submit(item(i))
        await server.wait_for(lambda: len(server.received) == 3)
    assert server.received == [{"i": i, "sink": 0} for i in range(3)]
    assert d.delivered == 3


@pytest.mark.parametrize("code", [1012, 1013, 1011])
async def test_dropped_connections_lose_nothing(code: int) -> None:
    """The server closes after every 7th message without acking it: all still arrive."""
    srv = WsServer(drop_every=7, close_code=code)
    await srv.start()
    try:
        async with WebSocketDelivery(
            srv.url, ack=True, backoff_base=0.01, backoff_cap=0.05, close_timeout=10
        ) as d:
            for i in range(60):
                await d.submit(item(i))
            await srv.wait_for(lambda: len(srv.ids) == 60)
    finally:
        await srv.stop()
    assert srv.ids == {item(i).key for i in range(60)}
    assert (d.delivered, d.dead_lettered) == (60, 0)
    assert d.ledger.retried >= d.close_codes.count(code)  # each drop left one unacked
    assert code in d.close_codes
    assert all(delay >= 0.01 for delay in d.reconnect_delays)


async def test_heartbeat_detects_a_silent_peer() -> None:
    srv = WsServer(autoping=False)  # never answers pings
    await srv.start()
    try:
        async with WebSocketDelivery(
            srv.url, heartbeat=0.1, backoff_base=0.01, close_timeout=0.5
        ) as d:
            await srv.wait_for(lambda: srv.connects >= 2)
    finally:
        await srv.stop()
    assert d.reconnect_delays


async def test_buffer_overflow_while_down_is_dead_lettered() -> None:
    port = free_port()
    async with WebSocketDelivery(
        f"ws://127.0.0.1:{port}/ws",
        ack=True,
        buffer_size=5,
        backoff_base=0.01,
        backoff_cap=0.02,
        close_timeout=0.2,
    ) as d:
        for i in range(12):
            await d.submit(item(i))
    assert (d.submitted, d.delivered, d.dead_lettered) == (12, 0, 12)
    reasons = [r["reason"] for r in d.dead_letters.records]
    assert reasons.count("buffer_full") == 7
    assert reasons.count("shutdown") == 5


async def test_items_buffered_during_an_outage_arrive_after_restart() -> None:
    srv = WsServer()
    await srv.start()
    port = srv.port
    async with WebSocketDelivery(
        srv.url, ack=True, buffer_size=5, backoff_base=0.01, backoff_cap=0.05, close_timeout=10
    ) as d:
        await d.submit(item(0))
        await srv.wait_for(lambda: len(srv.ids) == 1)
        await srv.stop()
        for i in range(1, 9):
            await d.submit(item(i))  # 5 buffered, 3 dead-lettered
        restarted = WsServer()
        await restarted.start(port)
        try:
            await restarted.wait_for(lambda: len(restarted.ids) == 5)
        finally:
            await d.close()
            await restarted.stop()
    assert d.delivered + d.dead_lettered == 9
    assert len(srv.ids | restarted.ids) == d.delivered == 6


async def test_fifty_sinks_reconnect_spread_out_after_a_restart() -> None:
    """A server restart under 50 sinks: no reconnect before 1x base, first waits spread."""
    base = 0.05
    srv = WsServer()
    await srv.start()
    port = srv.port
    sinks = [
        WebSocketDelivery(
            srv.url,
            ack=True,
            backoff_base=base,
            backoff_cap=0.4,
            close_timeout=10,
            random=random.Random(i).random,
        )
        for i in range(50)
    ]
    for sink in sinks:
        await sink.open()
    restarted = WsServer()
    try:
        await srv.wait_for(lambda: srv.connects == 50)
        await srv.stop()
        for n, sink in enumerate(sinks):
            await sink.submit(item(0, n))
        await restarted.start(port)
        await restarted.wait_for(lambda: len(restarted.ids) == 50)
    finally:
        for sink in sinks:
            await sink.close()
        await restarted.stop()
    firsts = [s.reconnect_delays[0] for s in sinks]
    assert all(base <= d <= 3 * base for d in firsts)
    assert max(firsts) - min(firsts) >= base
    assert all(d >= base for s in sinks for d in s.reconnect_delays)
    assert sum(s.delivered for s in sinks) == 50
    assert restarted.connects == 50  # one successful reconnect per sink, no storm


async def test_websocket_sink_unit_in_a_flow(server: WsServer) -> None:
    from actorflow.testing import UnitRunner

    sink = WebSocketSink(url=server.url, ack=True, close_timeout=5)
    await UnitRunner(sink).run({"in": [{"frame": i} for i in range(25)]})
    assert (sink.delivered, sink.dead_lettered) == (25, 0)
    assert sorted(m["data"]["frame"] for m in server.received) == list(range(25))


async def test_allow_list_refuses_unlisted_websocket_targets(server: WsServer) -> None:
    async with WebSocketDelivery(server.url, allow=["10.0.0.0/8"], close_timeout=0.2) as d:
        await d.submit(item(0))
    assert server.connects == 0
    assert (d.delivered, d.dead_lettered) == (0, 1)
    assert [r["reason"] for r in d.dead_letters.records] == ["ssrf_blocked"]
