"""Statistics: mutable counters on the hot path, frozen records for readers.

The ledger (DESIGN §5) holds per node and per session once a flow has finished::

    received       == processed + dropped + failed + cancelled                   (node)
    sent + spawned == delivered + dropped + filtered + failed + cancelled + merged (session)

(plus ``in_flight`` while running). For a session, ``delivered`` counts packets that
reached an output node or were consumed by a node without outgoing edges (a sink);
``filtered`` counts items a unit consumed without emitting anything (a ``@flowunit``
returning ``None``); ``spawned`` counts the extra packets fan-out and expand create
(one input, three consumers: two spawned), and ``merged`` the parts that joins and
collapses combine (two joined inputs: one merged). Every update goes through one
``Ledger`` (``_ledger.py``), so node and session counters move together.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from actorflow.runtime._node import NodeRuntime
    from actorflow.runtime._plan import Plan
    from actorflow.runtime._sessions import SessionTable
    from actorflow.runtime._streams import StreamStatistics
    from actorflow.unit import FlowUnit

FlowState = Literal["created", "built", "running", "draining", "stopped", "failed"]
"""Lifecycle states of a flow."""


LATENCY_BOUNDS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
"""Upper bounds (seconds) of the per-node latency buckets; one more bucket holds the rest."""

BATCH_BOUNDS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""Upper bounds of the per-node batch-size buckets."""


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Bucketed observations (Prometheus ``Histogram`` semantics, non-cumulative counts).

    ``counts[i]`` holds the observations ``v`` with ``bounds[i-1] < v <= bounds[i]``; the
    last count holds those above every bound (``+Inf``).
    """

    bounds: tuple[float, ...] = ()
    counts: tuple[int, ...] = (0,)
    sum: float = 0.0

    @property
    def count(self) -> int:
        """How many observations."""
        return sum(self.counts)

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0..1), interpolated inside its bucket.

        As Prometheus' ``histogram_quantile``: 0 without observations, the top bound
        when the quantile falls in the ``+Inf`` bucket.
        """
        total = self.count
        if not total:
            return 0.0
        rank = q * total
        seen = 0
        for i, n in enumerate(self.counts):
            if n and seen + n >= rank:
                if i == len(self.bounds):
                    return float(self.bounds[-1]) if self.bounds else 0.0
                low = float(self.bounds[i - 1]) if i else 0.0
                return low + (float(self.bounds[i]) - low) * (rank - seen) / n
            seen += n
        return float(self.bounds[-1]) if self.bounds else 0.0


class Buckets:
    """A mutable histogram on the hot path: one ``bisect`` and two additions per call."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float, n: int = 1) -> None:
        """Record ``n`` observations of ``value``."""
        self.counts[bisect_left(self.bounds, value)] += n
        self.total += value * n

    def snapshot(self) -> HistogramSnapshot:
        """A frozen copy."""
        return HistogramSnapshot(self.bounds, tuple(self.counts), self.total)


class NodeCounters:
    """Mutable counters of one node, updated by its replicas."""

    __slots__ = (
        "batch_sizes",
        "batches",
        "busy_s",
        "cancelled",
        "emitted",
        "failed",
        "filtered",
        "latency",
        "processed",
        "restarts",
        "unmatched",
        "upstream_failed",
    )

    def __init__(self) -> None:
        self.processed = 0
        self.failed = 0
        self.filtered = 0
        """Processed packets that produced no output (a subset of ``processed``)."""
        self.cancelled = 0
        self.emitted = 0
        self.restarts = 0
        self.busy_s = 0.0
        self.batches = 0
        self.upstream_failed = 0
        self.unmatched = 0
        """Half-joined packets dropped because their partner was dropped upstream."""
        self.latency = Buckets(LATENCY_BOUNDS)
        """Seconds per ``process``/``process_batch`` call (a batch is one observation)."""
        self.batch_sizes = Buckets(BATCH_BOUNDS)
        """Packets per ``process_batch`` call."""


class SessionCounters:
    """Mutable ledger of one session."""

    __slots__ = (
        "cancelled",
        "delivered",
        "dropped",
        "failed",
        "filtered",
        "merged",
        "sent",
        "spawned",
    )

    def __init__(self) -> None:
        self.sent = 0
        self.spawned = 0
        self.delivered = 0
        self.dropped = 0
        self.filtered = 0
        self.failed = 0
        self.cancelled = 0
        self.merged = 0

    def snapshot(self, session: int) -> SessionStatistics:
        """A frozen copy, for readers."""
        return SessionStatistics(
            session,
            self.sent,
            self.delivered,
            self.dropped,
            self.failed,
            self.cancelled,
            self.filtered,
            self.spawned,
            self.merged,
        )


@dataclass(frozen=True, slots=True)
class EdgeStatistics:
    """One edge's lane."""

    edge: str
    """``src:port -> dst:port``."""
    policy: str
    offered: int
    """Packets offered to the lane (accepted or dropped)."""
    dropped: int
    used: int
    capacity: int


