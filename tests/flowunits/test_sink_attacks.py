"""Attacks on the sinks' promise: ``delivered + dead_lettered == accepted``, always.

Peers that vanish mid-request, servers that never answer, ``close()`` cancelled at
every point where the delivery path waits, and 1,000 items through a small in-flight
bound. After each ``close()`` no sink task is left and no socket is open
(``ResourceWarning`` is an error in this suite).
"""

from __future__ import annotations

import asyncio
import gc
import random
from typing import Any

import anyio
import anyio.lowlevel
import numpy as np
import pytest
from support.servers import Scripted, Stalling, serve
from support.sinks import Items, WatchedHttpSink

import actorflow as af
from actorflow.flowunits.sinks._delivery import Item, idempotency_key
from actorflow.flowunits.sinks.http import HttpDelivery
from actorflow.flowunits.sinks.websocket import WebSocketDelivery

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


def item(i: int) -> Item:
    return Item({"i": i}, idempotency_key("f", "n", 1, i, ()), 1, i)


def sink_tasks() -> list[asyncio.Task[Any]]:
    """Tasks a sink started that have not finished."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("actorflow-")]


def settled(d: HttpDelivery | WebSocketDelivery) -> bool:
    return d.delivered + d.dead_lettered == d.submitted and d.ledger.pending == 0


async def cancel_close_after(d: HttpDelivery | WebSocketDelivery, checkpoints: int) -> None:
    """Run ``d.close()`` in a cancel scope cancelled after ``checkpoints`` loop passes
    (the way the runtime's ``close_timeout`` cuts a close short)."""
    scope = anyio.CancelScope()

    async def closer() -> None:
        with scope:
            await d.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(closer)
        for _ in range(checkpoints):
            await anyio.lowlevel.checkpoint()
        scope.cancel()


class Parked:
    """An injected ``sleep`` that signals once ``n`` calls are sleeping."""

    def __init__(self, n: int) -> None:
        self.n, self.count, self.all_in = n, 0, asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.count += 1
        if self.count >= self.n:
            self.all_in.set()
        await asyncio.sleep(delay)


async def test_a_peer_that_vanishes_mid_request_is_retried_then_dead_lettered() -> None:
    server = Scripted(lambda key, n: "vanish" if n == 0 or key == item(3).key else "ok")
    async with await serve(server.handle) as ts:
        async with HttpDelivery(str(ts.make_url("/hook")), max_attempts=3, backoff_base=0.001) as d:
            for i in range(6):
                await d.submit(item(i))
    assert (d.submitted, d.delivered, d.dead_lettered) == (6, 5, 1)
    [record] = d.dead_letters.records
    assert (record["key"], record["reason"], record["attempts"]) == (item(3).key, "sink_failed", 3)
    assert "Disconnected" in record["error"]
    assert d.ledger.retried == 5 + 2


async def test_a_server_that_never_answers_times_out_then_dead_letters() -> None:
    server = Scripted(lambda key, n: "hang" if n == 0 or key == item(0).key else "ok")
    async with await serve(server.handle) as ts:
        async with HttpDelivery(
            str(ts.make_url("/hook")), timeout=0.2, max_attempts=2, backoff_base=0.001
        ) as d:
            for i in range(3):
                await d.submit(item(i))
    assert (d.submitted, d.delivered, d.dead_lettered) == (3, 2, 1)
    [record] = d.dead_letters.records
    assert record["reason"] == "sink_failed"
    assert "Timeout" in record["error"]


@pytest.mark.parametrize(
    ("action", "stalled"),
    [
        pytest.param("hang", "awaiting the response headers", id="headers"),
        pytest.param("stall_body", "reading the response body", id="body"),
        pytest.param("503 20", "sleeping out Retry-After", id="backoff"),
    ],
)
async def test_close_cancelled_while_every_item_waits_dead_letters_them_all(
    action: str, stalled: str
) -> None:
    """Each await on the delivery path, with ``close()`` cut short right there."""
    server = Scripted(lambda key, n: action)
    async with await serve(server.handle) as ts:
        parked = Parked(4)
        d = HttpDelivery(str(ts.make_url("/hook")), max_in_flight=4, close_timeout=60, sleep=parked)
        await d.open()
        for i in range(4):
            await d.submit(item(i))
        await server.wait_for(lambda: len(server.attempts) == 4)
        if action.startswith("503"):
            await parked.all_in.wait()
        await cancel_close_after(d, 3)
        assert not sink_tasks(), stalled
    assert settled(d)
    assert (d.delivered, d.dead_lettered) == (0, 4)
    assert {r["reason"] for r in d.dead_letters.records} == {"cancelled"}, stalled


SWEEP_ACTIONS = ["ok", "ok", "503 0", "hang", "stall_body", "cut", "vanish", "400"]


@pytest.mark.parametrize("checkpoints", range(0, 48, 3))
async def test_close_cancelled_after_n_loop_passes_always_settles(checkpoints: int) -> None:
    """Cancel ``close()`` after 0, 3, 6, ... loop passes, with requests in every state:
    connecting, sending, awaiting headers, reading a body, backing off."""
    rng = random.Random(checkpoints)
    server = Scripted(lambda key, n: rng.choice(SWEEP_ACTIONS))
    async with await serve(server.handle) as ts:
        d = HttpDelivery(
            str(ts.make_url("/hook")),
            max_in_flight=3,
            backoff_base=0.001,
            timeout=5,
            close_timeout=60,
        )
        await d.open()
        for i in range(3):  # leaves the loop running requests while close() starts
            await d.submit(item(i))
        await cancel_close_after(d, checkpoints)
        assert not sink_tasks()
    assert settled(d)
    assert d.submitted == 3
    dead = {r["key"] for r in d.dead_letters.records}
    assert len(dead) == d.dead_lettered  # each item dead-lettered at most once


async def test_a_payload_that_cannot_be_encoded_is_dead_lettered_not_lost() -> None:
    """Seven image channels cannot become a PNG part: the item is recorded, the rest
    still go out, and no task dies with an exception nobody retrieves."""
    server = Scripted(lambda key, n: "200")
    async with await serve(server.handle) as ts:
        async with HttpDelivery(str(ts.make_url("/hook")), payload="multipart") as d:
            await d.submit(Item({"image": np.zeros((2, 2, 7), np.uint8)}, "bad", 1, 0))
            await d.submit(Item({"label": "fine"}, "good", 1, 1))
    assert (d.submitted, d.delivered, d.dead_lettered) == (2, 1, 1)
    [record] = d.dead_letters.records
    assert (record["key"], record["reason"]) == ("bad", "sink_error")
    assert "channels" in record["error"]


async def test_submit_cancelled_while_waiting_for_a_slot_is_not_accepted() -> None:
    server = Scripted(lambda key, n: "hang")
    async with await serve(server.handle) as ts:
        async with HttpDelivery(str(ts.make_url("/hook")), max_in_flight=2, close_timeout=0) as d:
            for i in range(2):
                await d.submit(item(i))
            with anyio.CancelScope() as scope:
                scope.cancel()
                await d.submit(item(2))  # no slot: cancelled before it was accepted
            assert d.submitted == 2
    assert settled(d)
    assert {r["reason"] for r in d.dead_letters.records} == {"shutdown"}


async def test_thousand_items_through_four_slots_add_up_exactly() -> None:
    """1,000 items, ``max_in_flight=4``, a seeded mix of faults, through a real flow."""
    rng = random.Random(5)
    faults = ["ok", "ok", "ok", "500", "503 0", "429 0", "400", "cut", "vanish"]
    server = Scripted(lambda key, n: rng.choice(faults))
    async with await serve(server.handle) as ts:
        src = Items(count=1000)
        sink = WatchedHttpSink(
            expect=1000,
            url=str(ts.make_url("/hook")),
            max_in_flight=4,
            max_attempts=3,
            backoff_base=0.001,
        )
        flow = af.Flow([src], [sink(src)])
        await flow.run_async()
        await sink.all_accepted.wait()
        await flow.stop()
    assert sink.accepted == 1000
    assert sink.delivered + sink.dead_lettered == 1000
    assert sink.delivered == len(server.accepted)
    assert {r["key"] for r in sink.dead_letters.records}.isdisjoint(server.accepted)
    assert server.peak <= 4
    assert flow.statistics().nodes["http_sink"].processed == 1000


async def test_thousand_items_stopped_midway_add_up_exactly() -> None:
    """``stop()`` while items keep coming and 4 are in flight: what the sink took is
    settled, what it never took stays with the runtime's ledger."""
    server = Scripted(lambda key, n: "hang" if len(server.attempts) > 300 else "ok")
    async with await serve(server.handle) as ts:
        src = Items(count=1000)
        sink = WatchedHttpSink(
            expect=300, url=str(ts.make_url("/hook")), max_in_flight=4, close_timeout=0.2
        )
        flow = af.Flow([src], [sink(src)], stop_grace=0.1, close_timeout=0.5)
        await flow.run_async()
        await sink.all_accepted.wait()
        await server.wait_for(lambda: server.active == 4)
        await flow.stop()
    stats = flow.statistics()
    assert sink.delivered + sink.dead_lettered == sink.accepted >= 300
    assert stats.nodes["http_sink"].processed == sink.accepted
    assert stats.balanced
    assert {r["reason"] for r in sink.dead_letters.records} == {"shutdown"}


async def test_websocket_connect_cut_by_close_timeout_leaks_nothing() -> None:
    async with Stalling() as peer:
        d = WebSocketDelivery(f"ws://127.0.0.1:{peer.port}/ws", close_timeout=0)
        await d.open()
        await peer.connected.wait()  # the handshake is now pending
        await d.submit(item(0))
        await d.close()
        assert not sink_tasks()
    gc.collect()
    assert settled(d)
    assert [r["reason"] for r in d.dead_letters.records] == ["shutdown"]


@pytest.mark.parametrize("checkpoints", range(0, 30, 3))
async def test_websocket_close_cancelled_mid_handshake_leaks_nothing(checkpoints: int) -> None:
    async with Stalling() as peer:
        d = WebSocketDelivery(f"ws://127.0.0.1:{peer.port}/ws", close_timeout=60)
        await d.open()
        await d.submit(item(0))
        await cancel_close_after(d, checkpoints)
        assert not sink_tasks()
    gc.collect()
    assert settled(d)
    assert [r["reason"] for r in d.dead_letters.records] == ["cancelled"]
