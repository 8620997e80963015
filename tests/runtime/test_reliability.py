"""Issue 9's regressions, tried as a hostile user would (one test per promise).

1. Bad input never takes a flow down: a failing ``process`` fails that packet only; a
   replica restarts only when its unit is broken (a declared fatal error, or
   ``failures_before_restart`` failures in a row); wrong-typed session inputs are
   refused at the boundary with ``InputTypeError``.
2. ``stop()``, ``wait(timeout)`` and cancelling ``wait()``'s task always end in a final
   state, even with a plain-``def`` unit blocked in its thread: the call is abandoned,
   counted and named; worker threads never keep the process alive.
4. Every session ledger closes: ``sent + spawned == delivered + dropped + filtered +
   failed + cancelled + merged``, with filters, expand, fan-out and joins.
5. ``ctx.emit`` misuse raises ``EmitError`` naming node and port; a loop watchdog names
   the node that blocked the event loop.

(Item 3, sinks at stop, is tested with the sinks in ``tests/flowunits``.) Timings are
measured in ``benchmarks/stop.py``, never asserted here.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs
from support.lifecycle import (
    FINAL_STATES,
    FakeClock,
    Gate,
    actorflow_tasks,
    blocking_unit,
    release,
    settled_tasks,
)
from support.units import (
    AddOne,
    Collect,
    Gather,
    Numbers,
    Pair,
    Split,
    registry_with,
    session_graph,
)

import actorflow as af
import actorflow.errors as errors
from actorflow.unit import Registry

pytestmark = pytest.mark.anyio

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"
HANG_GUARD_S = 45.0
"""Only a guard against hanging forever (the suite's timeout is 60 s); never a bound."""


class DeviceLost(RuntimeError):
    """An error a unit declares fatal: the unit itself is broken, not the packet."""


@af.flowunit(register=False)
async def inc_async(x: Any) -> Any:
    return x + 1


@af.flowunit(register=False)
def inc_thread(x: Any) -> Any:
    return x + 1


INCREMENTERS: dict[str, type[af.FlowUnit]] = {
    "addone": AddOne,
    "inc_async": inc_async,
    "inc_thread": inc_thread,
}


async def exchange(session: af.Session, items: list[tuple[str, Any]]) -> list[af.Result]:
    """Send ``(port, value)`` items while reading; return every result.

    Sending stops early if the session is closed under us (its flow died): the results
    and ledgers then show what was lost, which the tests assert on.
    """
    results: list[af.Result] = []

    async def reader() -> None:
        results.extend([r async for r in session])

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        try:
            for port, value in items:
                await session.send(port, value)
        except af.SessionClosed:
            pass
        await session.close()
    return results


# -- 1. failure isolation --------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "replicas"), [("addone", 1), ("addone", 3), ("inc_async", 1), ("inc_thread", 3)]
)
async def test_a_thousand_bad_inputs_fail_only_themselves(unit: str, replicas: int) -> None:
    """Issue 9, seen 1: six bad inputs killed the flow for good. Now 1,000 can't.

    With one replica the items alternate good and bad, so the unit never fails ten in a
    row and is never restarted. With replicas, which replica takes which item depends
    on timing: one may see ten bad items in a row and be restarted (a fresh ``open``),
    which never escalates, so only the outcome and the flow's survival are asserted.
    """
    flow = af.Flow(
        session_graph(unit, replicas=replicas), registry=registry_with(INCREMENTERS[unit])
    )
    items: list[tuple[str, Any]] = []
    for i in range(1000):
        items += [("input", i), ("input", f"x{i}")]
    await flow.run_async()
    try:
        session = flow.session()
        with anyio.fail_after(HANG_GUARD_S):
            results = await exchange(session, items)
        failure, state, stats = flow.exception, flow.state, flow.statistics()
    finally:
        await flow.stop()
    assert failure is None, f"bad inputs took the flow down: {failure}"
    assert state == "running"
    assert len(results) == 2000
    for result in results:
        if result.seq % 2 == 0:
            assert result.ok, result
            assert result.data == result.seq // 2 + 1
        else:
            error = result.error
            assert isinstance(error, af.NodeFailed), result
            assert (error.node, error.phase) == ("n0", "process")
            assert isinstance(error.__cause__, TypeError)
            assert "TypeError" in str(error)
            assert str(error.__cause__) in str(error)
    node = stats.nodes["n0"]
    assert (node.processed, node.failed) == (1000, 1000)
    if replicas == 1:
        assert node.restarts == 0
    ledger = stats.sessions[session.id]
    assert (ledger.sent, ledger.delivered, ledger.failed) == (2000, 1000, 1000)
    assert ledger.balanced, ledger


