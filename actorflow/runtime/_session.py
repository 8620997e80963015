"""Sessions: many independent streams through one running graph (ModelBox's external data).

A session sends packets into the graph's ``input`` nodes and receives, from its
``output`` nodes, exactly its own results in its own order, then end of stream.

Guarantees:

* ``send`` waits while a ``block`` edge out of the input node is full (backpressure);
  ``send_nowait`` raises ``anyio.WouldBlock`` instead, for admission control.
* ``close()`` ends the input: results of what was sent still arrive, then
  ``recv()`` raises ``anyio.EndOfStream``.
* ``abort()`` drops what is left: queued packets of the session are cancelled (and
  counted) wherever they wait, undelivered results are discarded, and ``recv()`` ends
  at once.
* A packet whose processing failed comes back as a ``Result`` with ``error`` set (a
  ``NodeFailed`` naming the node, with the exception type and message).
* Values are checked against the input port's declared type before anything is sent:
  ``InputTypeError`` names the port, the expected and the received type.
* The result buffer is bounded (``result_buffer``): a session that does not read
  holds its output nodes back, never memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from actorflow.errors import NodeFailed, SessionClosed
from actorflow.runtime._markers import Failed, Marker, SessionEnd
from actorflow.runtime._parking import ParkingLot
from actorflow.runtime._stats import SessionCounters
from actorflow.unit import Packet
from actorflow.unit._packet import EMPTY_META

if TYPE_CHECKING:
    from actorflow.runtime._node import Sender

INPUTS_ORIGIN = "@inputs"
"""Origin key of markers sent by sessions through the input nodes."""


@dataclass(frozen=True, slots=True)
class Result:
    """One result received by a session.

    Attributes:
        port: the output node it came from.
        data: the payload (``None`` when ``error`` is set).
        seq: the position of the input it derives from, in the session's stream.
        lineage: index path below that input (expand levels).
        error: why this item failed, or ``None``.
    """

    port: str
    data: Any
    seq: int
    lineage: tuple[int, ...] = ()
    error: NodeFailed | None = None

    @property
    def ok(self) -> bool:
        """Whether the item succeeded."""
        return self.error is None


class Session:
    """One stream through a running flow; create with ``flow.create_external_data_map()``.

    Use as an async context manager to close it on exit (abort on error).
    """

    def __init__(
        self,
        session_id: int,
        inputs: dict[str, list[Sender]],
        ledger: SessionCounters,
        *,
        ends_expected: int,
        result_buffer: int,
        on_abort: Callable[[int], None],
        on_finish: Callable[[int], None],
        checks: Mapping[str, Callable[[Any], None]] | None = None,
        meta: Mapping[str, Any] = EMPTY_META,
    ) -> None:
        self.id = session_id
        self.meta = meta
        """Given to every packet the session sends (a stream's id, for sinks to tag by)."""
        self._inputs = inputs
        self._ledger = ledger
        self._checks = checks or {}
        self._results: deque[Result] = deque()
        self._capacity = result_buffer
        self._readers = ParkingLot()
        self._writers = ParkingLot()
        self._ends_expected = ends_expected
        self._ends = 0
        self._seq: dict[str, int] = {}
        """Next ``seq`` per input port: the k-th packets of every port join together."""
        self._input_closed = False
        self._eof = False
        self.aborted = False
        self._on_abort = on_abort
        self._on_finish = on_finish

    # -- sending ---------------------------------------------------------------------

    async def send(self, port: str, data: Any) -> None:
        """Send ``data`` into input node ``port``, waiting while the graph is full.

        Raises:
            SessionClosed: the session was closed or aborted, or the flow stopped.
            KeyError: no input node is called ``port`` (the message lists them).
            InputTypeError: ``data`` does not match the port's declared type.
        """
        lanes = self._lanes(port, data)
        packet = self._packet(port, data, len(lanes))
        for lane in lanes:
            if not lane.put_nowait(packet):
                await lane.put(packet)

    def send_nowait(self, port: str, data: Any) -> None:
        """Send without waiting.

        Raises:
            anyio.WouldBlock: an edge out of the input node is full; nothing was sent.
            SessionClosed: the session was closed or aborted, or the flow stopped.
            InputTypeError: ``data`` does not match the port's declared type.
        """
        lanes = self._lanes(port, data)
        if not all(lane.has_room() for lane in lanes):
            raise anyio.WouldBlock
        packet = self._packet(port, data, len(lanes))
        for lane in lanes:
            lane.put_nowait(packet)

    def offer(self, port: str, data: Any) -> bool:
        """Send without waiting; when the graph is full, drop ``data`` and count it.

        What a live source does (a camera frame that cannot enter now is stale by the
        time it could): the drop is counted in the session's ledger as ``dropped``.

        Returns:
            Whether ``data`` was sent.
        """
        try:
            self.send_nowait(port, data)
        except anyio.WouldBlock:
            self._ledger.sent += 1
            self._ledger.dropped += 1
            return False
        return True

    async def close(self) -> None:
        """End the input; results still arrive, then end of stream. Idempotent."""
        self.close_input()
        await anyio.lowlevel.checkpoint()

    def close_input(self) -> None:
        """``close()`` without a checkpoint (for synchronous callers)."""
        if self._input_closed:
            return
        self._input_closed = True
        marker = SessionEnd(self.id, (), INPUTS_ORIGIN)
        for lanes in self._inputs.values():
            for lane in lanes:
                lane.put_marker(marker)
        if self._ends_expected == 0:
            self.finish()

    async def abort(self) -> None:
        """Drop what is left of this session's work and end its stream. Idempotent."""
        if not self.aborted:
            self.aborted = True
            self._on_abort(self.id)
            discarded = len(self._results)
            self._results.clear()
            self._ledger.delivered -= discarded
            self._ledger.cancelled += discarded
            self._writers.unpark_all()
            self._readers.unpark_all()  # the stream ends for the reader now
        await self.close()

    # -- receiving -------------------------------------------------------------------

    async def recv(self) -> Result:
        """Return the next result.

        Raises:
            anyio.EndOfStream: every result was received (after ``close()``), the
                session was aborted, or the flow ended.
        """
        while not self._results:
            if self._eof or self.aborted:
                raise anyio.EndOfStream
            await self._readers.park()
        result = self._results.popleft()
        self._writers.unpark()
        return result

    def __aiter__(self) -> Session:
        return self

    async def __anext__(self) -> Result:
        try:
            return await self.recv()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            await self.abort()
        else:
            await self.close()

    @property
    def finished(self) -> bool:
        """Whether end of stream was reached (results may still be unread)."""
        return self._eof

    # -- called by the runtime -------------------------------------------------------

    def deliver_nowait(self, result: Result) -> bool:
        """Queue a result; ``False`` when the buffer is full."""
        if self.aborted:
            self._ledger.cancelled += 1
            return True
        if len(self._results) >= self._capacity:
            return False
        self._results.append(result)
        self._ledger.delivered += 1
        self._readers.unpark()
        return True

    async def deliver(self, result: Result) -> None:
        """Queue a result, waiting while the buffer is full.

        A result that cannot be queued (the session ended, or the waiting task was
        cancelled) is counted as cancelled.
        """
        while not self.deliver_nowait(result):
            if self._eof:
                self._ledger.cancelled += 1
                return
            try:
                await self._writers.park()
            except BaseException:
                self._ledger.cancelled += 1
                raise

    def deliver_error(self, port: str, marker: Failed) -> None:
        """Queue a failure (never blocks: errors are few and must not be lost)."""
        if not self.aborted:
            self._results.append(Result(port, None, marker.seq, marker.lineage, marker.error))
            self._readers.unpark()

    def end_arrived(self) -> None:
        """One terminal point of the graph saw this session's end."""
        self._ends += 1
        if self._ends >= self._ends_expected:
            self.finish()

    def finish(self) -> None:
        """End of stream: wake every reader (and writer, which then gives up). Idempotent."""
        if self._eof:
            return
        self._eof = True
        self._input_closed = True
        self._readers.unpark_all()
        self._writers.unpark_all()
        self._on_finish(self.id)

    def _lanes(self, port: str, data: Any) -> list[Sender]:
        if self._input_closed or self.aborted:
            state = "aborted" if self.aborted else "closed"
            msg = f"session {self.id} is {state}; open a new session to send more"
            raise SessionClosed(msg)
        try:
            lanes = self._inputs[port]
        except KeyError:
            names = ", ".join(repr(n) for n in self._inputs) or "none"
            msg = f"the graph has no input node {port!r}; its inputs are: {names}"
            raise KeyError(msg) from None
        check = self._checks.get(port)
        if check is not None:
            check(data)
        return lanes

    def _packet(self, port: str, data: Any, copies: int) -> Packet[Any]:
        seq = self._seq.get(port, 0)
        self._seq[port] = seq + 1
        self._ledger.sent += 1
        if copies > 1:
            self._ledger.spawned += copies - 1
        return Packet(data, self.id, seq, (), self.meta)


class OutputSender:
    """The ``Sender`` behind an ``output`` node: routes packets to their sessions."""

    def __init__(
        self,
        port: str,
        sessions: dict[int, Session],
        ledgers: dict[int, SessionCounters],
        expected_ends: int,
    ) -> None:
        self.port = port
        self._sessions = sessions
        self._ledgers = ledgers
        self._expected = expected_ends
        self._ends: dict[int, int] = {}

    def put_nowait(self, packet: Packet[Any]) -> bool:
        """Hand ``packet`` to its session; ``False`` when that session's buffer is full."""
        session = self._sessions.get(packet.session)
        if session is None:  # a source's stream: the packet is delivered here
            ledger = self._ledgers.get(packet.session)
            if ledger is not None:
                ledger.delivered += 1
            return True
        return session.deliver_nowait(_result(self.port, packet))

    async def put(self, packet: Packet[Any]) -> None:
        """Hand ``packet`` to its session, waiting while its buffer is full."""
        session = self._sessions.get(packet.session)
        if session is None:
            self.put_nowait(packet)
            return
        await session.deliver(_result(self.port, packet))

    def put_marker(self, marker: Marker) -> None:
        """Errors go to the session; its end is counted towards end of stream."""
        session = self._sessions.get(marker.session)
        if session is None:
            return
        if isinstance(marker, Failed):
            session.deliver_error(self.port, marker)
        elif isinstance(marker, SessionEnd):
            count = self._ends.get(marker.session, 0) + 1
            if count >= self._expected:
                self._ends.pop(marker.session, None)
                session.end_arrived()
            else:
                self._ends[marker.session] = count

    def has_room(self) -> bool:
        """Output nodes admit packets: a full session buffer waits in ``put``."""
        return True

    def close(self) -> None:
        """Nothing to do: the flow ends every session when it stops."""


def _result(port: str, packet: Packet[Any]) -> Result:
    return Result(port, packet.data, packet.seq, packet.lineage)
