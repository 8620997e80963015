"""Streams: sources added to and removed from a running flow, each a session of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import anyio
import pytest
from support.units import registry_with

import actorflow as af
from actorflow.errors import FlowStateError

pytestmark = pytest.mark.anyio


class Progress:
    """Set on every frame produced or processed: what ``until`` waits on (no sleeps)."""

    def __init__(self) -> None:
        self.event = anyio.Event()

    def tick(self) -> None:
        self.event.set()

    async def until(self, condition: Any) -> None:
        """Wait until ``condition()`` holds, re-checking at every frame (hang guard: 30 s)."""
        with anyio.fail_after(30):
            while not condition():
                self.event = anyio.Event()
                await self.event.wait()


PROGRESS = Progress()


class Frames(af.SourceUnit):
    """``count`` numbers (``None``: forever), yielding to the loop between them."""

    out = af.Output("frame", int)

    def __init__(self, *, count: int | None = 20, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at

    async def generate(self, ctx: af.Context) -> AsyncIterator[int]:
        i = 0
        while self.count is None or i < self.count:
            if i == self.fail_at:
                raise ConnectionError("camera unplugged")
            yield i
            i += 1
            PROGRESS.tick()
            await anyio.lowlevel.checkpoint()


class LiveFrames(Frames):
    """A camera: edges after it default to ``latest``, so a full graph drops frames."""

    def output_policy(self, port: str) -> str | None:
        return "latest"


class Tally(af.FlowUnit):
    """Counts packets per stream (``meta["stream"]``); optionally waits on a gate."""

    name: ClassVar[str] = ""
    inp = af.Input("frame", int)
    out = af.Output("out", int)
    seen: ClassVar[dict[str, int]] = {}
    gate: ClassVar[anyio.Event | None] = None
    arrived: ClassVar[anyio.Event | None] = None

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        stream = packet.meta.get("stream", "?")
        Tally.seen[stream] = Tally.seen.get(stream, 0) + 1
        PROGRESS.tick()
        if Tally.arrived is not None:
            Tally.arrived.set()
        if Tally.gate is not None:
            await Tally.gate.wait()
        await ctx.emit(self.out, packet.replace(packet.data * 2))


@pytest.fixture(autouse=True)
def fresh_tally() -> None:
    Tally.seen, Tally.gate, Tally.arrived = {}, None, None
    PROGRESS.event = anyio.Event()


def graph(queue_size: int = 16) -> af.Flow:
    return af.Flow(
        {
            "nodes": {
                "frames": {"type": "input"},
                "tally": {"flowunit": "tally", "queue_size": queue_size},
                "results": {"type": "output"},
            },
            "edges": ["frames -> tally", "tally -> results"],
        },
        registry=registry_with(Tally),
    )


until = PROGRESS.until


async def test_eight_streams_come_and_go_while_a_ninth_keeps_flowing() -> None:
    flow = graph()
    async with flow:
        ninth = flow.add_source(Frames(count=None), stream_id="ninth")
        added = []
        for k in range(8):
            before = Tally.seen.get("ninth", 0)
            added.append(flow.add_source(Frames(count=200), stream_id=f"s{k}"))
            await until(lambda b=before: Tally.seen.get("ninth", 0) > b + 10)
        for stream in added[:4]:
            removed = await flow.remove_source(stream.id)  # drain: what it sent finishes
            assert removed.status in ("removed", "ended")
        for stream in added[4:]:
            await stream.ended.wait()  # finite sources end by themselves
        before = Tally.seen["ninth"]
        await until(lambda: Tally.seen["ninth"] > before + 10)  # never stalled
        stats = flow.statistics()
        assert stats.streams["ninth"].status == "live"
        for stream in added[4:]:
            info = stats.streams[stream.id]
            assert (info.status, info.items, info.results, info.errors) == ("ended", 200, 200, 0)
    stats = flow.statistics()
    assert stats.balanced, stats.sessions
    for stream in [ninth, *added]:
        ledger = stats.sessions[stream.session.id]
        assert ledger.balanced, (stream.id, ledger)
        assert ledger.sent == stats.streams[stream.id].items
    assert {f"s{k}" for k in range(8)} | {"ninth"} <= set(Tally.seen)


async def test_removing_without_drain_cancels_what_is_queued_and_counts_it() -> None:
    Tally.gate = anyio.Event()
    Tally.arrived = anyio.Event()
    flow = graph(queue_size=8)
    async with flow:
        stream = flow.add_source(Frames(count=100), stream_id="cam")
        await Tally.arrived.wait()  # one frame inside the unit, the mailbox filling
        await until(lambda: flow.statistics().nodes["tally"].mailbox_used >= 8)
        await flow.remove_source("cam", drain=False)
        Tally.gate.set()
    ledger = flow.statistics().sessions[stream.session.id]
    assert ledger.cancelled > 0
    assert ledger.balanced, ledger


async def test_a_failing_source_fails_its_own_stream_only() -> None:
    flow = graph()
    async with flow:
        bad = flow.add_source(Frames(count=50, fail_at=5), stream_id="bad")
        good = flow.add_source(Frames(count=50), stream_id="good")
        await bad.stopped.wait()
        await good.ended.wait()
        stats = flow.statistics().streams
        assert stats["bad"].status == "failed"
        assert "ConnectionError: camera unplugged" in stats["bad"].error
        assert (stats["good"].status, stats["good"].results) == ("ended", 50)
        assert flow.state == "running"
    assert flow.statistics().balanced


async def test_a_live_source_drops_rather_than_blocks_and_counts_the_drops() -> None:
    Tally.gate = anyio.Event()
    flow = graph(queue_size=2)
    async with flow:
        cam = flow.add_source(LiveFrames(count=200), stream_id="cam")
        await cam.stopped.wait()  # the source never waited on the graph
        Tally.gate.set()
        await cam.ended.wait()
        info = flow.statistics().streams["cam"]
        assert info.items == 200
        assert info.dropped > 0
        assert info.results == 200 - info.dropped
    ledger = flow.statistics().sessions[cam.session.id]
    assert (ledger.sent, ledger.dropped) == (200, info.dropped)
    assert ledger.balanced, ledger


async def test_stop_ends_every_stream_and_closes_every_ledger() -> None:
    flow = graph()
    await flow.run_async()
    streams = [flow.add_source(Frames(count=None)) for _ in range(3)]
    await until(lambda: len(Tally.seen) == 3)
    await flow.stop()
    assert flow.state == "stopped"
    stats = flow.statistics()
    assert [s.id for s in streams] == ["stream-1", "stream-2", "stream-3"]
    assert all(stats.streams[s.id].status == "ended" for s in streams)
    assert stats.balanced, stats.sessions


async def test_stream_mistakes_are_named() -> None:
    no_inputs = af.Flow([Frames(count=1)], [])
    with pytest.raises(FlowStateError, match="before the flow was started"):
        graph().add_source(Frames())
    flow = graph()
    async with flow:
        flow.add_source(Frames(count=None), stream_id="a")
        with pytest.raises(FlowStateError, match="'a' is already running"):
            flow.add_source(Frames(), stream_id="a")
        with pytest.raises(FlowStateError, match="no input node 'nope'; its inputs are: 'frames'"):
            flow.add_source(Frames(), input="nope")
        with pytest.raises(KeyError, match="no stream 'b'; streams: 'a'"):
            await flow.remove_source("b")
    assert no_inputs.state == "created"


class Evens(af.FlowUnit):
    """Passes even frames on, filters odd ones (no result for them)."""

    inp = af.Input("frame", int)
    out = af.Output("out", int)

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        if packet.data % 2 == 0:
            await ctx.emit(self.out, packet)


async def test_send_times_kept_for_latency_stay_bounded_with_filters_and_drops() -> None:
    """Items that never get a result (filtered, or dropped by a live source) must not
    leave their send times behind: a long-lived stream would grow without bound."""
    flow = af.Flow(
        {
            "nodes": {
                "frames": {"type": "input"},
                "evens": {"flowunit": "evens", "queue_size": 2},
                "results": {"type": "output"},
            },
            "edges": ["frames -> evens", "evens -> results"],
        },
        registry=registry_with(Evens),
    )
    async with flow:
        files = flow.add_source(Frames(count=500), stream_id="file")
        cam = flow.add_source(LiveFrames(count=500), stream_id="cam")
        await files.ended.wait()
        await cam.ended.wait()
        stats = flow.statistics().streams
    assert stats["file"].results == 250
    assert stats["file"].latency_s > 0
    assert not files._sent_at
    assert not cam._sent_at