async def test_failure_error_names_node_unit_phase_type_and_message() -> None:
    registry = registry_with(AddOne)
    graph = session_graph("addone")
    graph["nodes"]["n0"]["fail_on"] = (7,)
    async with af.Flow(graph, registry=registry) as flow:
        (result,) = await exchange(flow.session(), [("input", 7)])
    error = result.error
    assert isinstance(error, af.NodeFailed)
    assert (error.node, error.unit, error.phase) == ("n0", "AddOne", "process")
    assert isinstance(error.__cause__, ZeroDivisionError)
    assert "ZeroDivisionError" in str(error)
    assert "boom at 7" in str(error)


async def test_a_stream_of_nothing_but_bad_inputs_never_escalates() -> None:
    """200 failures in a row: a restart per 10, none counted toward the intensity."""
    unit = AddOne(fail_on=tuple(range(200)))
    src = Numbers(count=200)
    flow = af.Flow([src], [Collect()(unit(src))], clock=FakeClock())
    await flow.run_async()
    with anyio.fail_after(HANG_GUARD_S):
        status = await flow.wait()
    assert flow.exception is None, flow.exception
    assert status is af.Status.STOP
    node = flow.statistics().nodes["add_one"]
    assert (node.failed, node.restarts) == (200, 20)
    assert (unit.opens, unit.closes) == (21, 21)
    assert af.RestartPolicy().failures_before_restart == 10


async def test_a_success_between_failures_means_no_restart() -> None:
    fail_on = tuple(i for i in range(200) if i % 10 != 9)  # 9 failures, 1 success, ...
    unit = AddOne(fail_on=fail_on)
    src = Numbers(count=200)
    flow = af.Flow([src], [Collect()(unit(src))], clock=FakeClock())
    await flow.run_async()
    with anyio.fail_after(HANG_GUARD_S):
        assert await flow.wait() is af.Status.STOP
    node = flow.statistics().nodes["add_one"]
    assert (node.failed, node.processed, node.restarts) == (180, 20, 0)
    assert unit.opens == 1


class Fragile(AddOne):
    """Loses its device on the payload ``"lost"``: an error it declares fatal."""

    fatal_errors = (DeviceLost,)

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        if packet.data == "lost":
            raise DeviceLost("GPU fell off the bus")
        await super().process(ctx, packet)


async def test_a_declared_fatal_error_restarts_the_replica_once() -> None:
    registry = registry_with(Fragile)
    flow = af.Flow(session_graph("fragile"), registry=registry, clock=FakeClock())
    async with flow:
        items = [("input", v) for v in (1, "bad", "lost", 2)]
        results = await exchange(flow.session(), items)
        stats = flow.statistics()
    assert [r.data for r in results if r.ok] == [2, 3]
    errors_ = [r.error for r in results if not r.ok]
    assert all(isinstance(e, af.NodeFailed) for e in errors_)
    assert [type(e.__cause__) for e in errors_] == [TypeError, DeviceLost]
    assert stats.nodes["n0"].restarts == 1  # "bad" failed its packet only
    assert stats.sessions[1].balanced
    assert af.FlowUnit.fatal_errors == ()


async def test_fatal_errors_past_the_intensity_fail_the_flow_naming_the_node() -> None:
    """The escalation still exists for broken units: 6 fatal errors in 30 s."""
    src = Numbers(count=10)

    class AlwaysLost(Fragile):
        async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
            raise DeviceLost(f"GPU gone at {packet.data}")

    flow = af.Flow([src], [Collect()(AlwaysLost()(src))], clock=FakeClock())
    await flow.run_async()
    with anyio.fail_after(HANG_GUARD_S):
        assert await flow.wait() is af.Status.FAULT
    assert isinstance(flow.exception, af.FlowFailed)
    (cause,) = flow.exception.exceptions
    assert isinstance(cause, af.NodeFailed)
    assert (cause.node, cause.phase) == ("always_lost", "process")
    assert isinstance(cause.__cause__, DeviceLost)
    assert flow.state == "failed"
    assert flow.statistics().balanced