@dataclass(frozen=True, slots=True)
class NodeStatistics:
    """One node's counters at the time ``statistics()`` was called."""

    node: str
    unit: str
    replicas: int
    received: int
    """Packets offered to the node's mailbox, including those its policies dropped."""
    processed: int
    """Packets handled successfully (joined parts and batch members count one each)."""
    filtered: int
    """Processed packets that produced no output (a unit returned ``None``)."""
    dropped: int
    """Packets discarded by the drop policies of edges into this node, and half-joined
    packets whose partner such a policy discarded upstream."""
    failed: int
    """Packets whose processing raised (and partners of failed packets at joins)."""
    cancelled: int
    """Packets left unprocessed by ``stop()``, cancellation or a session ``abort()``."""
    in_flight: int
    """Packets queued, held in a join, or being processed now (0 once the flow ended)."""
    emitted: int
    """Packets sent on the node's outputs."""
    restarts: int
    mailbox_used: int
    mailbox_size: int
    busy_s: float
    """Seconds spent inside ``process``/``process_batch`` (all replicas)."""
    batches: int
    upstream_failed: int
    """Failure markers that passed through (failures counted where they happened)."""
    abandoned: int = 0
    """Thread calls still running when their task was cancelled (at stop): the packet is
    counted as cancelled and the call's result discarded."""
    abandoned_threads: tuple[str, ...] = ()
    """Names of the threads those calls ran on."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """What the unit reports about itself (``FlowUnit.describe()``), e.g. ONNX providers."""
    latency: HistogramSnapshot = field(default_factory=HistogramSnapshot)
    """Seconds per ``process``/``process_batch`` call; a batch counts once. Simple async
    function units are timed per burst of back-to-back packets, each packet observed at
    the burst's mean (two clock reads per packet would cost a tenth of a hop)."""
    batch_sizes: HistogramSnapshot = field(default_factory=HistogramSnapshot)
    """Packets per ``process_batch`` call (empty for nodes that do not batch)."""

    @property
    def latency_s(self) -> float:
        """Mean seconds of busy time per processed packet (0 before the first one)."""
        return self.busy_s / self.processed if self.processed else 0.0

    @property
    def balanced(self) -> bool:
        """Whether the ledger closes: nothing in flight, nothing counted twice."""
        return self.in_flight == 0


@dataclass(frozen=True, slots=True)
class SessionStatistics:
    """One session's ledger."""

    session: int
    sent: int
    delivered: int
    dropped: int
    failed: int
    cancelled: int
    filtered: int = 0
    """Items a unit consumed without output (a filter)."""
    spawned: int = 0
    """Extra packets created by fan-out and expand."""
    merged: int = 0
    """Parts combined into one by joins and collapses."""

    @property
    def in_flight(self) -> int:
        """Packets of the session not accounted for yet (0 once it ended)."""
        outcomes = self.delivered + self.dropped + self.filtered + self.failed + self.cancelled
        return self.sent + self.spawned - outcomes - self.merged

    @property
    def balanced(self) -> bool:
        """Whether every packet of the session is accounted for (see the module docstring)."""
        return self.in_flight == 0


