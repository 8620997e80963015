"""The frame hub: ``dashboard`` sinks publish images, viewers take JPEGs.

A hub is a meeting point inside one process, found by name (``hub("default")``). The
sink side costs one dict lookup and a few assignments per frame on the event loop: it
keeps a *reference* to the newest frame of its stream and nothing else. An encoder task
(``run_encoder``, started by the dashboard server) turns the newest frame of each
*watched* stream into a JPEG on a thread of its own, at most ``max_fps`` times a second,
and offers it to every viewer of that stream.

Guarantees:

* Nothing is encoded while nobody watches a stream; a frame replaced before it was
  encoded is counted as ``skipped``: ``published == encoded + skipped + failed +
  pending`` (pending: 0 or 1). A newcomer gets the stream's last JPEG at once, without
  encoding.
* A frame that cannot be encoded is logged (``dashboard_encode_failed``) and counted as
  ``failed``; the encoder goes on.
* Each viewer has a latest-only slot per stream: a JPEG replaced before the viewer took
  it is counted in the viewer's ``dropped`` (and the hub's ``viewer_dropped``), apart
  from the flow's ledger. A slow viewer never makes a sink, or another viewer, wait.
* Memory is bounded: one frame reference per stream, at most ``MAX_STREAMS`` streams per
  hub (the least recently updated is forgotten first: a server whose every request is a
  session stays bounded), and one JPEG per stream per viewer.
* Hubs and viewers are used from one event loop (the flow's); only encoding runs on
  the hub's thread (``actorflow-dashboard-encode``), which ``run_encoder`` shuts down
  when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
import cv2
import numpy as np
import structlog

__all__ = ["FrameHub", "StreamState", "Viewer", "encode_jpeg", "hub", "pack_frame"]

logger = structlog.get_logger(__name__)

_HUBS: dict[str, FrameHub] = {}

MAX_STREAMS = 64
"""Streams a hub remembers; past it, the least recently updated one is forgotten."""


def hub(name: str = "default") -> FrameHub:
    """The process-wide hub called ``name`` (created on first use)."""
    found = _HUBS.get(name)
    if found is None:
        found = _HUBS[name] = FrameHub(name)
    return found


@dataclass
class StreamState:
    """One stream (one session through one ``dashboard`` node): what the page shows."""

    id: str
    """``node/session``: unique within a hub."""
    node: str
    session: int
    title: str
    quality: int = 70
    max_width: int = 640
    max_fps: float = 15.0
    status: str = "live"
    """``live`` while frames arrive, ``ended`` once its sink closed."""
    published: int = 0
    encoded: int = 0
    skipped: int = 0
    failed: int = 0
    """Frames the encoder could not encode (logged)."""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    """Frames per second arriving from the flow (moving average)."""
    frame: Any = field(default=None, repr=False)
    fresh: bool = False
    """``frame`` has not been encoded yet."""
    last: tuple[bytes, bytes] | None = field(default=None, repr=False)
    """The last JPEG as ``(WebSocket message, JPEG)``, for newcomers."""
    last_at: float = 0.0
    next_encode_at: float = 0.0

    def describe(self) -> dict[str, Any]:
        """The JSON the page and ``/dashboard/streams`` show."""
        return {
            "id": self.id,
            "node": self.node,
            "session": self.session,
            "title": self.title,
            "status": self.status,
            "published": self.published,
            "encoded": self.encoded,
            "skipped": self.skipped,
            "failed": self.failed,
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 2),
        }


class Viewer:
    """One watcher: a latest-only slot per key, taken in arrival order.

    Args:
        streams: the stream ids this viewer wants; ``None`` means every stream.
    """

    def __init__(self, streams: set[str] | None = None) -> None:
        self.streams = streams
        self.sent = 0
        """Items handed out by ``next``."""
        self.dropped = 0
        """Frames replaced in a slot before this viewer took them."""
        self._slots: dict[str, Any] = {}
        self._ready: anyio.Event | None = None
        self.closed = False

    def wants(self, stream: str) -> bool:
        """Whether this viewer watches ``stream``."""
        return self.streams is None or stream in self.streams

    def offer(self, key: str, item: Any, *, frame: bool = True) -> bool:
        """Put ``item`` in the slot ``key``; returns ``False`` when it replaced one.

        Only frames count as drops (``frame=False`` for status messages, where only the
        newest matters anyway).
        """
        replaced = key in self._slots
        if replaced:
            del self._slots[key]  # re-insert at the end: slots go out in arrival order
            if frame:
                self.dropped += 1
        self._slots[key] = item
        if self._ready is not None:
            self._ready.set()
        return not replaced

    def forget(self, unwanted: Callable[[str], bool]) -> None:
        """Empty the slots whose key ``unwanted`` selects (not counted as drops)."""
        for key in [k for k in self._slots if unwanted(k)]:
            del self._slots[key]

    def pending(self) -> int:
        """Items waiting in the slots."""
        return len(self._slots)

    async def next(self) -> tuple[str, Any]:
        """The oldest waiting ``(key, item)``, waiting for one.

        Raises:
            anyio.EndOfStream: the viewer was closed.
        """
        while not self._slots:
            if self.closed:
                raise anyio.EndOfStream
            self._ready = anyio.Event()
            await self._ready.wait()
        key = next(iter(self._slots))
        self.sent += 1
        return key, self._slots.pop(key)

    def close(self) -> None:
        """Wake ``next`` with ``EndOfStream`` once the slots are empty."""
        self.closed = True
        self._slots.clear()
        if self._ready is not None:
            self._ready.set()


def encode_jpeg(frame: np.ndarray, quality: int, max_width: int) -> tuple[bytes, int, int]:
    """A BGR (or grey) frame as JPEG, scaled down to ``max_width``; ``(jpeg, w, h)``."""
    height, width = frame.shape[:2]
    if max_width and width > max_width:
        height = max(1, round(height * max_width / width))
        width = max_width
        frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    ok, buffer = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        msg = f"cannot encode a {frame.shape} {frame.dtype} frame as JPEG"
        raise ValueError(msg)
    return buffer.tobytes(), width, height


def pack_frame(header: dict[str, Any], jpeg: bytes) -> bytes:
    """A binary WebSocket message: 4-byte big-endian header length, JSON header, JPEG."""
    head = json.dumps(header, separators=(",", ":")).encode()
    return len(head).to_bytes(4, "big") + head + jpeg


class FrameHub:
    """Streams published by ``dashboard`` sinks and the viewers watching them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.streams: dict[str, StreamState] = {}
        self.viewers: set[Viewer] = set()
        self.viewer_dropped = 0
        """Frames dropped by viewers that have gone (live ones: ``Viewer.dropped``)."""
        self.viewer_sent = 0
        self._wake: anyio.Event | None = None
        self._handled: anyio.Event | None = None

    # -- the sink's side (event loop, per frame) ----------------------------------------

    def publish(self, stream: StreamState, frame: np.ndarray) -> None:
        """Make ``frame`` the newest of ``stream``; O(1), never waits, never copies."""
        now = time.monotonic()
        if stream.last_at:
            gap = now - stream.last_at
            if gap > 0:
                stream.fps = 0.8 * stream.fps + 0.2 / gap if stream.fps else 1.0 / gap
        stream.last_at = now
        stream.published += 1
        if stream.fresh:
            stream.skipped += 1
        stream.frame, stream.fresh = frame, True
        stream.status = "live"
        if self._wake is not None and self.watched(stream.id):
            self._wake.set()

    def stream(self, node: str, session: int, title: str, options: dict[str, Any]) -> StreamState:
        """The stream of ``session`` through ``node``, created on first use.

        ``title`` and ``options`` (``quality``, ``max_width``, ``max_fps``) apply when
        the stream is created.
        """
        key = f"{node}/{session}"
        found = self.streams.get(key)
        if found is None:
            if len(self.streams) >= MAX_STREAMS:
                oldest = min(self.streams.values(), key=lambda s: s.last_at)
                del self.streams[oldest.id]
            found = self.streams[key] = StreamState(key, node, session, title or key, **options)
        return found

    def end(self, node: str) -> None:
        """Every stream of ``node`` has ended (its sink closed); the last frame stays."""
        for stream in self.streams.values():
            if stream.node == node:
                stream.status = "ended"

    # -- the viewers' side ---------------------------------------------------------------

    def watched(self, stream: str) -> bool:
        """Whether some viewer wants ``stream``."""
        return any(v.wants(stream) for v in self.viewers)

    @contextlib.contextmanager
    def watch(self, streams: set[str] | None = None) -> Iterator[Viewer]:
        """Register a viewer for the ``with`` block; it gets each stream's newest JPEG."""
        viewer = Viewer(streams)
        self.viewers.add(viewer)
        self.resend(viewer)
        try:
            yield viewer
        finally:
            self.viewers.discard(viewer)
            viewer.close()
            self.viewer_dropped += viewer.dropped
            self.viewer_sent += viewer.sent

    def resend(self, viewer: Viewer) -> None:
        """Give ``viewer`` the last JPEG of every stream it wants (a newcomer's tiles).

        Drops whatever ``viewer`` holds for streams it no longer wants.
        """
        for state in self.streams.values():
            if state.last is not None and viewer.wants(state.id):
                viewer.offer(state.id, state.last)
        viewer.forget(lambda key: key in self.streams and not viewer.wants(key))
        if self._wake is not None:
            self._wake.set()

    def counters(self) -> dict[str, int]:
        """Totals over streams and viewers (gone and present)."""
        live = list(self.viewers)
        return {
            "streams": len(self.streams),
            "viewers": len(live),
            "published": sum(s.published for s in self.streams.values()),
            "encoded": sum(s.encoded for s in self.streams.values()),
            "skipped": sum(s.skipped for s in self.streams.values()),
            "failed": sum(s.failed for s in self.streams.values()),
            "viewer_sent": self.viewer_sent + sum(v.sent for v in live),
            "viewer_dropped": self.viewer_dropped + sum(v.dropped for v in live),
        }

    async def wait_handled(self, count: int) -> None:
        """Wait until the encoder has handled ``count`` frames in all (encoded or failed).

        For tests and benchmarks that pace a source by the encoder.
        """
        while sum(s.encoded + s.failed for s in self.streams.values()) < count:
            self._handled = self._handled or anyio.Event()
            await self._handled.wait()

    # -- the encoder ---------------------------------------------------------------------

    async def run_encoder(self) -> None:
        """Encode the newest frame of each watched stream, rate-limited, until cancelled."""
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(1, thread_name_prefix="actorflow-dashboard-encode")
        try:
            while True:
                due = [s for s in self.streams.values() if s.fresh and self.watched(s.id)]
                if not due:
                    self._wake = anyio.Event()
                    await self._wake.wait()
                    continue
                now = time.monotonic()
                ready = [s for s in due if s.next_encode_at <= now]
                if not ready:
                    await anyio.sleep(min(s.next_encode_at for s in due) - now)  # the fps cap
                    continue
                for state in ready:
                    await self._encode(state, loop, pool)
        finally:
            self._wake = None
            pool.shutdown(wait=False, cancel_futures=True)

    async def _encode(
        self, state: StreamState, loop: asyncio.AbstractEventLoop, pool: ThreadPoolExecutor
    ) -> None:
        frame, state.fresh = state.frame, False
        state.next_encode_at = time.monotonic() + (1.0 / state.max_fps if state.max_fps else 0)
        try:
            jpeg, width, height = await loop.run_in_executor(
                pool, encode_jpeg, frame, state.quality, state.max_width
            )
        except (ValueError, cv2.error) as exc:
            state.failed += 1
            logger.warning("dashboard_encode_failed", stream=state.id, error=str(exc))
        else:
            state.encoded += 1
            self._deliver(state, jpeg, width, height)
        if self._handled is not None:
            self._handled.set()
            self._handled = None

    def _deliver(self, state: StreamState, jpeg: bytes, width: int, height: int) -> None:
        state.width, state.height = width, height
        header = {"stream": state.id, "n": state.encoded, "w": width, "h": height}
        state.last = (pack_frame(header, jpeg), jpeg)
        for viewer in list(self.viewers):
            if viewer.wants(state.id):
                viewer.offer(state.id, state.last)