async def test_flowunit_decorator_declares_fatal_errors() -> None:
    @af.flowunit(register=False, fatal_errors=(DeviceLost,))
    async def fragile_fn(x: Any) -> Any:
        if x == "lost":
            raise DeviceLost("GPU fell off the bus")
        if x == "bad":
            raise ValueError("bad item")
        return x

    assert fragile_fn.fatal_errors == (DeviceLost,)
    flow = af.Flow(
        session_graph("fragile_fn"), registry=registry_with(fragile_fn), clock=FakeClock()
    )
    async with flow:
        results = await exchange(flow.session(), [("input", v) for v in (1, "bad", "lost", 2)])
        restarts = flow.statistics().nodes["n0"].restarts
    assert [r.data for r in results if r.ok] == [1, 2]
    assert [type(r.error.__cause__) for r in results if r.error] == [ValueError, DeviceLost]
    assert restarts == 1  # the fatal error only


class TypedDouble(af.FlowUnit):
    inp = af.Input("in", int)
    out = af.Output("out", int)

    async def process(self, ctx: af.Context, packet: af.Packet[int]) -> None:
        await ctx.emit(self.out, packet.replace(packet.data * 2))


def typed_flow() -> af.Flow:
    graph = {
        "nodes": {
            "numbers": {"type": "input"},
            "double": {"unit": "typeddouble"},
            "output": {"type": "output"},
        },
        "edges": ["numbers -> double", "double -> output"],
    }
    return af.Flow(graph, registry=registry_with(TypedDouble))


async def test_wrong_typed_input_is_refused_at_the_boundary_and_nothing_is_sent() -> None:
    async with typed_flow() as flow:
        session = flow.session()
        with pytest.raises(errors.InputTypeError) as waiting:
            await session.send("numbers", "x")
        with pytest.raises(errors.InputTypeError) as nowait:
            session.send_nowait("numbers", b"x")
        for refused, received in ((waiting.value, "str"), (nowait.value, "bytes")):
            assert isinstance(refused, TypeError)
            message = str(refused)
            assert "numbers" in message, message
            assert "int" in message, message
            assert received in message, message
        stats = flow.statistics()
        assert stats.sessions[session.id].sent == 0
        assert stats.edges["numbers:out -> double:in"].offered == 0
        results = await exchange(session, [("numbers", 21)])
    assert [r.data for r in results] == [42]
    assert flow.statistics().sessions[session.id].balanced


async def test_a_thousand_wrong_typed_inputs_interleaved_with_good_ones() -> None:
    """The issue's acceptance, on ``graphs/modelbox_hello.toml`` (``number: float``)."""
    flow = af.Flow(GRAPHS / "modelbox_hello.toml")
    refused: list[Exception] = []
    accepted = 0
    await flow.run_async()
    try:
        session = flow.session()
        results: list[af.Result] = []

        async def reader() -> None:
            results.extend([r async for r in session])

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            try:
                for i in range(1000):
                    await session.send("input", i if i % 2 else i + 0.5)  # JSON ints: numbers
                    try:
                        await session.send("input", "x")
                    except af.SessionClosed:
                        raise
                    except Exception as exc:
                        refused.append(exc)
                    else:
                        accepted += 1
            except af.SessionClosed:
                pass
            await session.close()
        state, stats = flow.state, flow.statistics()
    finally:
        await flow.stop()
    assert accepted == 0, f"{accepted} wrong-typed inputs entered the graph"
    assert len(refused) == 1000
    assert all(isinstance(e, errors.InputTypeError) for e in refused), refused[0]
    assert all("input" in str(e) and "float" in str(e) and "str" in str(e) for e in refused)
    assert state == "running"
    assert [r.data for r in results] == [(i if i % 2 else i + 0.5) * 0.5 for i in range(1000)]
    node = stats.nodes["process"]
    assert (node.failed, node.restarts) == (0, 0)
    ledger = stats.sessions[session.id]
    assert (ledger.sent, ledger.delivered) == (1000, 1000)
    assert ledger.balanced


