"""Plain-``def`` units take their items in bursts (issue 15), with the guarantees intact.

The replica hands every item already waiting to its thread in one call and gets the
results back in one loop wake-up; a lone item goes alone. Tried here as an attacker
would: errors and fatal errors in the middle of a burst, a stop while a burst is
blocked (no further item may run once the call is abandoned), order and ledgers.
"""

from __future__ import annotations

import threading

import anyio
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support.lifecycle import FINAL_STATES, FakeClock, Gate, release
from support.units import AddOne, registry_with, run_session, session_graph

import actorflow as af

pytestmark = pytest.mark.anyio

HANG_GUARD_S = 45.0
"""Only a guard against hanging forever; never a bound."""


class DeviceLost(RuntimeError):
    """Declared fatal by ``fragile_thread``."""


@af.flowunit(register=False)
def double(x: int) -> int:
    return 2 * x


@af.flowunit(register=False)
def picky(x: int) -> int:
    if x % 7 == 3:
        raise ValueError(f"no {x}")
    return x


@af.flowunit(register=False, fatal_errors=(DeviceLost,))
def fragile_thread(x: int) -> int:
    if x == 5:
        raise DeviceLost("GPU fell off the bus")
    return x


def burst_sizes(flow: af.Flow, replica: int = 0) -> list[int]:
    """Sizes of the thread calls of one replica of node ``n0``, from its trace spans."""
    assert flow.tracer is not None
    events = flow.tracer.events()
    tracks = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M"}
    return [
        int(e["args"]["size"])
        for e in events
        if e["ph"] == "X" and tracks[e["tid"]] == f"n0/{replica}" and e["name"] == "process_burst"
    ]


async def exchange_all(flow: af.Flow, items: list[int]) -> list[af.Result]:
    """Queue every item at once (one burst's worth), close, and read every result."""
    session = flow.session()
    for item in items:
        session.send_nowait("input", item)
    await session.close()
    results = []
    with anyio.fail_after(HANG_GUARD_S):
        async for result in session:
            results.append(result)
    return results


@pytest.mark.parametrize("replicas", [1, 2, 3])
async def test_items_waiting_together_go_to_the_thread_in_one_call(replicas: int) -> None:
    flow = af.Flow(
        session_graph("double", queue_size=32, replicas=replicas),
        registry=registry_with(double),
        trace=True,
    )
    async with flow:
        results = await exchange_all(flow, list(range(21)))
        stats = flow.statistics()
    assert [r.data for r in results] == [2 * i for i in range(21)]  # in order, however run
    sizes = [burst_sizes(flow, replica) for replica in range(replicas)]
    assert sum(map(sum, sizes)) == 21
    assert max(max(s, default=0) for s in sizes) > 1, sizes  # not one hand-off per item
    assert stats.nodes["n0"].processed == 21
    assert stats.sessions[1].balanced


async def test_a_lone_item_goes_alone_without_waiting_for_company() -> None:
    flow = af.Flow(session_graph("double"), registry=registry_with(double), trace=True)
    async with flow:
        session = flow.session()
        got = []
        for i in range(3):
            await session.send("input", i)
            with anyio.fail_after(HANG_GUARD_S):
                got.append((await session.recv()).data)
        await session.close()
    assert got == [0, 2, 4]
    assert burst_sizes(flow) == [1, 1, 1]


@pytest.mark.parametrize("replicas", [1, 3])
async def test_errors_mid_burst_fail_only_their_items_and_keep_order(replicas: int) -> None:
    flow = af.Flow(
        session_graph("picky", queue_size=64, replicas=replicas), registry=registry_with(picky)
    )
    async with flow:
        results = await exchange_all(flow, list(range(50)))
        stats = flow.statistics()
    bad = [i for i in range(50) if i % 7 == 3]
    assert [r.seq for r in results] == list(range(50))  # errors keep their places
    assert [r.seq for r in results if not r.ok] == bad
    assert all(r.data == r.seq for r in results if r.ok)
    for result in results:
        if not result.ok:
            assert isinstance(result.error, af.NodeFailed)
            assert isinstance(result.error.__cause__, ValueError)
    node = stats.nodes["n0"]
    assert (node.processed, node.failed, node.restarts) == (50 - len(bad), len(bad), 0)
    assert stats.sessions[1].balanced


