"""``ReplicaContext``: the ``Context`` one replica of a node hands its unit.

Besides the user-facing API (``emit``, ``run_blocking``, ``fail``, ``resolve_path``),
it carries what the actor loop tracks per call: the packet being processed, the
children an expanding port emitted, the emissions a replicated node holds back for
re-ordering, and the copies made (what the ledger needs to tell a filter from a
fan-out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from actorflow.errors import EmitError, NodeFailed
from actorflow.runtime._mailbox import Item, Lane
from actorflow.runtime._markers import Failed, GroupEnd, Marker
from actorflow.runtime._node import NodeRuntime, OutPort
from actorflow.unit import Context, Output, Packet

R = TypeVar("R")


class ReplicaContext(Context):
    """The ``Context`` of one replica."""

    def __init__(self, node: NodeRuntime, replica: int) -> None:
        self._node = node
        self.node = node.id
        self.unit = node.unit_cls.name or node.unit_cls.__name__
        self.replica = replica
        self.device = node.spec.device
        self.deviceid = node.spec.deviceid
        self.log = node.flow.log.bind(node=node.id, unit=self.unit, replica=replica)
        self.current: Packet[Any] | None = None
        self.children = 0
        self.pending: list[tuple[OutPort | None, Item]] | None = None
        self.opened = False
        self.burst = 0
        """Items taken since this replica last let the event loop run."""
        self.failed: set[int] = set()
        """``id()`` of packets of the current call failed with ``fail()``."""
        self.copies = 0
        """Packets this call put into consumer lanes (one per consumer of each emit)."""
        self.batch_copies: dict[int, int] | None = None
        """During ``process_batch``: the copies made, per session."""
        self.consecutive_failures = 0
        """Calls that failed since the last one that succeeded."""
        self._ports: dict[Any, OutPort] = {}
        """Output ports by the objects units pass to ``emit`` (``Output`` or name)."""
        self.carry: list[tuple[Lane | None, Item]] = []
        """Items taken from the mailbox but not yet run (``_bursts``: after a failure)."""
        self.numbered: list[tuple[Lane | None, Item, int]] = []
        """Items taken and given a ticket but not yet run (``_bursts_replicated``)."""

    async def emit(self, port: Output[Any] | str, packet: Packet[Any]) -> None:
        """Send ``packet`` on ``port`` (see ``Context.emit``).

        Raises:
            EmitError: ``port`` is not an output of this unit, or ``packet`` is not a
                ``Packet`` (the message names the node, the port and the fix).
        """
        try:
            out = self._ports.get(port)
        except TypeError:  # unhashable: certainly not a port
            out = None
        if out is None:
            out = self._port(port)
        if type(packet) is not Packet:
            self._check_packet(out, packet)
        if out.expand and self.current is not None:
            packet = self._child(packet)
        senders = out.senders
        if self.batch_copies is None:
            self.copies += len(senders)
        else:
            by_session = self.batch_copies
            by_session[packet.session] = by_session.get(packet.session, 0) + len(senders)
        if self.pending is not None:
            self.pending.append((out, packet))
            return
        node = self._node
        node.counters.emitted += 1
        for sender in senders:
            if not sender.put_nowait(packet):
                await node.put_blocked(sender, packet)

    def _check_packet(self, out: OutPort, packet: object) -> None:
        """Accept a ``Packet`` subclass.

        Raises:
            EmitError: ``packet`` is not a ``Packet`` (names the node, the port and the fix).
        """
        if not isinstance(packet, Packet):
            msg = (
                f"node {self.node!r} ({self.unit}) emitted a {type(packet).__name__} on "
                f"port {out.name!r}; emit a Packet: ctx.emit({out.name!r}, packet.replace(value))"
            )
            raise EmitError(msg)

    def _child(self, packet: Packet[Any]) -> Packet[Any]:
        """``packet`` as the next child of the current input on an expanding port."""
        cur = self.current
        assert cur is not None
        self.children += 1
        return Packet(
            packet.data, cur.session, cur.seq, (*cur.lineage, self.children - 1), packet.meta
        )

    def _port(self, port: Any) -> OutPort:
        """Resolve ``port`` (an ``Output`` or a name) once; later emits find it cached.

        Raises:
            EmitError: this unit has no such output port.
        """
        name = port if isinstance(port, str) else getattr(port, "name", port)
        out = self._node.outputs.get(name) if isinstance(name, str) else None
        if out is None:
            names = ", ".join(repr(n) for n in self._node.outputs) or "none"
            msg = (
                f"node {self.node!r} ({self.unit}) has no output port {name!r}; "
                f"its outputs are: {names}"
            )
            raise EmitError(msg)
        if isinstance(port, str) or getattr(port, "name", None) == name:
            self._ports[port] = out
        return out

    async def run_blocking(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(*args)`` on ``actorflow-<node>-<replica>`` (see ``Context.run_blocking``)."""
        return await self._node.executor.run(self.replica, fn, *args)

    def fail(self, packet: Packet[Any], error: Exception) -> None:
        """Fail one packet of the current call (see ``Context.fail``)."""
        failure = NodeFailed(self.node, self.unit, "process", repr(error))
        failure.__cause__ = error
        self.failed.add(id(packet))
        self._node.ledger.fail(packet.session)
        self.forward_marker(Failed(packet.session, packet.lineage, self.node, packet.seq, failure))
        self.log.warning("packet_failed", error=repr(error), seq=packet.seq, session=packet.session)

    def resolve_path(self, path: str | Path) -> Path:
        """Resolve ``path`` relative to the graph file's directory."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self._node.flow.base_dir / candidate

    def now(self) -> float:
        """Monotonic seconds (for units measuring latency)."""
        return time.monotonic()

    def begin(self, packet: Packet[Any] | None) -> None:
        """Start a call on ``packet`` (``None``: a batch)."""
        self.current = packet
        self.children = 0
        self.copies = 0
        self.batch_copies = None if packet is not None else {}

    def end_children(self) -> None:
        """After processing an input on an expanding node: close its group downstream."""
        cur = self.current
        if cur is None or not self._node.expand_ports:
            return
        marker = GroupEnd(cur.session, cur.lineage, self.node, cur.seq)
        for port in self._node.expand_ports:
            if self.pending is not None:
                self.pending.append((port, marker))
            else:
                self._node.send_marker(port, marker)

    def forward_marker(self, marker: Marker) -> None:
        """Forward a marker on every output (through the re-order buffer if any).

        A sink has no output to carry its own failures, so they go straight to the
        packet's session, which receives them as errors like any other.
        """
        if self._node.terminal and isinstance(marker, Failed) and marker.origin == self.node:
            self._node.flow.failed_at_sink(self.node, marker)
            return
        if isinstance(marker, Failed) and self._node.expand_ports:
            for port in self._node.out_list:
                out = marker
                if port.expand:  # the whole group of this parent is lost
                    out = Failed(
                        marker.session,
                        (*marker.lineage, -1),
                        marker.origin,
                        marker.seq,
                        marker.error,
                    )
                self._queue_marker(port, out)
                if port.expand:
                    self._queue_marker(
                        port, GroupEnd(marker.session, marker.lineage, self.node, marker.seq)
                    )
            return
        self._queue_marker(None, marker)

    def _queue_marker(self, port: OutPort | None, marker: Marker) -> None:
        if self.pending is not None:
            self.pending.append((port, marker))
        else:
            self._node.send_marker(port, marker)


class PlainContext(ReplicaContext):
    """The context of a plain node's replica (``_plain``): no re-ordering, no batches.

    ``emit`` has the semantics of ``ReplicaContext.emit`` without the re-order buffer
    and the per-session batch copies, which a plain node never has.
    """

    def __init__(self, node: NodeRuntime, replica: int) -> None:
        super().__init__(node, replica)
        self._last_port: object = object()  # no caller can pass it
        """The port of the last ``emit`` (an ``Output`` or a name) and its ``OutPort``."""
        self._last_out = cast("OutPort", None)  # read only once _last_port was matched

    async def emit(self, port: Output[Any] | str, packet: Packet[Any]) -> None:
        """Send ``packet`` on ``port`` (see ``Context.emit``).

        Raises:
            EmitError: ``port`` is not an output of this unit, or ``packet`` is not a
                ``Packet`` (the message names the node, the port and the fix).
        """
        if port is self._last_port:  # most units emit on one port: skip the look-up
            out = self._last_out
        else:
            try:
                found = self._ports.get(port)
            except TypeError:  # unhashable: certainly not a port
                found = None
            out = found if found is not None else self._port(port)
            self._last_port, self._last_out = port, out
        if type(packet) is not Packet:
            self._check_packet(out, packet)
        if out.expand and self.current is not None:
            packet = self._child(packet)
        node = self._node
        node.counters.emitted += 1
        lane = out.only
        if lane is not None and len(lane.items) < lane.capacity:  # see _plain
            self.copies += 1
            lane.items.append(packet)
            lane.offered += 1
            if lane._waiting:
                lane.inbox.waiters.unpark()
            return
        senders = out.senders
        self.copies += len(senders)
        for sender in senders:
            if not sender.put_nowait(packet):
                await node.put_blocked(sender, packet)