# -- 2. bounded stop with a plain-def unit blocked in its thread -----------------------


def blocked_flow(gate: Gate, *, replicas: int = 1, **options: Any) -> af.Flow:
    """An endless source into a plain-``def`` unit that blocks on ``gate``, into a sink."""
    src = Numbers(count=None)
    stuck = blocking_unit(gate)().options(id="stuck", replicas=replicas)(src)
    options = {"stop_grace": 0.2, "close_timeout": 0.5, **options}
    return af.Flow([src], [Collect()(stuck)], **options)


def assert_closed(flow: af.Flow, stats: af.FlowStatistics) -> None:
    """Final state, every node's and every session's ledger closed."""
    assert stats.state in FINAL_STATES, stats.state
    for node in stats.nodes.values():
        assert node.in_flight == 0, node
    assert stats.balanced
    for ledger in stats.sessions.values():
        assert ledger.balanced, ledger


async def test_stop_abandons_thread_calls_blocked_past_the_bound() -> None:
    gate = Gate()
    with capture_logs() as logs:
        flow = blocked_flow(gate, replicas=2)
        await flow.run_async()
        try:
            await gate.entered(2)
            with anyio.fail_after(HANG_GUARD_S):
                await flow.stop()
            stats = flow.statistics()
            tasks = await settled_tasks()
        finally:
            await release(flow, gate)
    assert_closed(flow, stats)
    node = stats.nodes["stuck"]
    assert node.abandoned == 2
    assert sorted(node.abandoned_threads) == ["actorflow-stuck-0", "actorflow-stuck-1"]
    assert node.cancelled >= 2  # the abandoned packets (and whatever was queued)
    abandoned = [e for e in logs if e["event"] == "thread_call_abandoned"]
    assert len(abandoned) == 2
    assert {e["node"] for e in abandoned} == {"stuck"}
    assert not tasks, tasks


async def test_wait_timeout_force_stops_a_flow_blocked_in_a_thread() -> None:
    gate = Gate()
    flow = blocked_flow(gate)
    await flow.run_async()
    try:
        await gate.entered()
        with anyio.fail_after(HANG_GUARD_S):
            status = await flow.wait(timeout=0.1)
        stats = flow.statistics()
        tasks = await settled_tasks()
    finally:
        await release(flow, gate)
    assert status is af.Status.TIMEOUT
    assert_closed(flow, stats)
    assert stats.nodes["stuck"].abandoned == 1
    assert not tasks, tasks


