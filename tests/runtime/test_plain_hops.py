"""The hop fast path (``runtime/_plain.py``) tried as an attacker would.

A function unit reuses its input packet when nothing else holds it: every way for
something else to hold it (a unit keeping it, fan-out, a session collecting it) must
leave what it holds untouched. Bursts are taken per lane: a lane emptied under the
loop's feet (eviction by a drop policy while the unit awaits, a stop) must lose
nothing, and several producers into one port must all be served.
"""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import pytest
from support.units import Collect, Numbers, registry_with, run_session, session_graph

import actorflow as af
from actorflow.runtime._plain import REUSE
from actorflow.runtime._process import CHECKPOINT_EVERY
from actorflow.unit import Packet, Registry

pytestmark = pytest.mark.anyio

HANG_GUARD_S = 45.0
"""Only a guard against hanging forever; never a bound."""


@af.flowunit(register=False)
async def plus_one(x: int) -> int:
    return x + 1


@af.flowunit(register=False)
async def times_ten(x: int) -> int:
    return x * 10


@af.flowunit(register=False)
async def negate(x: int) -> int:
    return -x


class Keep(af.FlowUnit):
    """Passes every packet on unchanged and keeps a reference to each."""

    inp = af.Input("in")
    out = af.Output("out")

    def __init__(self) -> None:
        self.kept: list[af.Packet[Any]] = []

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        self.kept.append(packet)
        await ctx.emit(self.out, packet)


class KeepSink(af.FlowUnit):
    """Keeps every packet it receives."""

    inp = af.Input("in")

    def __init__(self) -> None:
        self.kept: list[af.Packet[Any]] = []

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        self.kept.append(packet)


async def run(flow: af.Flow) -> None:
    await flow.run_async()
    with anyio.fail_after(HANG_GUARD_S):
        assert await flow.wait() is af.Status.STOP
    assert flow.statistics().balanced


async def test_a_packet_a_unit_kept_is_never_rewritten_downstream() -> None:
    src = Numbers(count=500)
    keep = Keep()(src)
    sink = Collect()(times_ten()(plus_one()(keep)))
    flow = af.Flow([src], [sink])
    await run(flow)
    assert [p.data for p in keep.kept] == list(range(500))
    assert sink.items == [(i + 1) * 10 for i in range(500)]


async def test_fan_out_copies_are_never_rewritten_by_one_consumer() -> None:
    src = Numbers(count=500)
    first = plus_one()(src)
    left, right = times_ten()(first), negate()(first)  # the same packets, three consumers
    left_sink, right_sink, raw = Collect()(left), Collect()(right), KeepSink()(first)
    flow = af.Flow([src], [left_sink, right_sink, raw])
    await run(flow)
    assert left_sink.items == [(i + 1) * 10 for i in range(500)]
    assert right_sink.items == [-(i + 1) for i in range(500)]
    assert [p.data for p in raw.kept] == [i + 1 for i in range(500)]


async def test_results_a_session_holds_are_never_rewritten() -> None:
    graph = {
        "name": "held",
        "nodes": {
            "input": {"type": "input"},
            "a": {"unit": "plus_one"},
            "b": {"unit": "times_ten"},
            "mid": {"type": "output"},
            "output": {"type": "output"},
        },
        "edges": ["input -> a", "a -> mid", "a -> b", "b -> output"],
    }
    registry = Registry()
    registry.register(plus_one, "plus_one")
    registry.register(times_ten, "times_ten")
    async with af.Flow(graph, registry=registry) as flow:
        with anyio.fail_after(HANG_GUARD_S):
            results = await run_session(flow, list(range(200)))
    by_port: dict[str, list[Any]] = {}
    for result in results:
        by_port.setdefault(result.port, []).append(result.data)
    assert by_port["mid"] == [i + 1 for i in range(200)]
    assert by_port["output"] == [(i + 1) * 10 for i in range(200)]


