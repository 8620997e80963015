"""The ledger closes exactly under random failures, drops and replicas (Hypothesis)."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support.units import AddOne, Collect, Numbers

import actorflow as af
from actorflow.runtime import RestartPolicy

pytestmark = pytest.mark.anyio

NO_RESTART_LIMIT = RestartPolicy(max_restarts=10_000, window_s=1.0, backoff_initial_s=0.0)


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    count=st.integers(0, 120),
    fail_on=st.sets(st.integers(0, 120), max_size=15),
    replicas=st.integers(1, 3),
    policy=st.sampled_from(["block", "drop_oldest", "drop_newest", "latest"]),
    queue_size=st.integers(1, 8),
)
async def test_every_packet_is_delivered_dropped_failed_or_cancelled(
    count: int, fail_on: set[int], replicas: int, policy: str, queue_size: int
) -> None:
    src = Numbers(count=count)
    first = AddOne(fail_on=tuple(fail_on)).options(replicas=replicas)(src)
    second = AddOne().options(policy=policy, queue_size=queue_size)(first)
    sink = Collect()(second)
    flow = af.Flow([src], [sink], restart=NO_RESTART_LIMIT)
    with anyio.fail_after(10):
        await flow.run_async()
        assert await flow.wait() is af.Status.STOP
    stats = flow.statistics()
    for node in stats.nodes.values():
        assert node.in_flight == 0, node
    (ledger,) = stats.sessions.values()
    assert ledger.sent == count
    assert ledger.failed == len({i for i in fail_on if i < count})
    assert ledger.delivered == len(sink.items)
    assert ledger.balanced, ledger


@settings(
    max_examples=15,
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(stop_after=st.integers(0, 30), replicas=st.integers(1, 3))
async def test_ledger_closes_when_stopped_mid_stream(stop_after: int, replicas: int) -> None:
    src = Numbers(count=None)
    middle = AddOne(delay=0.0005).options(replicas=replicas, queue_size=4)(src)
    sink = Collect()(middle)
    flow = af.Flow([src], [sink], stop_grace=0.0)
    with anyio.fail_after(10):
        await flow.run_async()
        for _ in range(stop_after):
            await anyio.lowlevel.checkpoint()
        await flow.stop()
    stats = flow.statistics()
    assert all(node.in_flight == 0 for node in stats.nodes.values()), stats.nodes
    (ledger,) = stats.sessions.values()
    assert ledger.balanced, ledger
