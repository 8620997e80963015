"""Random graph shapes (Hypothesis): every run ends, and every node's ledger closes.

Layered DAGs of up to seven nodes: one-input nodes (``x + 1`` as a ``FlowUnit`` class,
an async ``@flowunit`` or a plain-``def`` one, sometimes failing, sometimes
replicated) and two-input joins, fed by one source, with random edge policies; every
node without consumers feeds a sink. Whatever the shape, the flow must reach its end
(no deadlock between bounded mailboxes, joins and markers) and account for every
packet. Where no edge may drop, every sink must also receive exactly the values the
graph computes item by item, in order: each unit kind takes its own loop (the hop fast
path, packet reuse, thread bursts, numbered runs), and none may change a result.
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


@af.flowunit(register=False)
async def add_one_async(x: int, *, fail_on: tuple[int, ...] = ()) -> int:
    if x in fail_on:
        raise ZeroDivisionError(f"boom at {x}")
    return x + 1


@af.flowunit(register=False)
def add_one_thread(x: int, *, fail_on: tuple[int, ...] = ()) -> int:
    if x in fail_on:
        raise ZeroDivisionError(f"boom at {x}")
    return x + 1


KINDS = {"class": AddOne, "async": add_one_async, "thread": add_one_thread}


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
                "kind": draw(st.sampled_from(sorted(KINDS))),
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
        fail_on = tuple(sorted(spec["fail_on"]))
        unit = Join() if len(parents) == 2 else KINDS[spec["kind"]](fail_on=fail_on)
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
    if all(spec["policy"] == "block" for spec in shape):
        values = expected_values(shape, count)
        leaves = [i for i in range(len(shape)) if i not in used]
        for leaf, sink in zip(leaves, sinks, strict=True):
            assert sink.items == [v for v in values[leaf] if v is not None], (leaf, shape)


def expected_values(shape: list[dict[str, Any]], count: int) -> list[list[int | None]]:
    """Each node's output per input item, computed item by item; ``None``: failed."""
    values: list[list[int | None]] = []
    for spec in shape:
        column: list[int | None] = []
        for i in range(count):
            ins = [i if p < 0 else values[p][i] for p in spec["parents"]]
            if any(v is None for v in ins):
                column.append(None)
            elif len(ins) == 2:
                column.append(ins[0] + ins[1])  # type: ignore[operator]
            else:
                column.append(None if ins[0] in spec["fail_on"] else ins[0] + 1)  # type: ignore[operator]
        values.append(column)
    return values
