"""Flow lifecycle: every API call in every state, stop/timeout/cancellation bounds."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import anyio
import pytest
from support.units import AddOne, Collect, FatalAddOne, Numbers, registry_with, session_graph

import actorflow as af
from actorflow import FlowStateError, Status

pytestmark = pytest.mark.anyio


def endless_flow() -> af.Flow:
    src = Numbers(count=None)
    sink = Collect()(AddOne()(src))
    return af.Flow([src], [sink], stop_grace=1.0)


def finite_flow(count: int = 20) -> tuple[af.Flow, Collect]:
    src = Numbers(count=count)
    sink = Collect()(AddOne()(src))
    return af.Flow([src], [sink]), sink


async def test_finite_flow_runs_to_stop() -> None:
    flow, sink = finite_flow()
    await flow.run_async()
    assert await flow.wait(5) is Status.STOP
    assert sink.items == list(range(1, 21))
    assert flow.state == "stopped"
    assert flow.statistics().balanced


async def test_wait_before_start_is_a_state_error() -> None:
    flow, _ = finite_flow()
    with pytest.raises(FlowStateError, match=r"wait\(\) called before the flow was started"):
        await flow.wait(1)


async def test_run_async_twice_is_a_state_error() -> None:
    flow, _ = finite_flow()
    await flow.run_async()
    with pytest.raises(FlowStateError, match=r"run_async\(\) is not allowed when the flow is"):
        await flow.run_async()
    await flow.wait(5)


async def test_build_twice_and_init_after_build_are_state_errors() -> None:
    flow, _ = finite_flow()
    flow.build()
    with pytest.raises(FlowStateError, match=r"build\(\) is not allowed when the flow is built"):
        flow.build()
    with pytest.raises(FlowStateError, match=r"init\(\)"):
        flow.init({"nodes": {}, "edges": []})


async def test_build_without_graph_says_how_to_give_one() -> None:
    with pytest.raises(FlowStateError, match=r"pass one to Flow\(...\) or call init"):
        af.Flow().build()


async def test_stop_before_start_and_twice_is_harmless() -> None:
    flow = endless_flow()
    await flow.stop()
    await flow.run_async()
    await flow.stop()
    await flow.stop()
    assert flow.state == "stopped"
    assert await flow.wait() is Status.STOP


async def test_restart_after_stop_needs_a_new_flow() -> None:
    flow, _ = finite_flow()
    await flow.run_async()
    await flow.wait(5)
    with pytest.raises(FlowStateError, match="create a new Flow"):
        await flow.run_async()


async def test_session_before_start_is_a_state_error() -> None:
    flow = af.Flow(session_graph("addone"), registry=registry_with(AddOne))
    with pytest.raises(FlowStateError, match=r"needs a running flow \(state: created\)"):
        flow.session()


async def test_wait_timeout_force_stops_an_endless_flow() -> None:
    """ModelBox semantics: on expiry the flow is stopped and TIMEOUT returned."""
    flow = endless_flow()
    await flow.run_async()
    with anyio.fail_after(30):  # a hang guard; the bound is measured in benchmarks/stop.py
        status = await flow.wait(timeout=0.5)
    assert status is Status.TIMEOUT
    assert flow.state == "stopped"
    assert flow.statistics().balanced


async def test_stop_under_full_load_ends_stopped_with_the_ledger_closed() -> None:
    slow = Collect(delay=0.001)
    src = Numbers(count=None)
    flow = af.Flow([src], [slow(AddOne()(src))], stop_grace=0.5)
    await flow.run_async()
    await anyio.sleep(0.05)  # let the pipeline fill: load, not synchronisation
    with anyio.fail_after(30):  # a hang guard; the bound is measured in benchmarks/stop.py
        await flow.stop()
    assert flow.state == "stopped"
    stats = flow.statistics()
    assert stats.balanced, stats.nodes
    assert stats.nodes["add_one"].processed > 0


async def test_cancelling_the_waiter_cancels_the_flow() -> None:
    flow = endless_flow()
    await flow.run_async()
    with anyio.move_on_after(0.2):
        await flow.wait()
    assert flow.state == "stopped"
    assert flow.statistics().balanced


async def test_async_with_builds_starts_and_stops() -> None:
    flow = endless_flow()
    async with flow:
        assert flow.state == "running"
    assert flow.state == "stopped"


async def test_async_with_raises_flow_failed() -> None:
    src = Numbers(count=5)
    flow = af.Flow(
        [src],
        [Collect()(FatalAddOne(fail_on=(0, 1, 2, 3, 4))(src))],
        restart=af.RestartPolicy(max_restarts=0),
    )
    with pytest.raises(af.FlowFailed) as info:
        async with flow:
            await flow.wait(5)
    (failure,) = info.value.exceptions
    assert isinstance(failure, af.NodeFailed)
    assert (failure.node, failure.phase) == ("fatal_add_one", "process")
    assert isinstance(failure.__cause__, ZeroDivisionError)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_structured_form_runs_on_trio(anyio_backend: str) -> None:
    flow, sink = finite_flow()
    async with flow:
        assert await flow.wait(5) is Status.STOP
    assert sink.items == list(range(1, 21))


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_run_async_on_trio_says_use_async_with(anyio_backend: str) -> None:
    flow, _ = finite_flow()
    with pytest.raises(FlowStateError, match="needs asyncio; use 'async with flow'"):
        await flow.run_async()


def test_synchronous_run_returns_stop() -> None:
    flow, sink = finite_flow()
    assert flow.run() is Status.STOP
    assert len(sink.items) == 20


def test_synchronous_run_raises_flow_failed() -> None:
    src = Numbers(count=3)
    flow = af.Flow(
        [src],
        [Collect()(FatalAddOne(fail_on=(1,))(src))],
        restart=af.RestartPolicy(max_restarts=0),
    )
    with pytest.raises(af.FlowFailed, match="node 'fatal_add_one'"):
        flow.run()


def test_ctrl_c_during_synchronous_run_stops_gracefully() -> None:
    code = textwrap.dedent("""
        import actorflow as af

        @af.source
        async def forever():
            i = 0
            while True:
                yield i
                i += 1

        class Announce(af.FlowUnit):
            inp = af.Input("in")
            async def process(self, ctx, packet):
                if packet.data == 10:
                    print("running", flush=True)

        src = forever()
        flow = af.Flow([src], [Announce()(src)])
        status = flow.run()
        print("status", status.name, flow.state, flow.statistics().balanced, flush=True)
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    while "running" not in proc.stdout.readline():
        pass
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert "status STOP stopped True" in out
    assert proc.returncode == 0


def test_init_accepts_the_dict_form() -> None:
    flow = af.Flow().init(session_graph("addone"))
    assert flow.graph is not None
    assert [n.id for n in flow.graph.nodes] == ["input", "n0", "output"]