@pytest.mark.parametrize("replicas", [1, 2])
async def test_a_fatal_error_mid_burst_restarts_and_the_rest_of_the_burst_runs_after(
    replicas: int,
) -> None:
    """With replicas, the items after the error are numbered already: none may be lost,
    or every later output would wait for it in the re-order buffer."""
    flow = af.Flow(
        session_graph("fragile_thread", queue_size=32, replicas=replicas),
        registry=registry_with(fragile_thread),
        clock=FakeClock(),
    )
    async with flow:
        results = await exchange_all(flow, list(range(12)))
        stats = flow.statistics()
    assert [r.data for r in results if r.ok] == [i for i in range(12) if i != 5]
    assert [r.seq for r in results] == list(range(12))
    assert stats.nodes["n0"].restarts == 1
    assert stats.sessions[1].balanced


async def test_stop_while_a_burst_is_blocked_runs_none_of_its_remaining_items() -> None:
    """The abandoned call must not go on with the burst once its gate opens."""
    gate = Gate()
    ran: list[int] = []

    @af.flowunit(register=False, name="stuck")
    def stuck(x: int) -> int:
        ran.append(x)
        if x == 3:
            gate.block()
        return x

    flow = af.Flow(
        session_graph("stuck", queue_size=16),
        registry=registry_with(stuck),
        stop_grace=0.2,
        close_timeout=0.5,
    )
    await flow.run_async()
    try:
        session = flow.session()
        for i in range(10):
            session.send_nowait("input", i)
        await gate.entered()
        with anyio.fail_after(HANG_GUARD_S):
            await flow.stop()
        stats = flow.statistics()
    finally:
        await release(flow, gate)
    thread = next((t for t in threading.enumerate() if t.name == "actorflow-n0-0"), None)
    if thread is not None:  # let the abandoned call return, then see what else ran
        await anyio.to_thread.run_sync(thread.join, HANG_GUARD_S)
    assert ran == [0, 1, 2, 3]
    assert stats.state in FINAL_STATES
    node = stats.nodes["n0"]
    assert (node.abandoned, node.abandoned_threads) == (1, ("actorflow-n0-0",))
    ledger = stats.sessions[session.id]
    assert (ledger.sent, ledger.cancelled, ledger.delivered) == (10, 10, 0)
    assert ledger.balanced
    assert stats.balanced


async def test_a_thread_unit_inside_a_chain_keeps_every_ledger_closed() -> None:
    """Bursts under backpressure (mailboxes of 2), with a filter: nothing lost or doubled."""

    @af.flowunit(register=False)
    def odd_only(x: int) -> int | None:
        return x if x % 2 else None

    flow = af.Flow(
        session_graph("double", "odd_only", "addone", queue_size=2),
        registry=registry_with(double, odd_only, AddOne),
    )
    async with flow:
        results = await run_session(flow, list(range(300)))
        stats = flow.statistics()
    assert results == []  # 2 * x is never odd: every item filtered
    assert stats.nodes["n1"].filtered == 300
    assert stats.balanced
    for ledger in stats.sessions.values():
        assert ledger.balanced, ledger


class StuckClock:
    """Restart backoff that never ends: the replica waits in it until stopped."""

    def __init__(self) -> None:
        self.sleeping = anyio.Event()

    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        await anyio.Event().wait()


async def test_stop_during_a_restart_counts_the_carried_items_as_cancelled() -> None:
    """The items after a fatal error wait in the replica while it restarts: a stop then
    must still account for every one of them."""
    clock = StuckClock()
    flow = af.Flow(
        session_graph("fragile_thread", queue_size=32),
        registry=registry_with(fragile_thread),
        clock=clock,
        stop_grace=0.2,
        close_timeout=0.5,
    )
    await flow.run_async()
    session = flow.session()
    for item in range(12):  # one burst; item 5 raises the fatal error
        session.send_nowait("input", item)
    with anyio.fail_after(HANG_GUARD_S):
        await clock.sleeping.wait()
        await flow.stop()
    stats = flow.statistics()
    ledger = stats.sessions[session.id]
    assert (ledger.sent, ledger.delivered, ledger.failed, ledger.cancelled) == (12, 5, 1, 6)
    assert ledger.balanced, ledger
    assert stats.balanced
    assert stats.state in FINAL_STATES


