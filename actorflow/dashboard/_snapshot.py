"""What the page shows, as JSON: the graph once, then statistics with rates, repeatedly.

Pure functions over ``Graph`` and ``FlowStatistics`` (plus the frame hub's counters),
so the page's figures are exactly ``flow.statistics()``'s. Rates (items/s, busy %) are
differences between two snapshots taken by one ``Snapshots`` object.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from actorflow.flowunits.dashboard.hub import FrameHub
from actorflow.graph import Graph
from actorflow.runtime import Flow, FlowStatistics

SESSION_ROWS = 50
"""Sessions listed on the page (the most recent ones)."""


def graph_layout(graph: Graph | None) -> dict[str, Any]:
    """Nodes in topological layers (layer = longest path from a node without inputs)."""
    if graph is None:
        return {"nodes": [], "edges": []}
    preds: dict[str, set[str]] = {n.id: set() for n in graph.nodes}
    for edge in graph.edges:
        preds[edge.dst.node].add(edge.src.node)
    layer: dict[str, int] = {}
    pending = [n.id for n in graph.nodes]
    while pending:  # terminates: validated graphs are acyclic
        rest = []
        for node in pending:
            if all(p in layer for p in preds[node]):
                layer[node] = 1 + max((layer[p] for p in preds[node]), default=-1)
            else:
                rest.append(node)
        if len(rest) == len(pending):  # a cycle: place what is left at the end
            top = max(layer.values(), default=-1) + 1
            layer.update(dict.fromkeys(rest, top))
            break
        pending = rest
    return {
        "nodes": [
            {"id": n.id, "unit": n.unit, "kind": n.kind, "layer": layer[n.id]} for n in graph.nodes
        ],
        "edges": [
            {"name": str(e), "src": e.src.node, "dst": e.dst.node, "policy": e.policy}
            for e in graph.edges
        ],
    }


def hello(flow: Flow, hub: FrameHub, *, interval: float, prefix: str) -> dict[str, Any]:
    """The first message on ``/dashboard/ws``: the flow's name and graph."""
    return {
        "type": "hello",
        "version": 1,
        "flow": flow.name,
        "graph": graph_layout(flow.graph),
        "hub": hub.name,
        "interval_s": interval,
        "prefix": prefix,
    }


class Snapshots:
    """Successive statistics messages; rates come from the previous one."""

    def __init__(self, flow: Flow, hub: FrameHub, prefix: str) -> None:
        self.flow, self.hub, self.prefix = flow, hub, prefix
        self._last: tuple[float, FlowStatistics] | None = None

    def take(self) -> dict[str, Any]:
        """One ``stats`` message (see ``docs/how-to/watch-a-flow.md``)."""
        now, stats = time.monotonic(), self.flow.statistics()
        previous = self._last
        self._last = (now, stats)
        dt = now - previous[0] if previous else 0.0
        before = previous[1].nodes if previous else {}
        nodes = []
        for node in stats.nodes.values():
            old = before.get(node.node)
            busy = (
                100.0 * (node.busy_s - old.busy_s) / dt / max(1, node.replicas)
                if old is not None and dt > 0
                else 0.0
            )
            nodes.append(
                {
                    "id": node.node,
                    "unit": node.unit,
                    "remote": _remote_replicas(node.info),
                    "replicas": node.replicas,
                    "state": _node_state(stats, node.in_flight),
                    "received": node.received,
                    "processed": node.processed,
                    "emitted": node.emitted,
                    "dropped": node.dropped,
                    "failed": node.failed,
                    "cancelled": node.cancelled,
                    "restarts": node.restarts,
                    "in_flight": node.in_flight,
                    "mailbox_used": node.mailbox_used,
                    "mailbox_size": node.mailbox_size,
                    "in_rate": _rate(node.received, old.received if old else None, dt),
                    "out_rate": _rate(node.emitted, old.emitted if old else None, dt),
                    "busy_pct": min(100.0, max(0.0, busy)),
                    "calls": node.latency.count,
                    "p50_ms": 1000 * node.latency.quantile(0.5),
                    "p95_ms": 1000 * node.latency.quantile(0.95),
                    "batches": node.batches,
                    "batch_mean": (
                        node.batch_sizes.sum / node.batch_sizes.count
                        if node.batch_sizes.count
                        else 0.0
                    ),
                    "balanced": node.balanced,
                }
            )
        sessions = sorted(stats.sessions.values(), key=lambda s: s.session, reverse=True)
        by_session = {s.session: s for s in stats.streams.values()}
        streams = [
            {**s.describe(), "mjpeg": f"{self.prefix}/mjpeg/{s.node}/{s.session}"}
            for s in self.hub.streams.values()
        ]
        return {
            "type": "stats",
            "flow": {
                "name": stats.name,
                "state": stats.state,
                "elapsed_s": stats.elapsed_s,
                "balanced": stats.balanced,
                "in_flight": sum(n.in_flight for n in stats.nodes.values()),
                "watchdog": stats.loop_blocked,
            },
            "nodes": nodes,
            "edges": [
                {
                    "name": e.edge,
                    "policy": e.policy,
                    "offered": e.offered,
                    "dropped": e.dropped,
                    "used": e.used,
                    "capacity": e.capacity,
                }
                for e in stats.edges.values()
            ],
            "sessions": {
                "open": stats.sessions_open,
                "finished": stats.sessions_finished,
                "rows": [
                    {
                        "id": s.session,
                        "sent": s.sent,
                        "delivered": s.delivered,
                        "dropped": s.dropped,
                        "failed": s.failed,
                        "cancelled": s.cancelled,
                        "balanced": s.balanced,
                        "open": s.in_flight,
                        "stream": by_session[s.session].stream if s.session in by_session else None,
                        "source": by_session[s.session].status if s.session in by_session else None,
                    }
                    for s in sessions[:SESSION_ROWS]
                ],
            },
            "streams": streams,
            "dashboard": self.hub.counters(),
        }


def _remote_replicas(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A node placed on Ray: its replicas (node id, in flight, p50, restarts)."""
    if info.get("placement") != "ray":
        return []
    return [
        {
            "replica": row["replica"],
            "node_id": row.get("node_id"),
            "alive": row.get("alive", True),
            "in_flight": row.get("in_flight", 0),
            "p50_ms": row.get("latency_ms_p50"),
            "restarts": row.get("restarts", 0),
        }
        for row in info.get("replicas", ())
    ]


def _node_state(stats: FlowStatistics, in_flight: int) -> str:
    if stats.state != "running":
        return stats.state
    return "busy" if in_flight else "idle"


def _rate(new: int, old: int | None, dt: float) -> float:
    return (new - old) / dt if old is not None and dt > 0 else 0.0