async def test_cancelling_the_task_awaiting_wait_ends_in_a_final_state() -> None:
    gate = Gate()
    flow = blocked_flow(gate)
    await flow.run_async()
    try:
        await gate.entered()
        with anyio.fail_after(HANG_GUARD_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(flow.wait)
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
        state, stats = flow.state, flow.statistics()
        tasks = await settled_tasks()
    finally:
        await release(flow, gate)
    assert state in FINAL_STATES, f"cancelling wait() left the flow {state}"
    assert_closed(flow, stats)
    assert stats.nodes["stuck"].abandoned == 1
    assert not tasks, tasks


async def test_stop_with_only_queued_items_behind_a_blocked_call() -> None:
    """Sessions' packets queued behind the blocked call are cancelled, each counted."""
    gate = Gate()
    graph = session_graph("stuck", queue_size=8)
    flow = af.Flow(
        graph, registry=registry_with(blocking_unit(gate)), stop_grace=0.2, close_timeout=0.5
    )
    await flow.run_async()
    try:
        session = flow.session()
        for i in range(5):
            session.send_nowait("input", i)
        await gate.entered()
        with anyio.fail_after(HANG_GUARD_S):
            await flow.stop()
        stats = flow.statistics()
    finally:
        await release(flow, gate)
    assert_closed(flow, stats)
    ledger = stats.sessions[session.id]
    assert (ledger.sent, ledger.cancelled) == (5, 5)
    with pytest.raises(anyio.EndOfStream):
        await session.recv()


BLOCKED_SCRIPT = """
import threading

import actorflow as af

gate = threading.Event()  # never set: only abandoning the call lets this process end


@af.source(register=False)
async def numbers():
    for i in range(1000):
        yield i


@af.flowunit(register=False)
def stuck(x):
    print("blocked", flush=True)
    gate.wait()
    return x


class Sink(af.FlowUnit):
    inp = af.Input("in")

    async def process(self, ctx, packet):
        pass


src = numbers()
flow = af.Flow([src], [Sink()(stuck()(src))], stop_grace={grace}, close_timeout={close})
status = flow.run()
stats = flow.statistics()
print("status", status.name, flow.state, stats.balanced, stats.nodes["stuck"].abandoned, flush=True)
"""


def run_until(proc: subprocess.Popen[str], marker: str) -> str:
    """Read the child's output until a line holds ``marker``; return what was read."""
    assert proc.stdout is not None
    seen = ""
    while marker not in (line := proc.stdout.readline()):
        assert line, f"the child ended before printing {marker!r}:\n{seen}"
        seen += line
    return seen + line


def test_process_exits_after_run_when_a_thread_call_never_returns() -> None:
    """Ctrl-C stops within the bound; the blocked daemon thread does not hold the exit."""
    code = textwrap.dedent(BLOCKED_SCRIPT).format(grace=0.2, close=0.5)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        run_until(proc, "blocked")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        proc.kill()
        proc.wait()
    assert "status STOP stopped True 1" in out, out
    assert proc.returncode == 0


def test_second_ctrl_c_cancels_a_blocked_thread_call_at_once() -> None:
    """Grace and close timeout of 10 minutes: only the second Ctrl-C can end it."""
    code = textwrap.dedent(BLOCKED_SCRIPT).format(grace=600, close=600)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # structlog's default logger prints flow_interrupted
        text=True,
    )
    try:
        run_until(proc, "blocked")
        proc.send_signal(signal.SIGINT)
        run_until(proc, "flow_interrupted")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        proc.kill()
        proc.wait()
    status = [line.split() for line in out.splitlines() if line.startswith("status ")]
    assert status, out
    ((_, _, state, balanced, abandoned),) = status
    assert state in FINAL_STATES
    assert (balanced, abandoned) == ("True", "1")
    assert proc.returncode == 0, out


# -- 4. ledgers that close everywhere --------------------------------------------------


@af.flowunit(register=False)
async def even_async(x: int) -> int | None:
    return x if x % 2 == 0 else None


@af.flowunit(register=False)
def even_thread(x: int) -> int | None:
    return x if x % 2 == 0 else None


class EvenOnly(af.FlowUnit):
    """Consumes odd payloads without output."""

    inp = af.Input("in")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        if packet.data % 2 == 0:
            await ctx.emit(self.out, packet)


FILTERS: dict[str, type[af.FlowUnit]] = {
    "even_async": even_async,
    "even_thread": even_thread,
    "evenonly": EvenOnly,
}


@pytest.mark.parametrize(
    ("unit", "replicas"), [("even_async", 1), ("even_thread", 1), ("evenonly", 1), ("evenonly", 2)]
)
async def test_filtered_items_close_the_session_ledger(unit: str, replicas: int) -> None:
    """Issue 9, seen 4: ``sent=10 delivered=5 dropped=0`` did not add up."""
    flow = af.Flow(session_graph(unit, replicas=replicas), registry=registry_with(FILTERS[unit]))
    async with flow:
        session = flow.session()
        results = await exchange(session, [("input", i) for i in range(10)])
    assert [r.data for r in results] == [0, 2, 4, 6, 8]
    stats = flow.statistics()
    ledger = stats.sessions[session.id]
    assert ledger.balanced, ledger
    assert (ledger.sent, ledger.delivered, ledger.filtered) == (10, 5, 5)
    assert (ledger.dropped, ledger.failed, ledger.cancelled) == (0, 0, 0)
    node = stats.nodes["n0"]
    assert (node.processed, node.filtered, node.emitted) == (10, 5, 5)
    assert stats.balanced


async def test_filtered_items_close_a_source_stream_ledger() -> None:
    src = Numbers(count=10)
    sink = Collect()(even_async().options(id="even")(src))
    flow = af.Flow([src], [sink])
    await flow.run_async()
    with anyio.fail_after(HANG_GUARD_S):
        assert await flow.wait() is af.Status.STOP
    assert sink.items == [0, 2, 4, 6, 8]
    (ledger,) = flow.statistics().sessions.values()
    assert ledger.balanced, ledger
    assert (ledger.sent, ledger.delivered, ledger.filtered) == (10, 5, 5)