async def test_function_chains_reuse_their_packets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reuse is real: three function hops do not make three packets per item."""
    made = 0
    init = Packet.__init__

    def counting_init(self: Packet[Any], *args: Any, **kwargs: Any) -> None:
        nonlocal made
        made += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(Packet, "__init__", counting_init)
    count = 2_000
    src = Numbers(count=count)
    sink = Collect()(negate()(times_ten()(plus_one()(src))))
    await run(af.Flow([src], [sink]))
    assert sink.items == [-(i + 1) * 10 for i in range(count)]
    if REUSE:  # one packet per item from the source, a few more where the source held one
        assert made < count * 3 // 2
    else:  # interpreters whose reference counts cannot be trusted: a packet per hop
        assert made == count * 4


async def test_a_lane_evicted_while_the_unit_awaits_loses_nothing() -> None:
    """A drop policy evicts from the lane while the unit awaits in the middle of a burst."""
    entered, release = anyio.Event(), anyio.Event()

    @af.flowunit(register=False)
    async def gated(x: int) -> int:
        if not entered.is_set():  # the first packet that gets through waits
            entered.set()
            await release.wait()
        return x

    src = Numbers(count=3 * CHECKPOINT_EVERY)
    node = gated().options(id="gated", queue_size=8, policy="drop_oldest")(src)
    sink = Collect()(node)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    with anyio.fail_after(HANG_GUARD_S):
        await entered.wait()
        while flow.statistics().nodes["gated"].dropped < CHECKPOINT_EVERY:
            await anyio.lowlevel.checkpoint()  # the source evicts while the first waits
        release.set()
        assert await flow.wait() is af.Status.STOP
    stats = flow.statistics()
    assert stats.balanced
    dropped = stats.nodes["gated"].dropped
    assert dropped >= CHECKPOINT_EVERY
    assert len(sink.items) + dropped == 3 * CHECKPOINT_EVERY
    assert sink.items == sorted(sink.items)


async def test_a_stop_while_a_unit_awaits_mid_burst_counts_every_packet() -> None:
    entered = anyio.Event()

    @af.flowunit(register=False)
    async def stuck(x: int) -> int:
        if x == 3:
            entered.set()
            await anyio.sleep_forever()
        return x

    src = Numbers(count=None)
    node = stuck().options(id="stuck", queue_size=32)(src)
    sink = Collect()(node)
    flow = af.Flow([src], [sink], stop_grace=0.1)
    await flow.run_async()
    with anyio.fail_after(HANG_GUARD_S):
        await entered.wait()
        await flow.stop()
    stats = flow.statistics()
    assert stats.balanced
    assert stats.nodes["stuck"].cancelled >= 1  # the packet x == 3 at least
    assert sink.items == [0, 1, 2]


async def test_every_producer_into_one_port_is_served() -> None:
    sources = [Numbers(count=None).options(id=f"s{i}", queue_size=8) for i in range(3)]
    sink = Collect()(plus_one()(*sources))
    flow = af.Flow(sources, [sink])
    await flow.run_async()
    with anyio.fail_after(HANG_GUARD_S):
        while len(sink.items) < 30 * CHECKPOINT_EVERY:
            await anyio.lowlevel.checkpoint()
        await flow.stop()
    stats = flow.statistics()
    assert stats.balanced
    per_source = [stats.nodes[f"s{i}"].emitted for i in range(3)]
    assert min(per_source) >= CHECKPOINT_EVERY  # none starved by the others


class PortPicker(af.FlowUnit):
    """Emits on a port chosen by the payload, right and wrong, in turn."""

    inp = af.Input("in")
    out = af.Output("out")
    PORTS: ClassVar[list[Any]] = [["out"], None, "out", "outt", "out", 0, "out"]

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        port = self.PORTS[packet.data]
        await ctx.emit(self.out if port == "out" and packet.data == 4 else port, packet)


async def test_emit_on_hostile_ports_after_good_ones_is_named_each_time() -> None:
    """``PlainContext.emit`` remembers its last port: an unhashable, ``None``, a typo or
    an int between good emits must each still fail with ``EmitError``, and good emits
    after them must still go out."""
    flow = af.Flow(session_graph("portpicker"), registry=registry_with(PortPicker))
    async with flow:
        with anyio.fail_after(HANG_GUARD_S):
            results = await run_session(flow, list(range(len(PortPicker.PORTS))))
        stats = flow.statistics()
    assert [r.data for r in results if r.ok] == [2, 4, 6]
    failed = [r for r in results if not r.ok]
    assert [r.seq for r in failed] == [0, 1, 3, 5]
    for result in failed:
        assert isinstance(result.error.__cause__, af.errors.EmitError), result.error
        assert "'n0'" in str(result.error.__cause__)
    assert stats.balanced
