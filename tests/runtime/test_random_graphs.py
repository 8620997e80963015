"""Random graph shapes (Hypothesis): every run ends, and every node's ledger closes.

Layered DAGs of up to seven nodes: one-input nodes (``AddOne``, sometimes failing,
sometimes replicated) and two-input joins, fed by one source, with random edge
policies; every node without consumers feeds a sink. Whatever the shape, the flow must
reach its end (no deadlock between bounded mailboxes, joins and markers) and account
for every packet.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support.units import AddOne, Collect, Numbers

import actorflow as af
from actorflow.runtime import RestartPolicy

pytestmark = pytest.mark.anyio

LENIENT = RestartPolicy(max_restarts=10_000, window_s=1.0, backoff_initial_s=0.0)


class Join(af.FlowUnit):
    left = af.Input("left")
    right = af.Input("right")
    out = af.Output("out")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        await ctx.emit(self.out, packet.replace(packet.data["left"] + packet.data["right"]))


@st.composite
def shapes(draw: st.DrawFn) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 6))):
        parents = draw(st.lists(st.integers(-1, i - 1), min_size=1, max_size=2, unique=True))
        nodes.append(
            {
                "parents": parents,
                "fail_on": draw(st.sets(st.integers(0, 40), max_size=4)),
                "replicas": draw(st.integers(1, 2)),
                "policy": draw(st.sampled_from(["block", "block", "drop_oldest", "latest"])),
                "queue_size": draw(st.integers(1, 4)),
            }
        )
    return nodes


@settings(
    max_examples=30,
    deadline=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(shape=shapes(), count=st.integers(0, 40))
async def test_random_graphs_end_and_account_for_every_packet(
    shape: list[dict[str, Any]], count: int
) -> None:
    src = Numbers(count=count)
    built: list[af.FlowUnit] = []
    used: set[int] = set()
    for i, spec in enumerate(shape):
        parents = [src if p < 0 else built[p] for p in spec["parents"]]
        used.update(p for p in spec["parents"] if p >= 0)
        options = {
            "id": f"n{i}",
            "replicas": spec["replicas"],
            "policy": spec["policy"],
            "queue_size": spec["queue_size"],
        }
        unit = Join() if len(parents) == 2 else AddOne(fail_on=tuple(spec["fail_on"]))
        built.append(unit.options(**options)(*parents))
    sinks = [Collect()(unit) for i, unit in enumerate(built) if i not in used]
    flow = af.Flow([src], sinks, restart=LENIENT)
    with anyio.fail_after(20):
        await flow.run_async()
        assert await flow.wait() is af.Status.STOP
    stats = flow.statistics()
    for node in stats.nodes.values():
        assert node.in_flight == 0, node
    assert stats.balanced
