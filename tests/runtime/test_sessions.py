"""Sessions: many independent streams through one running graph."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from support.units import AddOne, registry_with, run_session, session_graph

import actorflow as af

pytestmark = pytest.mark.anyio


def flow_of(*units: str, **attrs: object) -> af.Flow:
    return af.Flow(session_graph(*units, **attrs), registry=registry_with(AddOne))


async def test_fifty_concurrent_sessions_each_get_their_own_results_in_order() -> None:
    flow = flow_of("addone", "addone", replicas=3, queue_size=4)
    got: dict[int, list[int]] = {}

    async def one(k: int) -> None:
        results = await run_session(flow, [k * 1000 + i for i in range(40)])
        got[k] = [r.data for r in results]

    async with flow:
        async with anyio.create_task_group() as tg:
            for k in range(50):
                tg.start_soon(one, k)
    assert got == {k: [k * 1000 + i + 2 for i in range(40)] for k in range(50)}
    stats = flow.statistics()
    assert stats.balanced
    assert all(s.balanced and s.sent == 40 for s in stats.sessions.values())


async def test_close_ends_input_and_results_still_arrive_then_eof() -> None:
    async with flow_of("addone") as flow:
        session = flow.session()
        for i in range(5):
            await session.send("input", i)
        await session.close()
        assert [(await session.recv()).data for _ in range(5)] == [1, 2, 3, 4, 5]
        with pytest.raises(anyio.EndOfStream):
            await session.recv()
        with pytest.raises(af.SessionClosed, match="session 1 is closed"):
            await session.send("input", 9)


async def test_failed_items_come_back_as_errors_in_order() -> None:
    registry = registry_with(AddOne)
    graph = session_graph("addone")
    graph["nodes"]["n0"]["fail_on"] = (2,)
    async with af.Flow(graph, registry=registry) as flow:
        results = await run_session(flow, [0, 1, 2, 3])
    assert [(r.seq, r.data) for r in results if r.ok] == [(0, 1), (1, 2), (3, 4)]
    (error,) = [r for r in results if not r.ok]
    assert error.seq == 2
    assert isinstance(error.error, af.NodeFailed)
    assert (error.error.node, error.error.error_type) == ("n0", "ZeroDivisionError")
    assert error.error.error_message == "boom at 2"
    assert "ZeroDivisionError: boom at 2" in str(error.error)
    ledger = flow.statistics().sessions[1]
    assert (ledger.sent, ledger.delivered, ledger.failed) == (4, 3, 1)


async def test_abort_drops_what_is_left_and_counts_it() -> None:
    async with flow_of("addone", delay=0.01, queue_size=64) as flow:
        session = flow.session()
        for i in range(30):
            await session.send("input", i)
        await session.abort()
        received = [r async for r in session]
        assert len(received) < 30
    ledger = flow.statistics().sessions[1]
    assert ledger.sent == 30
    assert ledger.balanced, ledger
    assert ledger.cancelled > 0


async def test_unknown_input_port_lists_the_inputs() -> None:
    async with flow_of("addone") as flow:
        session = flow.session()
        with pytest.raises(KeyError, match="no input node 'inptu'; its inputs are: 'input'"):
            await session.send("inptu", 1)
        await session.close()


async def test_send_nowait_refuses_when_full_and_sends_nothing() -> None:
    async with flow_of("addone", delay=1.0, queue_size=1) as flow:
        session = flow.session()
        session.send_nowait("input", 0)  # taken by the node, which now sleeps
        await anyio.wait_all_tasks_blocked()
        session.send_nowait("input", 1)  # fills the one-slot lane
        with pytest.raises(anyio.WouldBlock):
            session.send_nowait("input", 2)
        assert flow.statistics().sessions[1].sent == 2
        await session.abort()


async def test_stopping_the_flow_ends_open_sessions() -> None:
    flow = flow_of("addone")
    async with flow:
        session = flow.session()
        await session.send("input", 1)
        assert (await session.recv()).data == 2
    with pytest.raises(anyio.EndOfStream):
        await session.recv()


async def test_pass_through_graph_returns_what_was_sent() -> None:
    graph = {
        "nodes": {"input": {"type": "input"}, "output": {"type": "output"}},
        "edges": ["input -> output"],
    }
    async with af.Flow(graph) as flow:
        results = await run_session(flow, ["a", "b"])
    assert [r.data for r in results] == ["a", "b"]


async def test_finished_sessions_are_retired_so_servers_do_not_grow() -> None:
    async with flow_of("addone") as flow:
        for k in range(200):
            results = await run_session(flow, [k])
            assert [r.data for r in results] == [k + 1]
        stats = flow.statistics()
        assert (stats.sessions_open, stats.sessions_finished) == (0, 200)
        assert len(flow._sup.sessions.open) == 0  # nothing of them is tracked any more
        assert len(flow._sup.ledgers) == 0
        assert stats.sessions[200].delivered == 1  # recent ledgers stay visible


async def test_a_pass_through_graph_keeps_running_until_stopped() -> None:
    graph = {
        "nodes": {"input": {"type": "input"}, "output": {"type": "output"}},
        "edges": ["input -> output"],
    }
    flow = af.Flow(graph)
    await flow.run_async()
    await anyio.wait_all_tasks_blocked()
    assert flow.state == "running"
    assert [r.data for r in await run_session(flow, [1])] == [1]
    await flow.stop()
    assert flow.state == "stopped"


async def test_end_markers_take_no_packet_capacity() -> None:
    """Sixteen one-item sessions fit a lane of sixteen, their end markers aside."""
    async with flow_of("addone", delay=1.0, queue_size=16) as flow:
        sessions = [flow.session() for _ in range(17)]
        sessions[0].send_nowait("input", 0)  # taken by the node, which now sleeps
        await anyio.wait_all_tasks_blocked()
        for s in sessions[1:]:
            s.send_nowait("input", 1)
            await s.close()
        assert flow.statistics().edges["input:out -> n0:in"].used == 32
        for s in sessions:
            await s.abort()


async def test_a_failure_in_a_sink_reaches_the_session() -> None:
    class PickySink(af.FlowUnit):
        inp = af.Input("in")

        async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
            if packet.data == 2:
                raise OSError("disk full")

    reg = registry_with(AddOne, PickySink)
    graph = {
        "nodes": {
            "input": {"type": "input"},
            "n": {"unit": "addone"},
            "sink": {"unit": "pickysink"},
            "output": {"type": "output"},
        },
        "edges": ["input -> n", "n -> output", "input -> sink"],
    }
    async with af.Flow(graph, registry=reg) as flow:
        results = await run_session(flow, [1, 2, 3])
    assert [r.data for r in results if r.ok] == [2, 3, 4]
    (error,) = [r for r in results if not r.ok]
    assert (error.port, error.seq) == ("sink", 1)
    assert isinstance(error.error.__cause__, OSError)
