"""The videoflow-style Python builder."""

from __future__ import annotations

import pytest
from support.units import AddOne, Collect, Numbers

import actorflow as af

pytestmark = pytest.mark.anyio


def test_calling_a_unit_twice_raises_runtime_error() -> None:
    src = Numbers()
    unit = AddOne()(src)
    with pytest.raises(RuntimeError, match="already connected"):
        unit(src)


def test_a_cycle_raises_a_value_error_naming_it() -> None:
    a, b = AddOne(), AddOne()
    a(b)
    b(a)
    with pytest.raises(ValueError, match=r"cycle: add_one(_2)? -> add_one(_2)? -> add_one") as info:
        af.Flow([], [a])
    assert isinstance(info.value, af.GraphCycleError)


async def test_several_producers_run_together() -> None:
    one, two = Numbers(count=3).options(id="one"), Numbers(count=4).options(id="two")
    left, right = Collect()(one), Collect()(two)
    flow = af.Flow([one, two], [left, right])
    await flow.run_async()
    assert await flow.wait(5) is af.Status.STOP
    assert (left.items, right.items) == ([0, 1, 2], [0, 1, 2, 3])
    assert set(flow.statistics().sessions) == {1, 2}  # one stream per source


def test_node_ids_are_unique_and_options_apply() -> None:
    src = Numbers()
    a = AddOne().options(replicas=2, queue_size=3)(src)
    b = AddOne()(a)
    flow = af.Flow([src], [Collect()(b)])
    graph = flow.graph
    assert graph is not None
    ids = sorted(n.id for n in graph.nodes)
    assert ids == ["add_one", "add_one_2", "collect", "numbers"]
    node = next(n for n in graph.nodes if n.instance is a)
    assert (node.replicas, node.queue_size) == (2, 3)
