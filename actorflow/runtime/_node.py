"""The shared state of one node at run time.

A ``NodeRuntime`` owns the node's inbox, its output ports (each a list of lanes into
consumers), the join and collapse buffers of multi-input and collapsing nodes, the
re-order buffer of replicated nodes, and the node's ledger. Replicas (``_actor.py``)
drive it through their ``ReplicaContext`` (``_context.py``); everything here runs on
the event loop thread.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from actorflow.errors import NodeFailed
from actorflow.graph import NodeSpec
from actorflow.runtime._executor import NodeExecutor
from actorflow.runtime._ledger import Ledger
from actorflow.runtime._mailbox import Inbox, Item, Lane
from actorflow.runtime._markers import Failed, GroupEnd, Marker, SessionEnd
from actorflow.runtime._parking import ParkingLot
from actorflow.runtime._stats import NodeCounters, SessionCounters
from actorflow.unit import FlowUnit, Output, Packet
from actorflow.unit._packet import EMPTY_META

if TYPE_CHECKING:
    from actorflow.runtime._trace import Tracer
    from actorflow.unit import Input

JoinKey = tuple[int, int, tuple[int, ...]]
"""(session, seq, lineage): what joins match on."""
GroupKey = tuple[str, int, int, tuple[int, ...]]
"""(port, session, seq, parent lineage): what a collapsing port gathers by."""


class Sender(Protocol):
    """Where an output port's packets go: a ``Lane`` or a session output."""

    def put_nowait(self, packet: Packet[Any]) -> bool:
        """Put without waiting; ``False`` when a blocking receiver is full."""

    def has_room(self) -> bool:
        """Whether ``put_nowait`` would accept a packet now (admission control)."""

    async def put(self, packet: Packet[Any]) -> None:
        """Put, waiting while full."""

    def put_marker(self, marker: Marker) -> None:
        """Put a control item (never dropped)."""

    def close(self) -> None:
        """The producer is done."""


class FlowHooks(Protocol):
    """What a node needs from its flow."""

    base_dir: Path
    log: Any
    ledgers: dict[int, SessionCounters]
    tracer: Tracer | None

    def session_counters(self, session: int) -> SessionCounters | None:
        """The ledger of ``session`` (``None`` once forgotten)."""

    def expected_markers(self, origin: str, node: str) -> int:
        """How many lanes into ``node`` carry markers from ``origin``."""

    def session_end_at_sink(self, session: int) -> None:
        """A sink node (no outputs) saw the end of ``session``."""

    def failed_at_sink(self, node: str, marker: Failed) -> None:
        """A sink node failed a packet: hand the error to its session."""

    def close_budget(self) -> float:
        """Seconds a unit's ``close()`` may take now (shrinks once a stop is bounded)."""

    @property
    def aborted(self) -> set[int]:
        """Ids of aborted sessions."""


class OutPort:
    """One output port: the senders it fans out to."""

    __slots__ = ("expand", "name", "only", "senders")

    def __init__(self, port: Output[Any]) -> None:
        self.name, self.expand = port.name, port.expand
        self.senders: list[Sender] = []
        self.only: Lane | None = None
        """The one consumer when it is a lane: hot loops put into it inline while it
        has room (``_plain``)."""

    def add(self, sender: Sender) -> None:
        """Wire one more consumer of this port."""
        self.senders.append(sender)
        only = self.senders[0]
        self.only = only if len(self.senders) == 1 and isinstance(only, Lane) else None


