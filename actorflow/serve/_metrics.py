"""Prometheus metrics for a served flow, read from ``flow.statistics()`` at scrape time.

Every name is listed, with its labels and meaning, in ``docs/reference/metrics.md``.
Each app owns a ``CollectorRegistry`` (never the process-global one), holding a custom
``FlowCollector`` and the server's own request histograms, so two apps in one process
(or one test session) never share or clash on metric state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_NODE_COUNTERS = (
    ("received", "Packets offered to the node's mailbox (in)."),
    ("processed", "Packets the node handled successfully."),
    ("emitted", "Packets the node sent on its outputs (out)."),
    ("dropped", "Packets dropped by the edge policies into the node."),
    ("failed", "Packets whose processing raised."),
    ("cancelled", "Packets left unprocessed by stop, cancellation or session abort."),
    ("restarts", "Times the node was restarted after a failure."),
    ("batches", "Batches the node processed."),
    ("filtered", "Packets the node processed without emitting anything (filters)."),
    ("abandoned", "Thread calls still blocked when their task was cancelled at stop."),
)
_SINK_COUNTERS = (
    ("accepted", "Items a network sink took responsibility for."),
    ("delivered", "Items a network sink delivered (2xx; written or acknowledged on a WebSocket)."),
    ("retried", "Extra HTTP attempts, or WebSocket re-sends after a reconnect."),
    ("dead_lettered", "Items a network sink wrote to its dead-letter record."),
)
_NODE_GAUGES = (
    ("in_flight", "Packets queued or being processed now."),
    ("mailbox_used", "Packets waiting in the node's mailbox."),
    ("mailbox_size", "Capacity of the node's mailbox."),
)


def histogram_buckets(snapshot: Any) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs of a ``HistogramSnapshot``, ending with ``+Inf``."""
    out: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(snapshot.bounds, snapshot.counts, strict=False):
        running += count
        out.append((f"{float(bound):g}", running))
    out.append(("+Inf", snapshot.count))
    return out


class FlowCollector(Collector):
    """Turns one ``FlowStatistics`` snapshot per scrape into metric families."""

    def __init__(self, statistics: Callable[[], Any]) -> None:
        self._statistics = statistics

    def describe(self) -> list[Metric]:
        """No up-front description: the node set is only known at scrape time."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Per-node counters and gauges, per-edge drops and the sessions' ledger."""
        stats = self._statistics()
        labels = ["node", "unit"]
        counters = {
            name: CounterMetricFamily(f"actorflow_node_{name}", doc, labels=labels)
            for name, doc in _NODE_COUNTERS
        }
        busy = CounterMetricFamily(
            "actorflow_node_busy_seconds", "Seconds spent in process/process_batch.", labels=labels
        )
        gauges = {
            name: GaugeMetricFamily(f"actorflow_node_{name}", doc, labels=labels)
            for name, doc in _NODE_GAUGES
        }
        mean = GaugeMetricFamily(
            "actorflow_node_mean_latency_seconds",
            "busy seconds per processed packet (0 before the first)",
            labels=labels,
        )
        for node in stats.nodes.values():
            values = [node.node, node.unit]
            for name, family in counters.items():
                family.add_metric(values, getattr(node, name))
            for name, gauge in gauges.items():
                gauge.add_metric(values, getattr(node, name))
            busy.add_metric(values, node.busy_s)
            mean.add_metric(values, node.busy_s / node.processed if node.processed else 0.0)
        yield from counters.values()
        yield busy
        yield from gauges.values()
        yield mean
        yield from _sink_families(stats.nodes.values(), labels)
        yield from _node_histograms(stats, labels)
        yield from _stream_families(stats.streams.values())
        yield from _ray_families(stats.nodes.values())
        edge_drops = CounterMetricFamily(
            "actorflow_edge_dropped",
            "Packets dropped on an edge by its policy.",
            labels=["edge", "policy"],
        )
        queued = GaugeMetricFamily(
            "actorflow_edge_queued", "Packets waiting on an edge now.", labels=["edge", "policy"]
        )
        capacity = GaugeMetricFamily(
            "actorflow_edge_capacity", "Capacity of an edge's lane.", labels=["edge", "policy"]
        )
        for edge in stats.edges.values():
            edge_drops.add_metric([edge.edge, edge.policy], edge.dropped)
            queued.add_metric([edge.edge, edge.policy], edge.used)
            capacity.add_metric([edge.edge, edge.policy], edge.capacity)
        yield edge_drops
        yield queued
        yield capacity
        sessions = GaugeMetricFamily(
            "actorflow_sessions", "Sessions whose ledgers statistics() holds (recent ones)."
        )
        sessions.add_metric([], len(stats.sessions))
        yield sessions
        open_ = GaugeMetricFamily("actorflow_sessions_open", "Sessions not finished yet.")
        open_.add_metric([], stats.sessions_open)
        yield open_
        finished = CounterMetricFamily("actorflow_sessions_finished", "Sessions that ended.")
        finished.add_metric([], stats.sessions_finished)
        yield finished
        ledger = CounterMetricFamily(
            "actorflow_session_items", "Session ledger, summed over sessions.", labels=["outcome"]
        )
        for outcome in SESSION_OUTCOMES:
            ledger.add_metric([outcome], sum(getattr(s, outcome) for s in stats.sessions.values()))
        yield ledger
        state = GaugeMetricFamily(
            "actorflow_flow_state", "1 for the flow's current state.", labels=["state"]
        )
        state.add_metric([stats.state], 1)
        yield state