def shapes_registry() -> Registry:
    reg = Registry()
    units = {"split": Split, "pair": Pair, "gather": Gather, "add": AddOne, "even": EvenOnly}
    for name, cls in units.items():
        reg.register(cls, name)
    return reg


def dict_graph(nodes: dict[str, Any], edges: list[str]) -> dict[str, Any]:
    return {"name": "shape", "nodes": nodes, "edges": edges}


async def session_ledger(
    graph: dict[str, Any], items: list[tuple[str, Any]]
) -> tuple[list[af.Result], af.SessionStatistics]:
    async with af.Flow(graph, registry=shapes_registry()) as flow:
        session = flow.session()
        with anyio.fail_after(HANG_GUARD_S):
            results = await exchange(session, items)
    stats = flow.statistics()
    assert stats.balanced
    return results, stats.sessions[session.id]


async def test_expand_keeps_the_session_ledger_exact() -> None:
    graph = dict_graph(
        {"input": {"type": "input"}, "split": {"unit": "split"}, "output": {"type": "output"}},
        ["input -> split", "split -> output"],
    )
    results, ledger = await session_ledger(graph, [("input", f) for f in ([1, 2, 3], [4], [5, 6])])
    assert ledger.balanced, ledger
    assert [r.data for r in results] == [1, 2, 3, 4, 5, 6]
    assert (ledger.sent, ledger.spawned, ledger.delivered) == (3, 3, 6)


async def test_an_empty_expansion_still_closes_the_ledger() -> None:
    graph = dict_graph(
        {"input": {"type": "input"}, "split": {"unit": "split"}, "output": {"type": "output"}},
        ["input -> split", "split -> output"],
    )
    results, ledger = await session_ledger(graph, [("input", f) for f in ([], [1, 2], [])])
    assert ledger.balanced, ledger
    assert [r.data for r in results] == [1, 2]
    assert (ledger.sent, ledger.delivered) == (3, 2)


async def test_expand_then_collapse_keeps_the_session_ledger_exact() -> None:
    graph = dict_graph(
        {
            "input": {"type": "input"},
            "split": {"unit": "split"},
            "inc": {"unit": "add", "replicas": 2},
            "gather": {"unit": "gather"},
            "output": {"type": "output"},
        },
        [
            "input -> split",
            "split -> inc",
            "inc -> gather:parts",
            "input -> gather:whole",
            "gather -> output",
        ],
    )
    frames = [[1, 2, 3], [], [10], [4, 5]]
    results, ledger = await session_ledger(graph, [("input", f) for f in frames])
    assert ledger.balanced, ledger
    assert [r.data for r in results] == [(f, [x + 1 for x in f]) for f in frames]
    assert (ledger.sent, ledger.delivered) == (4, 4)
    assert ledger.merged > 0


async def test_a_failing_child_of_an_expansion_keeps_the_ledger_exact() -> None:
    graph = dict_graph(
        {
            "input": {"type": "input"},
            "split": {"unit": "split"},
            "inc": {"unit": "add", "fail_on": (2,)},
            "output": {"type": "output"},
        },
        ["input -> split", "split -> inc", "inc -> output"],
    )
    results, ledger = await session_ledger(graph, [("input", [1, 2, 3])])
    assert ledger.balanced, ledger
    assert [r.data for r in results if r.ok] == [2, 4]
    assert (ledger.sent, ledger.spawned, ledger.delivered, ledger.failed) == (1, 2, 2, 1)


async def test_fan_out_to_two_outputs_keeps_the_session_ledger_exact() -> None:
    graph = dict_graph(
        {
            "input": {"type": "input"},
            "a": {"unit": "add"},
            "b": {"unit": "even"},
            "out_a": {"type": "output"},
            "out_b": {"type": "output"},
        },
        ["input -> a", "input -> b", "a -> out_a", "b -> out_b"],
    )
    results, ledger = await session_ledger(graph, [("input", i) for i in range(6)])
    assert ledger.balanced, ledger
    assert sorted(r.data for r in results if r.port == "out_a") == [1, 2, 3, 4, 5, 6]
    assert sorted(r.data for r in results if r.port == "out_b") == [0, 2, 4]
    assert (ledger.sent, ledger.spawned, ledger.delivered, ledger.filtered) == (6, 6, 9, 3)