class NodeRuntime:
    """Run-time state of one node, shared by its replicas."""

    def __init__(self, spec: NodeSpec, unit_cls: type[FlowUnit], flow: FlowHooks) -> None:
        self.spec, self.id, self.unit_cls, self.flow = spec, spec.id, unit_cls, flow
        self.inbox = Inbox()
        self.counters = NodeCounters()
        self.outputs = {p.name: OutPort(p) for p in unit_cls.outputs}
        self.out_list = list(self.outputs.values())
        self.expand_ports = [p for p in self.out_list if p.expand]
        self.inputs: tuple[Input[Any], ...] = unit_cls.inputs
        self.collapse_ports = {p.name for p in unit_cls.inputs if p.collapse}
        self.multi = len(unit_cls.inputs) > 1
        self._evict_unmatched = False  # set by the plan: one lane per input port
        self.ordered = spec.replicas > 1
        self.tracer = flow.tracer
        self.executor = NodeExecutor(spec.id, spec.replicas, flow.tracer, flow.log)
        self.terminal = False  # set by the flow: no outgoing edges
        self._joins: dict[JoinKey, dict[str, tuple[Packet[Any] | Failed, int]]] = {}
        self._groups: dict[GroupKey, list[tuple[int, Packet[Any]]]] = {}
        self._failed_groups: set[GroupKey] = set()
        self._marker_counts: dict[Any, int] = {}
        # re-ordering for replicated nodes: emissions are released in ticket order
        self._next_ticket = 0
        self._flush_next = 0
        self._done: dict[int, list[tuple[OutPort | None, Item]]] = {}
        self._flushing = False
        self._window = 2 * spec.replicas * spec.batch_size + 2
        if spec.placement == "ray":  # its slots are its credits: in flight + re-order
            self._window = spec.replicas
        self._window_waiters = ParkingLot()
        self.live_replicas = spec.replicas
        self.taking = anyio.Lock() if self.ordered and spec.batch_size > 1 else None
        """Held while a replica gathers a batch, so batches take consecutive tickets."""
        self.ledger = Ledger(self.counters, flow.ledgers)
        self.blocked_s = 0.0
        """Seconds spent waiting for room in full consumers (not busy time)."""

    # -- sending ---------------------------------------------------------------------

    async def send(self, port: OutPort, packet: Packet[Any]) -> None:
        """Send one packet on ``port`` to every consumer (fan-out shares the object).

        The ledger counts the copies where the packet was made (``ReplicaContext``).
        """
        self.counters.emitted += 1
        for sender in port.senders:
            if not sender.put_nowait(packet):
                await self.put_blocked(sender, packet)

    async def put_blocked(self, sender: Sender, packet: Packet[Any]) -> None:
        """Wait for room in a full consumer; the wait is added to ``blocked_s``."""
        started = time.perf_counter()
        try:
            await sender.put(packet)
        finally:
            self.blocked_s += time.perf_counter() - started

    def send_marker(self, port: OutPort | None, marker: Marker) -> None:
        """Forward a marker on ``port``, or on every port when ``port`` is ``None``."""
        for out in self.out_list if port is None else (port,):
            for sender in out.senders:
                sender.put_marker(marker)

    async def release(self, port: OutPort | None, item: Item) -> None:
        """Send a packet or marker (used when flushing the re-order buffer)."""
        if type(item) is Packet:
            assert port is not None
            await self.send(port, item)
        else:
            self.send_marker(port, item)  # type: ignore[arg-type]

    def close_outputs(self) -> None:
        """All replicas are done: consumers see the end of this node's stream."""
        for out in self.out_list:
            for sender in out.senders:
                sender.close()

    # -- ordering (replicas > 1) ------------------------------------------------------

    async def wait_window(self) -> None:
        """Wait while too many outputs are waiting for earlier ones (bounds the buffer)."""
        while self._next_ticket - self._flush_next >= self._window:
            await self._window_waiters.park()

    def window_room(self) -> int:
        """Tickets that may be taken now before ``wait_window`` would wait."""
        return max(0, self._window - (self._next_ticket - self._flush_next))

    def widen_window(self, size: int) -> None:
        """Let at least ``size`` tickets be in flight (outputs held for re-ordering)."""
        self._window = max(self._window, size)

    def next_ticket(self) -> int:
        """Number the item just taken: outputs are released in this order."""
        ticket = self._next_ticket
        self._next_ticket += 1
        return ticket

    async def complete(self, ticket: int, emissions: list[tuple[OutPort | None, Item]]) -> None:
        """Record a ticket's emissions; release every ticket that is now in order."""
        self._done[ticket] = emissions
        if self._flushing:
            return  # the task flushing now will release it
        self._flushing = True
        try:
            while self._flush_next in self._done:
                for port, item in self._done.pop(self._flush_next):
                    await self.release(port, item)
                self._flush_next += 1
                self._window_waiters.unpark()
        finally:
            self._flushing = False

    def pending_emissions(self) -> list[list[tuple[OutPort | None, Item]]]:
        """Emissions completed but never released (the flow stopped mid-flush)."""
        return list(self._done.values())

    # -- markers, joins and collapses -------------------------------------------------

    def marker_complete(self, marker: Marker) -> bool:
        """Count one arrival of ``marker``; ``True`` once it came from every lane."""
        expected = self.flow.expected_markers(marker.origin, self.id)
        if expected <= 1:
            return True
        key = marker.key
        count = self._marker_counts.get(key, 0) + 1
        if count >= expected:
            self._marker_counts.pop(key, None)
            return True
        self._marker_counts[key] = count
        return False

    def arrive(self, lane: Lane, item: Item) -> tuple[Item | None, int]:
        """Feed one item from ``lane`` to the join/collapse logic.

        Returns a packet ready to process (its ``data`` a dict of ports for multi-input
        nodes) or a ``Failed`` marker standing for it, or ``None`` while waiting for
        more; and how many received packets it stands for.
        """
        if isinstance(item, SessionEnd) or (
            isinstance(item, GroupEnd) and lane.port not in self.collapse_ports
        ):
            return item, 0
        parts = 1 if type(item) is Packet else 0
        if lane.port in self.collapse_ports:
            got = self._collapse(lane.port, item)
            if got is None:
                return None, 0
            item, parts = got
        if not self.multi:
            return item, parts
        key = (item.session, item.seq, item.lineage)
        entry = self._joins.setdefault(key, {})
        entry[lane.port] = (item, parts)  # type: ignore[assignment]
        if len(entry) < len(self.inputs):
            return None, 0
        del self._joins[key]
        if self._evict_unmatched:
            self._evict_before(key)
        total = sum(p for _, p in entry.values())
        failure = next((v for v, _ in entry.values() if isinstance(v, Failed)), None)
        if failure is not None:
            self.ledger.fail(item.session, total)
            return failure, 0
        packets = {port: value for port, (value, _) in entry.items() if type(value) is Packet}
        first = next(iter(packets.values()))
        data = {port: value.data for port, value in packets.items()}
        return Packet(data, first.session, first.seq, first.lineage, first.meta), total

    def _evict_before(self, key: JoinKey) -> None:
        """Drop half-joined items of the session that came before ``key``: they never will.

        Each input port has one lane, and a lane delivers a session's items in order, so
        once item ``key`` is complete, an earlier item still waiting lacks a partner
        that a drop policy discarded on the way. Without this, a lossy branch (a live
        camera's ``latest`` edges) would grow the join buffer forever. Evicted packets
        count as dropped.
        """
        session, order = key[0], key[1:]
        stale = [k for k in self._joins if k[0] == session and k[1:] < order]
        for old in stale:
            parts = sum(p for _, p in self._joins.pop(old).values())
            self.counters.unmatched += parts
            self.ledger.drop(session, parts)

    def _collapse(self, port: str, item: Item) -> tuple[Packet[Any] | Failed, int] | None:
        if type(item) is Packet:
            parent = item.lineage[:-1]
            self._groups.setdefault((port, item.session, item.seq, parent), []).append(
                (item.lineage[-1], item)
            )
            return None
        if isinstance(item, Failed):
            if item.lineage[-1:] == (-1,):  # the whole group failed upstream
                self._failed_groups.add((port, item.session, item.seq, item.lineage[:-1]))
            return None
        assert isinstance(item, GroupEnd)
        key = (port, item.session, item.seq, item.lineage)
        children = sorted(self._groups.pop(key, []), key=lambda c: c[0])
        if key in self._failed_groups:
            self._failed_groups.discard(key)
            if children:  # emitted before their parent failed: they fail with it
                self.ledger.fail(item.session, len(children))
            error = NodeFailed(self.id, self.unit_cls.name, "process", "upstream group failed")
            return Failed(item.session, item.lineage, item.origin, item.seq, error), 0
        meta = children[0][1].meta if children else EMPTY_META
        packet = Packet([c.data for _, c in children], item.session, item.seq, item.lineage, meta)
        return packet, len(children)

    def forget_session(self, session: int) -> int:
        """Drop join/collapse leftovers of a finished session; return how many packets."""
        left = 0
        for key in [k for k in self._joins if k[0] == session]:
            left += sum(parts for _, parts in self._joins.pop(key).values())
        for group in [k for k in self._groups if k[1] == session]:
            left += len(self._groups.pop(group))
        return left

    def cancel_leftovers(self) -> None:
        """Count packets held in join/collapse buffers as cancelled (at stop)."""
        for key in list(self._joins):
            self.ledger.cancel(key[0], sum(parts for _, parts in self._joins.pop(key).values()))
        for group in list(self._groups):
            self.ledger.cancel(group[1], len(self._groups.pop(group)))

    def on_drop(self, packet: Packet[Any], lane: Lane) -> None:
        """A lane into this node discarded ``packet`` under its policy.

        Logged at the 1st, 2nd, 4th, 8th... drop of each lane, not per packet.
        """
        self.ledger.drop(packet.session)
        if lane.dropped & (lane.dropped - 1) == 0:
            self.flow.log.warning(
                "packet_dropped",
                node=self.id,
                edge=lane.name,
                policy=lane.policy,
                dropped_total=lane.dropped,
            )
