"""Bounded mailboxes: backpressure by default, counted drops by policy."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from support.units import Collect, Numbers

import actorflow as af
from actorflow.runtime._mailbox import NOTHING, Inbox, Lane
from actorflow.runtime._markers import SessionEnd
from actorflow.unit import Packet

pytestmark = pytest.mark.anyio


def lane(capacity: int, policy: Any = "block") -> tuple[Inbox, Lane, list[Packet[Any]]]:
    inbox = Inbox()
    dropped: list[Packet[Any]] = []
    return (
        inbox,
        Lane(
            inbox,
            name="a -> b",
            port="in",
            capacity=capacity,
            policy=policy,
            on_drop=lambda p, _lane: dropped.append(p),
            on_cancel=lambda p: None,
        ),
        dropped,
    )


async def test_full_block_lane_makes_the_sender_wait() -> None:
    inbox, ln, _ = lane(1)
    assert ln.put_nowait(Packet(0))
    assert not ln.put_nowait(Packet(1))
    async with anyio.create_task_group() as tg:
        tg.start_soon(ln.put, Packet(1))
        await anyio.wait_all_tasks_blocked()
        assert len(ln.items) == 1  # blocked, not dropped
        assert (await inbox.take())[1].data == 0
    assert inbox.take_nowait()[1].data == 1
    assert ln.dropped == 0


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        pytest.param("drop_newest", [0, 1], id="drop_newest"),
        pytest.param("drop_oldest", [3, 4], id="drop_oldest"),
        pytest.param("latest", [4], id="latest"),
    ],
)
async def test_drop_policies_keep_the_right_items_and_count_the_rest(
    policy: str, kept: list[int]
) -> None:
    _inbox, ln, dropped = lane(2, policy)
    for i in range(5):
        assert ln.put_nowait(Packet(i))
    assert [item.data for item in ln.items] == kept  # type: ignore[union-attr]
    assert ln.dropped == len(dropped) == 5 - len(kept)
    assert ln.offered == 5


async def test_markers_bypass_capacity_and_are_never_dropped() -> None:
    inbox, ln, _ = lane(1, "drop_newest")
    ln.put_nowait(Packet(0))
    ln.put_marker(SessionEnd(1, (), "src"))
    ln.put_nowait(Packet(1))  # dropped: the lane holds one packet
    items = [inbox.take_nowait()[1], inbox.take_nowait()[1]]
    assert isinstance(items[1], SessionEnd)
    assert inbox.take_nowait() is NOTHING


async def test_slow_sink_holds_a_fast_source_back() -> None:
    """Backpressure: mailboxes never hold more than their capacity."""
    src = Numbers(count=None)
    sink = Collect(delay=0.002).options(queue_size=4)(src)
    flow = af.Flow([src], [sink], stop_grace=0.5)
    await flow.run_async()
    high = 0
    for _ in range(20):
        await anyio.sleep(0.005)  # sample while running
        stats = flow.statistics()
        high = max(high, stats.nodes["collect"].mailbox_used)
    await flow.stop()
    stats = flow.statistics()
    assert high <= 4
    assert stats.nodes["numbers"].processed <= stats.nodes["collect"].processed + 4 + 2
    assert stats.balanced


async def test_drop_policy_on_an_edge_counts_drops_in_the_ledger() -> None:
    src = Numbers(count=200)
    sink = Collect(delay=0.001).options(policy="drop_oldest", queue_size=2)(src)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    await flow.wait(10)
    node = flow.statistics().nodes["collect"]
    assert node.dropped > 0
    assert node.received == 200
    assert node.processed + node.dropped == 200
    (edge,) = flow.statistics().edges.values()
    assert (edge.policy, edge.dropped) == ("drop_oldest", node.dropped)
    (ledger,) = flow.statistics().sessions.values()
    assert ledger.dropped == node.dropped
    assert ledger.balanced


class LiveCamera(Numbers):
    """A source that, like a live camera, suggests ``latest`` for its edges."""

    def output_policy(self, port: str) -> str | None:
        return "latest"


async def test_a_unit_suggests_the_policy_of_its_edges_and_an_edge_can_override() -> None:
    src = LiveCamera(count=50)
    suggested = Collect(delay=0.001).options(id="slow")(src)
    explicit = Collect().options(id="every", policy="block")(src)
    flow = af.Flow([src], [suggested, explicit])
    await flow.run_async()
    await flow.wait(10)
    policies = {e.edge: e.policy for e in flow.statistics().edges.values()}
    assert policies == {
        "live_camera:out -> slow:in": "latest",
        "live_camera:out -> every:in": "block",
    }
    assert len(explicit.items) == 50
    assert len(suggested.items) < 50  # latest kept only the newest while the sink slept