async def test_join_of_two_inputs_keeps_the_session_ledger_exact() -> None:
    graph = dict_graph(
        {
            "a": {"type": "input"},
            "b": {"type": "input"},
            "pair": {"unit": "pair"},
            "output": {"type": "output"},
        },
        ["a -> pair:left", "b -> pair:right", "pair -> output"],
    )
    items = [item for i in range(10) for item in (("a", i), ("b", -i))]
    results, ledger = await session_ledger(graph, items)
    assert ledger.balanced, ledger
    assert [r.data for r in results] == [(i, -i) for i in range(10)]
    assert (ledger.sent, ledger.merged, ledger.delivered) == (20, 10, 10)


async def test_diamond_keeps_the_session_ledger_exact() -> None:
    graph = dict_graph(
        {
            "input": {"type": "input"},
            "fast": {"unit": "add"},
            "slow": {"unit": "add", "fail_on": (3,)},
            "pair": {"unit": "pair"},
            "output": {"type": "output"},
        },
        [
            "input -> fast",
            "input -> slow",
            "fast -> pair:left",
            "slow -> pair:right",
            "pair -> output",
        ],
    )
    results, ledger = await session_ledger(graph, [("input", i) for i in range(10)])
    assert ledger.balanced, ledger
    assert [r.data for r in results if r.ok] == [(i + 1, i + 1) for i in range(10) if i != 3]
    assert ledger.sent == 10
    assert ledger.spawned == 10
    assert ledger.delivered == 9


class IntSplit(af.FlowUnit):
    """Expand a number ``x`` into ``x`` and ``x + 1``."""

    inp = af.Input("in")
    out = af.Output("out", expand=True)

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        for value in (packet.data, packet.data + 1):
            await ctx.emit(self.out, packet.replace(value))


class SumPair(af.FlowUnit):
    """Join that keeps payloads numbers: ``left + right``."""

    left = af.Input("left")
    right = af.Input("right")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await ctx.emit(self.out, packet.replace(packet.data["left"] + packet.data["right"]))


@st.composite
def stage_chains(draw: st.DrawFn) -> list[str]:
    """Random chains of stages; ``fork`` is a diamond (fan-out joined again)."""
    stages = ["add", "even", "split", "fork", "fail"]
    return draw(st.lists(st.sampled_from(stages), min_size=1, max_size=5))


def chain_graph(chain: list[str]) -> dict[str, Any]:
    nodes: dict[str, Any] = {"input": {"type": "input"}}
    edges: list[str] = []
    prev = "input"
    for i, stage in enumerate(chain):
        node = f"s{i}"
        if stage == "fork":
            nodes[f"{node}l"] = {"unit": "add"}
            nodes[f"{node}r"] = {"unit": "even"}
            nodes[node] = {"unit": "pair"}
            edges += [
                f"{prev} -> {node}l",
                f"{prev} -> {node}r",
                f"{node}l -> {node}:left",
                f"{node}r -> {node}:right",
            ]
        else:
            unit = {"fail": "add"}.get(stage, stage)
            nodes[node] = {"unit": unit, "replicas": 2 if stage == "add" else 1}
            if stage == "fail":
                nodes[node]["fail_on"] = tuple(range(0, 100, 3))
            edges.append(f"{prev} -> {node}")
        prev = node
    nodes["output"] = {"type": "output"}
    edges.append(f"{prev} -> output")
    return dict_graph(nodes, edges)