SESSION_OUTCOMES = (
    "sent",
    "spawned",
    "delivered",
    "dropped",
    "filtered",
    "failed",
    "cancelled",
    "merged",
)
"""The fields of a session's ledger (``sent + spawned`` balance the others)."""

_STREAM_COUNTERS = (
    ("items", "Items a stream's source produced (sent or dropped)."),
    ("results", "Results of a stream's items."),
    ("errors", "Items of a stream whose processing failed."),
    ("dropped", "Items a live stream dropped because the graph was full."),
)
STREAM_STATES = ("connecting", "live", "reconnecting", "ended", "failed", "removed")


def _stream_families(streams: Iterable[Any]) -> Iterator[Metric]:
    """``actorflow_stream_*`` per stream added with ``add_source`` (``/v1/streams``)."""
    labels = ["stream", "source"]
    counters = {
        name: CounterMetricFamily(f"actorflow_stream_{name}", doc, labels=labels)
        for name, doc in _STREAM_COUNTERS
    }
    status = GaugeMetricFamily(
        "actorflow_stream_status",
        "1 for the stream's current status (connecting, live, reconnecting, ...), else 0.",
        labels=[*labels, "status"],
    )
    for stream in streams:
        values = [stream.stream, stream.source]
        for name, family in counters.items():
            family.add_metric(values, getattr(stream, name))
        for state in STREAM_STATES:
            status.add_metric([*values, state], float(stream.status == state))
    yield from counters.values()
    yield status


_RAY_COUNTERS = (
    ("calls", "Calls a Ray replica completed."),
    ("failed", "Packets that failed on a Ray replica (its unit raised, or it died)."),
    ("restarts", "Times a Ray replica's actor was replaced."),
)


def _ray_families(nodes: Iterable[Any]) -> Iterator[Metric]:
    """``actorflow_ray_replica_*`` for nodes placed on Ray (``describe()["replicas"]``)."""
    labels = ["node", "replica", "ray_node_id"]
    counters = {
        name: CounterMetricFamily(f"actorflow_ray_replica_{name}", doc, labels=labels)
        for name, doc in _RAY_COUNTERS
    }
    in_flight = GaugeMetricFamily(
        "actorflow_ray_replica_in_flight",
        "Packets sent to a Ray replica, not back.",
        labels=labels,
    )
    latency = GaugeMetricFamily(
        "actorflow_ray_replica_latency_p50_seconds",
        "Median seconds per call on a Ray replica (recent calls).",
        labels=labels,
    )
    for node in nodes:
        if node.info.get("placement") != "ray":
            continue
        for row in node.info.get("replicas", ()):
            values = [node.node, str(row["replica"]), str(row.get("node_id") or "")]
            for name, family in counters.items():
                family.add_metric(values, row.get(name, 0))
            in_flight.add_metric(values, row.get("in_flight", 0))
            if row.get("latency_ms_p50") is not None:
                latency.add_metric(values, row["latency_ms_p50"] / 1000)
    yield from counters.values()
    yield in_flight
    yield latency


def _sink_families(nodes: Iterable[Any], labels: list[str]) -> Iterator[Metric]:
    """``actorflow_sink_*`` for the nodes whose unit reports ``describe()["sink"]``."""
    counters = {
        name: CounterMetricFamily(f"actorflow_sink_{name}", doc, labels=labels)
        for name, doc in _SINK_COUNTERS
    }
    pending = GaugeMetricFamily(
        "actorflow_sink_pending",
        "Items a network sink accepted and has not settled yet.",
        labels=labels,
    )
    for node in nodes:
        sink = node.info.get("sink")
        if isinstance(sink, Mapping):
            values = [node.node, node.unit]
            for name, family in counters.items():
                family.add_metric(values, sink.get(name, 0))
            pending.add_metric(values, sink.get("pending", 0))
    yield from counters.values()
    yield pending


def _node_histograms(stats: Any, labels: list[str]) -> Iterator[Metric]:
    latency = HistogramMetricFamily(
        "actorflow_node_latency_seconds",
        "Seconds per process/process_batch call (a batch counts once).",
        labels=labels,
    )
    batch = HistogramMetricFamily(
        "actorflow_node_batch_size", "Packets per process_batch call.", labels=labels
    )
    for node in stats.nodes.values():
        values = [node.node, node.unit]
        latency.add_metric(values, histogram_buckets(node.latency), node.latency.sum)
        batch.add_metric(values, histogram_buckets(node.batch_sizes), node.batch_sizes.sum)
    yield latency
    yield batch


class ServerMetrics:
    """The server's own metrics, in a registry of its own, plus the flow collector."""

    def __init__(self, statistics: Callable[[], Any]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(FlowCollector(statistics))
        self.latency = Histogram(
            "actorflow_request_seconds",
            "Request latency by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "actorflow_requests",
            "Requests by endpoint and status.",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "actorflow_admission_rejected",
            "Requests answered 429 by admission control.",
            ["reason"],
            registry=self.registry,
        )
        self.active = Gauge(
            "actorflow_active_sessions", "Sessions being served now.", registry=self.registry
        )
        self.slow_clients = Counter(
            "actorflow_ws_slow_clients_closed",
            "WebSocket clients closed (1008) for leaving their send buffer full.",
            registry=self.registry,
        )
        self.dropped_results = Counter(
            "actorflow_ws_results_dropped",
            "Results encoded for a slow WebSocket client and never sent (it was closed).",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
