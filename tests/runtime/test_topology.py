"""Graph shapes: fan-out, fan-in, joins by lineage, expand/collapse, replicas, batching."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
from support.units import AddOne, Collect, Gather, Numbers, Pair, Split

import actorflow as af
from actorflow.testing import UnitRunner
from actorflow.unit import Registry

pytestmark = pytest.mark.anyio


class Batched(af.FlowUnit):
    """Doubles payloads a batch at a time and records batch sizes."""

    inp = af.Input("in")
    out = af.Output("out")
    sizes: list[int]

    def __init__(self) -> None:
        self.sizes = []

    async def process_batch(self, ctx: af.Context, packets: list[af.Packet[Any]]) -> None:
        self.sizes.append(len(packets))
        for packet in packets:
            await ctx.emit(self.out, packet.replace(packet.data * 2))


def registry() -> Registry:
    reg = Registry()
    for name, cls in {"split": Split, "pair": Pair, "gather": Gather, "add": AddOne}.items():
        reg.register(cls, name)
    return reg


async def test_fan_out_delivers_every_packet_to_every_consumer() -> None:
    src = Numbers(count=50)
    a, b = Collect()(src), Collect()(src)
    flow = af.Flow([src], [a, b])
    await flow.run_async()
    await flow.wait(5)
    assert a.items == b.items == list(range(50))


async def test_fan_in_from_several_producers() -> None:
    one, two = Numbers(count=30), Numbers(count=20)
    sink = Collect()(AddOne()(one, two))  # two producers into one input port
    flow = af.Flow([one, two], [sink])
    await flow.run_async()
    assert await flow.wait(5) is af.Status.STOP
    assert sorted(sink.items) == sorted([i + 1 for i in range(30)] + [i + 1 for i in range(20)])


async def test_multi_input_node_joins_by_session_seq_and_lineage() -> None:
    graph = {
        "nodes": {
            "a": {"type": "input"},
            "b": {"type": "input"},
            "pair": {"unit": "pair"},
            "output": {"type": "output"},
        },
        "edges": ["a -> pair:left", "b -> pair:right", "pair -> output"],
    }
    async with af.Flow(graph, registry=registry()) as flow:
        session = flow.session()
        for i in range(10):
            await session.send("b", f"r{i}")  # the order between ports does not matter
            await session.send("a", f"l{i}")
        await session.close()
        got = [r.data async for r in session]
    assert got == [(f"l{i}", f"r{i}") for i in range(10)]


async def test_expand_then_collapse_gathers_children_per_parent_in_order() -> None:
    graph = {
        "nodes": {
            "input": {"type": "input"},
            "split": {"unit": "split"},
            "inc": {"unit": "add", "replicas": 3},
            "gather": {"unit": "gather"},
            "output": {"type": "output"},
        },
        "edges": [
            "input -> split",
            "split -> inc",
            "inc -> gather:parts",
            "input -> gather:whole",
            "gather -> output",
        ],
    }
    async with af.Flow(graph, registry=registry()) as flow:
        session = flow.session()
        frames = [[1, 2, 3], [], [10], [4, 5]]
        for frame in frames:
            await session.send("input", frame)
        await session.close()
        got = [r.data async for r in session]
    assert got == [(f, [x + 1 for x in f]) for f in frames]
    assert flow.statistics().balanced


async def test_failure_inside_an_expanded_group_drops_only_that_child() -> None:
    graph = {
        "nodes": {
            "input": {"type": "input"},
            "split": {"unit": "split"},
            "inc": {"unit": "add", "fail_on": (2,)},
            "gather": {"unit": "gather"},
            "output": {"type": "output"},
        },
        "edges": [
            "input -> split",
            "split -> inc",
            "inc -> gather:parts",
            "input -> gather:whole",
            "gather -> output",
        ],
    }
    async with af.Flow(graph, registry=registry()) as flow:
        session = flow.session()
        await session.send("input", [1, 2, 3])
        await session.close()
        got = [r.data async for r in session]
    assert got == [([1, 2, 3], [2, 4])]


async def test_replicas_keep_per_session_order_at_the_output() -> None:
    out = await UnitRunner(AddOne(delay=0.001), replicas=4).run({"in": list(range(100))})
    assert [p.data for p in out["out"]] == list(range(1, 101))


async def test_batches_gather_up_to_size_and_keep_order() -> None:
    unit = Batched()
    runner = UnitRunner(unit, batch_size=8, batch_timeout=0.05)
    out = await runner.run({"in": list(range(40))})
    assert [p.data for p in out["out"]] == [2 * i for i in range(40)]
    assert max(unit.sizes) == 8
    assert sum(unit.sizes) == 40


async def test_batches_mix_sessions_and_each_gets_its_own_results() -> None:
    unit = Batched()
    reg = Registry()
    reg.register(Batched, "batched")
    graph = {
        "nodes": {
            "input": {"type": "input"},
            "b": {"unit": "batched", "batch_size": 16, "batch_timeout": 0.02},
            "output": {"type": "output"},
        },
        "edges": ["input -> b", "b -> output"],
    }
    del unit
    results: dict[int, list[int]] = {}
    async with af.Flow(graph, registry=reg) as flow:

        async def one(k: int) -> None:
            session = flow.session()
            for i in range(20):
                await session.send("input", k * 100 + i)
            await session.close()
            results[k] = [r.data async for r in session]

        async with anyio.create_task_group() as tg:
            for k in range(8):
                tg.start_soon(one, k)
    assert results == {k: [2 * (k * 100 + i) for i in range(20)] for k in range(8)}
    assert flow.statistics().nodes["b"].batches < 8 * 20  # sessions shared batches


async def test_plain_function_units_run_on_named_executor_threads() -> None:
    seen: set[str] = set()

    @af.flowunit(register=False)
    def blocking(x: int) -> int:
        seen.add(threading.current_thread().name)
        return x * 3

    out = await UnitRunner(blocking(), replicas=2).run({"in": list(range(20))})
    assert [p.data for p in out["out"]] == [3 * i for i in range(20)]
    assert seen <= {"actorflow-unit-0", "actorflow-unit-1"}
    assert seen


async def test_plain_generator_sources_run_off_the_loop() -> None:
    names: set[str] = set()

    @af.source(register=False)
    def numbers(*, n: int = 5):  # type: ignore[no-untyped-def]
        for i in range(n):
            names.add(threading.current_thread().name)
            yield i

    src = numbers(n=5)
    sink = Collect()(src)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    await flow.wait(5)
    assert sink.items == [0, 1, 2, 3, 4]
    assert names == {"actorflow-numbers-0"}


async def test_one_item_sessions_still_batch_together() -> None:
    """A request per session (as in serving): ends of sessions do not cut batches short."""
    reg = Registry()
    reg.register(Batched, "batched")
    graph = {
        "nodes": {
            "input": {"type": "input"},
            "b": {"unit": "batched", "batch_size": 16, "batch_timeout": 0.05},
            "output": {"type": "output"},
        },
        "edges": ["input -> b", "b -> output"],
    }
    results: dict[int, list[int]] = {}
    async with af.Flow(graph, registry=reg) as flow:

        async def request(k: int) -> None:
            async with flow.session() as session:
                await session.send("input", k)
            results[k] = [r.data async for r in session]

        async with anyio.create_task_group() as tg:
            for k in range(16):
                tg.start_soon(request, k)
    assert results == {k: [2 * k] for k in range(16)}
    assert flow.statistics().nodes["b"].batches <= 2


class Jitter(af.FlowUnit):
    """Takes a different time per item, so replicas finish out of order."""

    inp = af.Input("in")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        for _ in range(packet.data % 4):
            await anyio.lowlevel.checkpoint()
        await ctx.emit(self.out, packet)

    async def process_batch(self, ctx: af.Context, packets: list[af.Packet[Any]]) -> None:
        for _ in range(len(packets) % 3):
            await anyio.lowlevel.checkpoint()
        for packet in packets:
            await ctx.emit(self.out, packet)


@pytest.mark.parametrize("batch_size", [1, 4])
async def test_replicas_finishing_out_of_order_still_release_in_order(batch_size: int) -> None:
    runner = UnitRunner(Jitter(), replicas=3, batch_size=batch_size, batch_timeout=0.001)
    out = await runner.run({"in": list(range(300))})
    assert [p.data for p in out["out"]] == list(range(300))


async def test_ctx_fail_fails_one_packet_of_a_batch_without_a_restart() -> None:
    class Picky(af.FlowUnit):
        inp = af.Input("in")
        out = af.Output("out")

        async def process_batch(self, ctx: af.Context, packets: list[af.Packet[Any]]) -> None:
            for packet in packets:
                if packet.data < 0:
                    ctx.fail(packet, ValueError(f"negative: {packet.data}"))
                else:
                    await ctx.emit(self.out, packet)

    runner = UnitRunner(Picky(), batch_size=4, batch_timeout=0.05, replicas=2)
    out = await runner.run({"in": [1, -2, 3, -4, 5]})
    assert [p.data for p in out["out"]] == [1, 3, 5]
    assert [(r.seq, str(r.error.__cause__)) for r in runner.errors] == [
        (1, "negative: -2"),
        (3, "negative: -4"),
    ]
    assert runner.statistics is not None
    node = runner.statistics.nodes["unit"]
    assert (node.processed, node.failed, node.restarts, node.in_flight) == (3, 2, 0, 0)


async def test_diamond_with_a_slow_branch_joins_every_item_without_deadlock() -> None:
    reg = registry()
    reg.register(AddOne, "add")
    graph = {
        "nodes": {
            "input": {"type": "input"},
            "fast": {"unit": "add", "queue_size": 2},
            "slow": {"unit": "add", "delay": 0.001, "queue_size": 2},
            "pair": {"unit": "pair", "queue_size": 2},
            "output": {"type": "output"},
        },
        "edges": [
            "input -> fast",
            "input -> slow",
            "fast -> pair:left",
            "slow -> pair:right",
            "pair -> output",
        ],
    }
    with anyio.fail_after(20):
        async with af.Flow(graph, registry=reg) as flow:
            session = flow.session()
            got: list[Any] = []

            async def read() -> None:
                got.extend([r.data async for r in session])

            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                for i in range(100):
                    await session.send("input", i)
                await session.close()
    assert got == [(i + 1, i + 1) for i in range(100)]
    assert flow.statistics().balanced


async def test_a_lossy_branch_before_a_join_does_not_grow_the_join_buffer() -> None:
    """A camera's frames join with a slow detector that keeps only the latest frame."""
    src = Numbers(count=300)
    slow = AddOne(delay=0.002).options(id="slow", policy="latest")(src)
    pair = Pair().options(id="pair")(src, slow)
    sink = Collect()(pair)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    assert await flow.wait(20) is af.Status.STOP
    stats = flow.statistics()
    node = stats.nodes["pair"]
    assert sink.items  # the frames the detector saw came through, each with its result
    assert all(right == left + 1 for left, right in sink.items)
    assert node.dropped > 0  # frames whose detector result was dropped upstream
    assert node.processed == 2 * len(sink.items)
    assert node.in_flight == 0
    assert stats.balanced
