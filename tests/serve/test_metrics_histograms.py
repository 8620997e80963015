"""Latency and batch-size histograms, edge drops by policy and session counts in /metrics,
parsed with prometheus-client's parser and compared with ``flow.statistics()``."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from actorflow.runtime import Flow
from actorflow.serve import build_app
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]

ITEMS = 64


class _Batcher(FlowUnit):
    name = "test_metrics_batcher"
    x = Input("x")
    y = Output("y")
    done: Any = None
    """Set when the batcher has seen every item (a new event per test)."""

    def __init__(self) -> None:
        self.seen = 0

    async def process_batch(self, ctx: Context, packets: list[Packet[Any]]) -> None:
        for packet in packets:
            await ctx.emit("y", packet.replace(packet.data * 2))
        self.seen += len(packets)
        if self.seen == ITEMS:
            type(self).done.set()


class _Gated(FlowUnit):
    """Holds its first packet until the batcher has seen every item."""

    name = "test_metrics_gated"
    x = Input("x")
    y = Output("y")

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await _Batcher.done.wait()
        await ctx.emit("y", packet)


GRAPH = {
    "name": "histograms",
    "nodes": {
        "x": {"type": "input"},
        "batch": {"flowunit": "test_metrics_batcher", "batch_size": 8, "batch_timeout": 0.05},
        "gated": {"flowunit": "test_metrics_gated", "queue_size": 1},
        "y": {"type": "output"},
    },
    "edges": [
        "x -> batch:x",
        {"from": "batch:y", "to": "gated:x", "policy": "drop_newest"},
        "gated:y -> y",
    ],
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def node_labels(node: str, unit: str, **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"node": node, "unit": unit, **more}.items()))


async def test_histograms_and_drops_in_metrics_match_statistics() -> None:
    _Batcher.done = anyio.Event()
    flow = Flow(GRAPH)
    async with TestClient(TestServer(build_app(flow, dashboard=False), host="127.0.0.1")) as c:
        session = flow.session()
        for i in range(ITEMS):
            await session.send("x", i)
        await session.close()
        results = [r async for r in session]
        text = await (await c.get("/metrics")).text()
        stats = flow.statistics()
    got = samples(text)
    batch, gated = stats.nodes["batch"], stats.nodes["gated"]
    labels = node_labels("batch", "test_metrics_batcher")
    assert got[("actorflow_node_latency_seconds_count", labels)] == batch.batches
    assert got[("actorflow_node_batch_size_count", labels)] == batch.batches
    assert got[("actorflow_node_batch_size_sum", labels)] == ITEMS
    assert batch.batch_sizes.sum == ITEMS
    cumulative = [
        got[
            (
                "actorflow_node_latency_seconds_bucket",
                node_labels("batch", "test_metrics_batcher", le=le),
            )
        ]
        for le in [f"{b:g}" for b in batch.latency.bounds] + ["+Inf"]
    ]
    assert cumulative == sorted(cumulative)
    assert cumulative[-1] == batch.batches
    gated_labels = node_labels("gated", "test_metrics_gated")
    assert got[("actorflow_node_latency_seconds_count", gated_labels)] == gated.processed
    edge = stats.edges["batch:y -> gated:x"]
    assert edge.policy == "drop_newest"
    assert edge.dropped >= ITEMS - 2  # the gate holds one, the lane one more
    key = ("actorflow_edge_dropped_total", (("edge", edge.edge), ("policy", "drop_newest")))
    assert got[key] == edge.dropped
    assert gated.received == gated.processed + gated.dropped == ITEMS
    assert len(results) == ITEMS - edge.dropped
    assert got[("actorflow_sessions_open", ())] == stats.sessions_open
    assert got[("actorflow_sessions_finished_total", ())] == stats.sessions_finished
    assert stats.sessions_finished == 1  # ours; the open one is the server's shared session
    assert stats.balanced