@dataclass(frozen=True, slots=True)
class FlowStatistics:
    """A snapshot of a flow: per node, per edge and per session."""

    name: str
    state: FlowState
    nodes: Mapping[str, NodeStatistics]
    edges: Mapping[str, EdgeStatistics]
    sessions: Mapping[int, SessionStatistics]
    elapsed_s: float
    """Seconds since the flow started running (0 before)."""
    sessions_open: int = 0
    """External sessions that have not reached their end yet."""
    sessions_finished: int = 0
    """External sessions that reached their end (only the latest 1000 stay in ``sessions``)."""
    loop_blocked: int = 0
    """Times the loop watchdog saw the event loop blocked past its threshold."""
    streams: Mapping[str, StreamStatistics] = field(default_factory=dict)
    """Sources added to the running flow (``add_source``), by stream id."""

    @property
    def balanced(self) -> bool:
        """Whether every node's and every session's ledger holds."""
        return all(n.balanced for n in self.nodes.values()) and all(
            s.balanced for s in self.sessions.values()
        )


def node_statistics(node: NodeRuntime, unit: FlowUnit, is_source: bool) -> NodeStatistics:
    """A snapshot of one node; ``in_flight`` is what the ledger does not account for yet."""
    c = node.counters
    lanes = node.inbox.lanes
    dropped = sum(lane.dropped for lane in lanes) + c.unmatched
    cancelled = c.cancelled + sum(lane.cancelled for lane in lanes)
    received = c.processed if is_source else sum(lane.offered for lane in lanes)
    in_flight = received - c.processed - dropped - c.failed - cancelled
    return NodeStatistics(
        node=node.id,
        unit=node.unit_cls.name or node.unit_cls.__name__,
        replicas=node.spec.replicas,
        received=received,
        processed=c.processed,
        filtered=c.filtered,
        dropped=dropped,
        failed=c.failed,
        cancelled=cancelled,
        in_flight=in_flight,
        emitted=c.emitted,
        restarts=c.restarts,
        mailbox_used=node.inbox.used(),
        mailbox_size=node.inbox.capacity(),
        busy_s=c.busy_s,
        batches=c.batches,
        upstream_failed=c.upstream_failed,
        abandoned=node.executor.abandoned,
        abandoned_threads=tuple(node.executor.abandoned_threads),
        info=dict(unit.describe()),
        latency=c.latency.snapshot(),
        batch_sizes=c.batch_sizes.snapshot(),
    )


def edge_statistics(node: NodeRuntime) -> dict[str, EdgeStatistics]:
    """Snapshots of the lanes into ``node``, by edge text."""
    return {
        lane.name: EdgeStatistics(
            lane.name, lane.policy, lane.offered, lane.dropped, len(lane.items), lane.capacity
        )
        for lane in node.inbox.lanes
    }


def flow_statistics(
    name: str,
    state: FlowState,
    plan: Plan,
    sessions: SessionTable,
    *,
    elapsed: float,
    loop_blocked: int,
    streams: Mapping[str, StreamStatistics],
) -> FlowStatistics:
    """A snapshot of a whole flow: every node, edge and session."""
    nodes: dict[str, NodeStatistics] = {}
    edges: dict[str, EdgeStatistics] = {}
    for node in plan.nodes.values():
        unit = plan.units[node.id][0]
        nodes[node.id] = node_statistics(node, unit, plan.is_source(node.id))
        edges.update(edge_statistics(node))
    return FlowStatistics(
        name,
        state,
        nodes,
        edges,
        sessions.statistics(),
        elapsed,
        sessions_open=len(sessions.open),
        sessions_finished=sessions.finished,
        loop_blocked=loop_blocked,
        streams=streams,
    )