@settings(
    max_examples=20,
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(chain=stage_chains(), count=st.integers(0, 12))
async def test_random_chains_keep_every_session_ledger_exact(chain: list[str], count: int) -> None:
    graph = chain_graph(chain)
    reg = shapes_registry()
    reg.register(IntSplit, "split")  # numbers, not lists, flow through random chains
    reg.register(SumPair, "pair")
    async with af.Flow(graph, registry=reg) as flow:
        session = flow.session()
        with anyio.fail_after(HANG_GUARD_S):
            await exchange(session, [("input", i) for i in range(count)])
    stats = flow.statistics()
    assert stats.balanced
    ledger = stats.sessions[session.id]
    assert ledger.sent == count
    assert ledger.balanced, (chain, ledger)


# -- 5. emit misuse and the loop watchdog ----------------------------------------------


class RawEmitter(af.FlowUnit):
    """Emits the raw payload instead of a packet (a common porting mistake)."""

    inp = af.Input("in")
    out = af.Output("out")
    seen: ClassVar[list[BaseException]] = []

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        try:
            await ctx.emit(self.out, packet.data + 1)  # type: ignore[arg-type]
        except Exception as exc:
            RawEmitter.seen.append(exc)
            raise


class WrongPort(af.FlowUnit):
    inp = af.Input("in")
    out = af.Output("out")
    seen: ClassVar[list[BaseException]] = []

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        try:
            await ctx.emit("outt", packet)
        except Exception as exc:
            WrongPort.seen.append(exc)
            raise


async def test_emit_of_a_raw_value_raises_emit_error_naming_node_and_port() -> None:
    RawEmitter.seen.clear()
    flow = af.Flow(session_graph("rawemitter"), registry=registry_with(RawEmitter))
    async with flow:
        results = await exchange(flow.session(), [("input", 1), ("input", 2)])
        state = flow.state
    assert state == "running"  # the flow survived the misuse
    assert len(RawEmitter.seen) == 2
    exc = RawEmitter.seen[0]
    assert isinstance(exc, errors.EmitError)
    assert isinstance(exc, TypeError)
    message = str(exc)
    assert "'n0'" in message, message
    assert "'out'" in message, message
    assert "packet.replace(" in message, message
    assert [type(r.error.__cause__) for r in results if r.error] == [errors.EmitError] * 2
    assert flow.statistics().sessions[1].balanced


async def test_emit_on_an_unknown_port_raises_emit_error_naming_node_and_port() -> None:
    WrongPort.seen.clear()
    flow = af.Flow(session_graph("wrongport"), registry=registry_with(WrongPort))
    async with flow:
        results = await exchange(flow.session(), [("input", 1)])
    (exc,) = WrongPort.seen
    assert isinstance(exc, errors.EmitError)
    message = str(exc)
    assert "'n0'" in message, message
    assert "'outt'" in message, message
    assert [type(r.error.__cause__) for r in results] == [errors.EmitError]


class Hog(af.FlowUnit):
    """Blocks the event loop once (a sync sleep in ``async def``): the bug to report."""

    inp = af.Input("in")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        if packet.data == 0:
            time.sleep(0.3)  # noqa: ASYNC251 -- the fault under test
        await ctx.emit(self.out, packet)


@pytest.mark.parametrize("threshold", [0.1, "default"])
async def test_watchdog_names_the_node_that_blocked_the_loop(threshold: Any) -> None:
    options = {} if threshold == "default" else {"watchdog_threshold": threshold}
    with capture_logs() as logs:
        flow = af.Flow(session_graph("hog"), registry=registry_with(Hog), **options)
        async with flow:
            results = await exchange(flow.session(), [("input", i) for i in range(5)])
    assert [r.data for r in results] == [0, 1, 2, 3, 4]
    events = [e for e in logs if e["event"] == "event_loop_blocked"]
    ours = [e for e in events if e.get("node") == "n0"]
    assert ours, events
    assert all(e["blocked_s"] >= 0.1 for e in ours), ours
    assert flow.statistics().loop_blocked >= 1


async def test_watchdog_none_disables_it() -> None:
    with capture_logs() as logs:
        flow = af.Flow(session_graph("hog"), registry=registry_with(Hog), watchdog_threshold=None)
        async with flow:
            await exchange(flow.session(), [("input", 0)])
            blocked = flow.statistics().loop_blocked
    assert not [e for e in logs if e["event"] == "event_loop_blocked"]
    assert blocked == 0


async def test_the_task_leak_check_sees_a_running_flow() -> None:
    """The leak check used above is not vacuous: a running flow's tasks are found."""
    flow = af.Flow(session_graph("addone"), registry=registry_with(AddOne))
    async with flow:
        assert actorflow_tasks()
    assert not await settled_tasks()