@af.flowunit(register=False)
def inc_thread(x: int) -> int:
    return x + 1


@af.flowunit(register=False)
def drop_thirds(x: int) -> int | None:
    return None if x % 3 == 0 else x


@af.flowunit(register=False)
def fail_fives(x: int) -> int:
    if x % 5 == 0:
        raise ValueError(f"five {x}")
    return x


STAGES = {"inc_thread": inc_thread, "drop_thirds": drop_thirds, "fail_fives": fail_fives}


def reference(stages: list[str], x: int) -> int | str | None:
    """What a chain of stages makes of ``x``: a value, ``None`` (filtered) or "error"."""
    for stage in stages:
        if stage == "inc_thread":
            x += 1
        elif stage == "drop_thirds" and x % 3 == 0:
            return None
        elif stage == "fail_fives" and x % 5 == 0:
            return "error"
    return x


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    stages=st.lists(st.sampled_from(sorted(STAGES)), min_size=1, max_size=4),
    queue_size=st.integers(1, 4),
    count=st.integers(0, 60),
    replicas=st.integers(1, 3),
)
async def test_random_chains_of_thread_units_give_the_sequential_answers(
    stages: list[str], queue_size: int, count: int, replicas: int
) -> None:
    """Bursts of any size, on one replica or several, under backpressure, never change a
    result, its order, or a ledger: compared with the chain computed item by item."""
    flow = af.Flow(
        session_graph(*stages, queue_size=queue_size, replicas=replicas),
        registry=registry_with(*{STAGES[s] for s in stages}),
    )
    async with flow:
        with anyio.fail_after(HANG_GUARD_S):
            results = await run_session(flow, list(range(count)))
        stats = flow.statistics()
    expected = [(i, reference(stages, i)) for i in range(count)]
    expected = [(i, v) for i, v in expected if v is not None]
    got = [(r.seq, r.data if r.ok else "error") for r in results]
    assert got == expected
    assert stats.balanced
    for ledger in stats.sessions.values():
        assert ledger.balanced, ledger


async def test_stop_while_one_replica_is_blocked_accounts_for_every_numbered_item() -> None:
    """Replicas: one run blocks in its thread, the other replica goes on; a stop must
    end both and account for every item, including outputs held for re-ordering."""
    gate = Gate()

    @af.flowunit(register=False, name="stuck")
    def stuck(x: int) -> int:
        if x == 3:
            gate.block()
        return x

    flow = af.Flow(
        session_graph("stuck", queue_size=40, replicas=2),
        registry=registry_with(stuck),
        stop_grace=0.2,
        close_timeout=0.5,
    )
    await flow.run_async()
    try:
        session = flow.session()
        for i in range(40):
            session.send_nowait("input", i)
        await gate.entered()
        with anyio.fail_after(HANG_GUARD_S):
            await flow.stop()
        stats = flow.statistics()
    finally:
        await release(flow, gate)
    assert stats.state in FINAL_STATES
    node = stats.nodes["n0"]
    assert node.abandoned == 1
    ledger = stats.sessions[session.id]
    assert ledger.sent == 40
    assert ledger.delivered <= 3  # nothing after the blocked item 3 leaves, in order
    assert ledger.balanced, ledger
    assert stats.balanced


async def test_stop_during_a_replicas_restart_counts_its_numbered_items_as_cancelled() -> None:
    clock = StuckClock()
    flow = af.Flow(
        session_graph("fragile_thread", queue_size=32, replicas=2),
        registry=registry_with(fragile_thread),
        clock=clock,
        stop_grace=0.2,
        close_timeout=0.5,
    )
    await flow.run_async()
    session = flow.session()
    for item in range(30):  # item 5 raises the fatal error inside a run
        session.send_nowait("input", item)
    with anyio.fail_after(HANG_GUARD_S):
        await clock.sleeping.wait()
        await flow.stop()
    stats = flow.statistics()
    ledger = stats.sessions[session.id]
    assert ledger.sent == 30
    assert ledger.failed == 1
    assert ledger.delivered <= 5  # outputs after item 5 wait for it, in order
    assert ledger.cancelled >= 1
    assert ledger.balanced, ledger
    assert stats.balanced
    assert stats.state in FINAL_STATES
