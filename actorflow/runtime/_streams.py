"""Streams: sources added to and removed from a running flow, each a session of its own.

``flow.add_source(unit)`` starts a source (a camera, a file, an RTSP URL...) feeding
one of the graph's ``input`` nodes through a session of its own; ``remove_source``
stops it. Streams share every node of the graph, so inference batches across them,
and each stream's packets carry ``meta["stream"]``, so sinks can tell them apart.

Guarantees:

* A stream's ledger is its session's: it closes when the stream ends, whether it was
  removed with ``drain=True`` (what was sent still finishes) or ``drain=False``
  (what was queued is cancelled and counted).
* A live source (one whose output policy is ``latest``: cameras, RTSP) never blocks
  the graph: a frame that cannot enter now is dropped and counted (``dropped``); a
  file source waits (backpressure), as a graph's own source would.
* A source that fails, stalls or loses its camera affects its own stream only:
  ``status`` says ``connecting``, ``live``, ``reconnecting``, ``ended`` or ``failed``,
  and ``stop()`` cancels every stream with the rest of the flow.
* Results are drained and counted unless the stream was added with ``collect=True``,
  in which case ``stream.session`` yields them (the reader must keep up: its results
  buffer holds the graph back, as any session's does).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup

from actorflow.errors import FlowStateError
from actorflow.runtime._executor import NodeExecutor
from actorflow.runtime._session import Session
from actorflow.unit import Context, Output, Packet, SourceUnit

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class StreamStatistics:
    """One stream at the time ``statistics()`` was called."""

    stream: str
    source: str
    """The source unit's name."""
    input: str
    """The input node it feeds."""
    status: str
    """``connecting``, ``live``, ``reconnecting``, ``ended``, ``failed`` or ``removed``."""
    session: int
    items: int
    """Items the source produced (sent or dropped)."""
    results: int
    errors: int
    dropped: int
    """Items a live source dropped because the graph was full."""
    latency_s: float
    """Seconds from an item's send to its result, averaged over the stream."""
    error: str = ""
    """Why the source failed (``status == "failed"``)."""


