"""Network sinks at stop and cancellation, inside real flows, against real servers.

The promise under attack: every item a sink accepted ends delivered or dead-lettered
with a reason, exactly once (``delivered + dead_lettered == accepted``); no sink task
outlives its flow; no socket is left open (``ResourceWarning`` is an error here).
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.servers import Scripted, Stalling, serve
from support.sinks import Items, WatchedWebSocketSink

import actorflow as af
from actorflow.flowunits.sinks.http import HttpSink

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_http_sink_dead_letters_items_waiting_out_a_long_retry_after(
    tmp_path: Path,
) -> None:
    """503 + ``Retry-After: 3600``, 8 items accepted, then ``stop()``: 8 dead letters."""
    server = Scripted(lambda key, n: "503 3600")
    dead = tmp_path / "dead.jsonl"
    async with await serve(server.handle) as ts:
        src = Items(count=8)
        sink = HttpSink(url=str(ts.make_url("/hook")), dead_letter=str(dead))
        flow = af.Flow([src], [sink(src)], stop_grace=0.2, close_timeout=0.5)
        await flow.run_async()
        await server.wait_for(lambda: len(server.attempts) == 8)  # all 8 in flight
        await flow.stop()
    assert flow.state == "stopped"
    assert (sink.accepted, sink.delivered, sink.dead_lettered) == (8, 0, 8)
    lines = records(dead)
    assert sorted(r["payload"]["i"] for r in lines) == list(range(8))
    assert {r["reason"] for r in lines} == {"shutdown"}
    assert {r["status"] for r in lines} == {503}
    assert len({r["key"] for r in lines}) == 8
    assert set(server.attempts.values()) == {1}  # nobody waited out the hour


async def test_http_sink_dead_letters_when_the_runtime_cuts_its_close_short(
    tmp_path: Path,
) -> None:
    """A server that never answers; the flow's close bound (0.3 s) is far below the
    sink's own (10 s): the runtime cancels ``close()``, and the items are still
    dead-lettered, as ``cancelled``."""
    server = Scripted(lambda key, n: "hang")
    dead = tmp_path / "dead.jsonl"
    async with await serve(server.handle) as ts:
        src = Items(count=8)
        sink = HttpSink(url=str(ts.make_url("/hook")), dead_letter=str(dead), close_timeout=10)
        flow = af.Flow([src], [sink(src)], stop_grace=0.1, close_timeout=0.3)
        await flow.run_async()
        await server.wait_for(lambda: server.active == 8)
        await flow.stop()
    assert (sink.accepted, sink.delivered, sink.dead_lettered) == (8, 0, 8)
    assert {r["reason"] for r in records(dead)} == {"cancelled"}


async def test_cancelling_the_waiter_dead_letters_what_the_http_sink_holds() -> None:
    server = Scripted(lambda key, n: "hang")
    async with await serve(server.handle) as ts:
        src = Items(count=5)
        sink = HttpSink(url=str(ts.make_url("/hook")))
        flow = af.Flow([src], [sink(src)], stop_grace=0.1, close_timeout=0.3)
        await flow.run_async()
        await server.wait_for(lambda: server.active == 5)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await flow.wait()
    assert flow.state == "stopped"
    assert (sink.accepted, sink.delivered, sink.dead_lettered) == (5, 0, 5)


async def test_websocket_sink_stopped_mid_handshake_leaves_no_task_and_no_socket() -> None:
    """The peer accepts TCP and never answers the upgrade; the flow stops meanwhile."""
    async with Stalling() as peer:
        src = Items(count=3)
        sink = WatchedWebSocketSink(
            expect=3, url=f"ws://127.0.0.1:{peer.port}/ws", close_timeout=10
        )
        flow = af.Flow([src], [sink(src)], stop_grace=0.1, close_timeout=0.3)
        await flow.run_async()
        await peer.connected.wait()
        await sink.all_accepted.wait()  # buffered while the handshake hangs
        await flow.stop()
    gc.collect()  # an unclosed transport would warn here (and fail the test)
    assert flow.state == "stopped"
    assert (sink.accepted, sink.delivered, sink.dead_lettered) == (3, 0, 3)
    assert {r["reason"] for r in sink.dead_letters.records} == {"cancelled"}
