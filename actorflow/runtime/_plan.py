"""The wiring of a built flow: node runtimes, lanes, and marker bookkeeping.

``Plan`` turns a validated ``Graph`` into ``NodeRuntime`` objects connected by lanes.
``input`` nodes become lists of lanes that sessions write into; ``output`` nodes become
``OutputSender`` objects that route results to sessions. It also precomputes, for every
origin of markers (the session inputs, each source, each expanding node), how many
lanes into each node carry that origin's markers, so a node forwards a marker exactly
once, after it came from every path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actorflow.errors import UnitConfigError
from actorflow.graph import POLICIES, Graph
from actorflow.runtime._inputs import input_check
from actorflow.runtime._mailbox import Lane
from actorflow.runtime._node import FlowHooks, NodeRuntime, OutPort, Sender
from actorflow.runtime._session import INPUTS_ORIGIN, OutputSender
from actorflow.unit import FlowUnit, Packet, SourceUnit

if TYPE_CHECKING:
    from actorflow.runtime._session import Session
    from actorflow.runtime._stats import SessionCounters


class Plan:
    """Node runtimes and their lanes for one built flow."""

    def __init__(self, graph: Graph, make_units: Callable[[str], list[FlowUnit]]) -> None:
        self.graph = graph
        self.order = [n.id for n in graph.nodes]
        self._kinds = {n.id: n.kind for n in graph.nodes}
        self.units: dict[str, list[FlowUnit]] = {}
        self.classes: dict[str, type[FlowUnit]] = {}
        for spec in graph.nodes:
            if spec.kind != "unit":
                continue
            units = make_units(spec.id)
            self.units[spec.id] = units
            self.classes[spec.id] = type(units[0])
        self.nodes: dict[str, NodeRuntime] = {}
        self.input_lanes: dict[str, list[Sender]] = {n: [] for n in graph.inputs}
        self.input_checks: dict[str, Callable[[Any], None]] = {}
        """Type checks of values sent into each input node (``_inputs.py``)."""
        self._succ: dict[str, list[str]] = {n: [] for n in self.order}
        for edge in graph.edges:
            self._succ[edge.src.node].append(edge.dst.node)
        self._expected: dict[tuple[str, str], int] = {}
        self._reach_cache: dict[str, set[str]] = {}
        self.session_ends = 0

    def is_source(self, node_id: str) -> bool:
        """Whether the node is a source unit."""
        cls = self.classes.get(node_id)
        return cls is not None and issubclass(cls, SourceUnit)

    def wire(
        self, flow: FlowHooks, sessions: dict[int, Session], ledgers: dict[int, SessionCounters]
    ) -> None:
        """Create node runtimes and connect every edge with a lane or an output sender."""
        graph = self.graph
        for spec in graph.nodes:
            if spec.kind == "unit":
                if spec.placement == "ray":  # one local slot per credit (actorflow.ray)
                    spec = spec.with_(replicas=len(self.units[spec.id]))
                node = NodeRuntime(spec, self.classes[spec.id], flow)
                node.terminal = not self._succ[spec.id]
                if self.is_source(spec.id):
                    node.live_replicas = 1
                self.nodes[spec.id] = node
        outputs = {
            n: OutputSender(n, sessions, ledgers, self.expected(INPUTS_ORIGIN, n))
            for n in graph.outputs
        }
        fed: dict[str, list[tuple[str, Any]]] = {}
        for edge in graph.edges:
            src, dst = edge.src, edge.dst
            assert src.port is not None
            assert dst.port is not None
            if self._kinds[dst.node] == "output":
                if self._kinds[src.node] == "input":  # a pass-through graph
                    self.input_lanes[src.node].append(outputs[dst.node])
                else:
                    self.nodes[src.node].outputs[src.port].add(outputs[dst.node])
                continue
            consumer = self.nodes[dst.node]
            capacity = edge.queue_size or graph.node(dst.node).queue_size
            producer = self.units.get(src.node)
            policy = edge.policy or (producer and producer[0].output_policy(src.port)) or "block"
            if policy not in POLICIES:
                msg = (
                    f"node {src.node!r} suggests edge policy {policy!r} for port "
                    f"{src.port!r}; policies are: {', '.join(POLICIES)}"
                )
                raise UnitConfigError(msg)
            lane = Lane(
                consumer.inbox,
                name=f"{src} -> {dst}",
                port=dst.port,
                capacity=capacity,
                policy=policy,
                on_drop=consumer.on_drop,
                on_cancel=_canceller(consumer),
            )
            if self._kinds[src.node] == "input":
                self.input_lanes[src.node].append(lane)
                consumed = next(p for p in consumer.inputs if p.name == dst.port)
                fed.setdefault(src.node, []).append((str(dst), consumed.type))
            else:
                port: OutPort = self.nodes[src.node].outputs[src.port]
                port.add(lane)
        for name, consumers in fed.items():
            check = input_check(name, consumers)
            if check is not None:
                self.input_checks[name] = check
        for node in self.nodes.values():
            ports = [lane.port for lane in node.inbox.lanes]
            node._evict_unmatched = node.multi and len(ports) == len(set(ports))
        reach = self._reach(INPUTS_ORIGIN)
        self.session_ends = sum(1 for n in graph.outputs if self.expected(INPUTS_ORIGIN, n)) + sum(
            1 for n in reach if n in self.nodes and self.nodes[n].terminal
        )

    def expected(self, origin: str, node: str) -> int:
        """How many edges into ``node`` come from nodes reachable from ``origin``."""
        key = (origin, node)
        count = self._expected.get(key)
        if count is None:
            reach = self._reach(origin)
            count = sum(1 for e in self.graph.edges if e.dst.node == node and e.src.node in reach)
            self._expected[key] = count
        return count

    def account_leftovers(self, node: NodeRuntime) -> None:
        """Count what a stopped node still held as cancelled (mailbox, joins, re-order).

        Emissions held in the re-order buffer never reached their consumers: each
        copy (one per consumer) is cancelled in the session's ledger.
        """
        for item in node.inbox.drain():
            if type(item) is Packet:
                node.ledger.cancel(item.session)
        node.cancel_leftovers()
        for emissions in node.pending_emissions():
            for port, item in emissions:
                if type(item) is Packet and port is not None:
                    ledger = node.ledger.sessions.get(item.session)
                    if ledger is not None:
                        ledger.cancelled += len(port.senders)

    def _reach(self, origin: str) -> set[str]:
        cached = self._reach_cache.get(origin)
        if cached is not None:
            return cached
        start = list(self.graph.inputs) if origin == INPUTS_ORIGIN else [origin]
        seen = set(start)
        stack = list(start)
        while stack:
            for nxt in self._succ.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        self._reach_cache[origin] = seen
        return seen


def _canceller(node: NodeRuntime) -> Callable[[Packet[Any]], None]:
    def cancelled(packet: Packet[Any]) -> None:
        ledger = node.ledger.sessions.get(packet.session)
        if ledger is not None:  # the node's side is counted on the lane
            ledger.cancelled += 1

    return cancelled