class StreamContext(Context):
    """The ``Context`` of a stream's source: a thread of its own, paths from the graph."""

    def __init__(self, stream: str, unit: SourceUnit, base_dir: Path, log: Any) -> None:
        self.node = f"stream:{stream}"
        self.unit = unit.name or type(unit).__name__
        self.replica, self.device, self.deviceid = 0, "auto", 0
        self.log = log.bind(stream=stream, unit=self.unit)
        self.executor = NodeExecutor(f"stream-{stream}", 1, log=log)
        self._base_dir = base_dir

    async def emit(self, port: Output[Any] | str, packet: Packet[Any]) -> None:
        """Sources yield from ``generate``; they never emit."""
        msg = f"stream {self.node!r}: a source yields from generate(), it does not emit"
        raise FlowStateError(msg)

    async def run_blocking(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(*args)`` on the stream's own thread (abandoned at removal if blocked)."""
        return await self.executor.run(0, fn, *args)

    def fail(self, packet: Packet[Any], error: Exception) -> None:
        """Sources have no packets to fail."""
        raise error

    def resolve_path(self, path: str | Path) -> Path:
        """Resolve ``path`` relative to the graph file's directory."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self._base_dir / candidate


class Stream:
    """A source feeding a running flow through a session of its own."""

    def __init__(self, stream_id: str, unit: SourceUnit, port: str, session: Session) -> None:
        self.id, self.unit, self.input, self.session = stream_id, unit, port, session
        self.status = "connecting"
        self.removing = False
        self.error = ""
        self.items = self.results = self.errors = self.dropped = 0
        self.latency_total = 0.0
        self.scope = anyio.CancelScope()
        self.stopped = anyio.Event()
        """Set once the source has stopped and its input is closed."""
        self.ended = anyio.Event()
        """Set once every result was counted (not with ``collect=True``: read them)."""
        self.timing = True
        """Record send times for ``latency_s`` (off with ``collect=True``: nothing reads
        the results here to match them)."""
        self._sent = 0
        self._timed = 0
        self._sent_at: deque[tuple[int, float]] = deque()
        """``(session seq, send time)`` of items sent and not answered yet: bounded by
        what is in flight, since every result clears the entries up to its seq (items
        filtered or dropped on the way have none)."""

    def statistics(self) -> StreamStatistics:
        """A snapshot of this stream."""
        status = self.status
        if status == "live" and self.unit.status != "live":
            status = self.unit.status  # the source knows better (reconnecting...)
        return StreamStatistics(
            self.id,
            self.unit.name or type(self.unit).__name__,
            self.input,
            status,
            self.session.id,
            self.items,
            self.results,
            self.errors,
            self.dropped,
            self.latency_total / self._timed if self._timed else 0.0,
            self.error,
        )

    async def pump(self, base_dir: Path, log: Any, close_budget: Callable[[], float]) -> None:
        """Run the source into the session until it ends or the stream is removed."""
        ctx = StreamContext(self.id, self.unit, base_dir, log)
        live = self.unit.output_policy(self.unit.outputs[0].name) == "latest"
        opened = False
        try:
            with self.scope:
                await self.unit.open(ctx)
                opened = True
                self.status = "live"
                async with aclosing(self.unit.generate(ctx)) as items:  # type: ignore[type-var]
                    async for item in items:
                        await self._send(item, live)
                self.status = "ended"
        except Exception as exc:
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            ctx.log.error("stream_failed", error=self.error)
        finally:
            if opened:
                with anyio.move_on_after(close_budget(), shield=True):
                    await self.unit.close(ctx)
            if self.status in ("connecting", "live"):
                self.status = "removed" if self.removing else "ended"
            ctx.executor.shutdown()
            self.session.close_input()
            self.stopped.set()

    async def _send(self, item: Any, live: bool) -> None:
        self.items += 1
        sent_at = time.monotonic()
        if live:
            if not self.session.offer(self.input, item):
                self.dropped += 1  # never sent: it takes no seq
                return
        else:
            await self.session.send(self.input, item)
        if self.timing:
            self._sent_at.append((self._sent, sent_at))
        self._sent += 1
        if live:
            await anyio.lowlevel.checkpoint()

    async def drain(self) -> None:
        """Read (and count) the stream's results until its end."""
        async for result in self.session:
            self.results += 1
            if not result.ok:
                self.errors += 1
            pending = self._sent_at
            while pending and pending[0][0] <= result.seq:
                seq, sent = pending.popleft()
                if seq == result.seq:
                    self.latency_total += time.monotonic() - sent
                    self._timed += 1
        self._sent_at.clear()  # the tail's items were filtered: no result will come
        self.ended.set()


class StreamTable:
    """The streams of one running flow."""

    def __init__(self) -> None:
        self.streams: dict[str, Stream] = {}
        self._next = 1

    def new_id(self, wanted: str | None) -> str:
        """``wanted``, or the next free ``stream-<n>``.

        Raises:
            FlowStateError: ``wanted`` names a stream that is still running.
        """
        if wanted is not None:
            current = self.streams.get(wanted)
            if current is not None and not current.ended.is_set():
                msg = f"stream {wanted!r} is already running; remove it first or pick another id"
                raise FlowStateError(msg)
            return wanted
        while f"stream-{self._next}" in self.streams:
            self._next += 1
        self._next += 1
        return f"stream-{self._next - 1}"

    def start(
        self,
        tg: TaskGroup,
        stream: Stream,
        *,
        collect: bool,
        base_dir: Path,
        log: Any,
        close_budget: Callable[[], float],
    ) -> None:
        """Run ``stream`` in the flow's task group."""
        self.streams[stream.id] = stream
        stream.timing = not collect
        tg.start_soon(stream.pump, base_dir, log, close_budget, name=f"actorflow-{stream.id}")
        if not collect:
            tg.start_soon(stream.drain, name=f"actorflow-{stream.id}-results")

    def get(self, stream_id: str) -> Stream:
        """The stream called ``stream_id``.

        Raises:
            KeyError: no such stream (the message lists them).
        """
        try:
            return self.streams[stream_id]
        except KeyError:
            names = ", ".join(repr(s) for s in self.streams) or "none"
            msg = f"no stream {stream_id!r}; streams: {names}"
            raise KeyError(msg) from None

    @staticmethod
    def input_for(wanted: str | None, inputs: list[str]) -> str:
        """The input node a stream feeds: ``wanted``, or the graph's only one.

        Raises:
            FlowStateError: the graph has no input node, or several and none was named.
        """
        if wanted is not None:
            if wanted not in inputs:
                names = ", ".join(repr(n) for n in inputs) or "none"
                msg = f"the graph has no input node {wanted!r}; its inputs are: {names}"
                raise FlowStateError(msg)
            return wanted
        if len(inputs) != 1:
            names = ", ".join(repr(n) for n in inputs) or "none"
            msg = (
                f"add_source() needs input=... naming one of the graph's input nodes "
                f"(it has: {names}); a graph with no input node cannot take streams"
            )
            raise FlowStateError(msg)
        return inputs[0]

    async def remove(self, stream_id: str, *, drain: bool, budget: float) -> Stream:
        """Stop a stream's source; ``drain``: what it sent still finishes, else cancelled.

        Returns once the source stopped (its ``close()`` gets at most ``budget`` s).

        Raises:
            KeyError: no such stream.
        """
        stream = self.get(stream_id)
        stream.removing = True
        stream.scope.cancel()
        if not drain:
            await stream.session.abort()
        with anyio.move_on_after(budget + 0.1):
            await stream.stopped.wait()
        return stream

    def stop_all(self) -> None:
        """The flow is stopping: every source stops (their sessions end with the flow)."""
        for stream in self.streams.values():
            stream.scope.cancel()

    def statistics(self) -> dict[str, StreamStatistics]:
        """Snapshots of every stream, running or ended."""
        return {sid: s.statistics() for sid, s in self.streams.items()}


META_KEY = "stream"
"""``packet.meta[META_KEY]`` is the id of the stream a packet belongs to."""


def stream_meta(stream_id: str) -> MappingProxyType[str, Any]:
    """The meta every packet of a stream carries."""
    return MappingProxyType({META_KEY: stream_id})
