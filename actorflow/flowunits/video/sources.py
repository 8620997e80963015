"""Frame sources: ``video_source`` (file, RTSP/HTTP URL, camera index) and ``image_dir_source``.

Every OpenCV call that can block (open, read, imread) runs on the node's executor
thread through ``ctx.run_blocking``; the event loop only paces and emits.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import cv2
import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.unit import Context, Output, SourceUnit

__all__ = ["ImageDirSource", "VideoSource", "natural_key", "open_capture"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


def natural_key(name: str) -> list[Any]:
    """Sort key for ``frame2.png`` < ``frame10.png`` (digits compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def open_capture(uri: str | int, timeout: float = 0.0) -> Any:
    """Open a ``cv2.VideoCapture`` (blocking); ``None`` if it cannot be opened.

    ``timeout`` (seconds, streams only) bounds both the open and every later read, so
    a server that vanishes is noticed instead of blocking a read for FFmpeg's default.
    """
    if timeout and isinstance(uri, str) and "://" in uri:
        ms = int(timeout * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        cap = cv2.VideoCapture(uri, cv2.CAP_FFMPEG, params)
    else:
        cap = cv2.VideoCapture(uri)
    if not cap.isOpened():
        cap.release()
        return None
    return cap


def _read(cap: Any) -> np.ndarray | None:
    ok, frame = cap.read()
    return frame if ok else None


class VideoSource(SourceUnit):
    """Frames from a video file, a stream URL (``rtsp://``, ``http://``) or a camera index.

    Ports:
        frame (out): ``np.ndarray`` H x W x 3 ``uint8`` BGR.

    Guarantees:
        * A file ends the stream at its last frame. A file that cannot be opened fails
          ``open`` with the path in the message.
        * Streams and cameras are live: when a read fails, the source releases the
          capture and reconnects with exponential backoff (``backoff`` doubling up to
          ``backoff_max``, with jitter), ``max_reconnects`` times (``-1``: forever),
          logging ``video_reconnecting``. Edges out of a live source default to the
          ``latest`` policy (``live_policy``), so that a slow consumer sees fresh
          frames; edges out of a file default to ``block`` (every frame); an edge's own
          ``policy`` attribute wins over both.
        * ``status`` is ``connecting`` until the first frame, then ``live``,
          ``reconnecting`` during an outage (``outages`` counts them) and ``ended`` at
          the end; statistics and the dashboard show it (``describe()``).
        * Opening and reading a stream URL time out after ``timeout`` seconds, so a
          vanished server starts a reconnect instead of a long blocked read.
        * ``fps`` caps the emitted rate (the source sleeps between frames); ``0`` means
          as fast as frames can be read.

    Args:
        uri: file path (relative to the graph file), URL, or camera index (int or
            digits).
        fps: maximum frames per second to emit (0: no limit).
        max_frames: stop after this many frames (0: no limit).
        max_reconnects: reconnect attempts for streams and cameras.
        backoff: first reconnect delay in seconds.
        backoff_max: longest reconnect delay.
        timeout: seconds an open or a read of a stream URL may take.
    """

    name = "video_source"
    live_policy = "latest"
    """The edge policy to use after a live source (cameras, RTSP)."""
    frame_out: Output[np.ndarray] = Output("frame", np.ndarray)

    def __init__(
        self,
        *,
        uri: str | int,
        fps: float = 0.0,
        max_frames: int = 0,
        max_reconnects: int = 10,
        backoff: float = 0.5,
        backoff_max: float = 10.0,
        timeout: float = 5.0,
    ) -> None:
        if float(fps) < 0 or int(max_frames) < 0:
            msg = f"fps and max_frames must be >= 0, got fps={fps} max_frames={max_frames}"
            raise UnitConfigError(msg)
        if float(backoff) <= 0 or float(backoff_max) < float(backoff):
            msg = f"need 0 < backoff <= backoff_max, got {backoff}, {backoff_max}"
            raise UnitConfigError(msg)
        text = str(uri)
        self._camera = int(text) if text.isdigit() else None
        self._live = self._camera is not None or "://" in text
        self._uri = text
        self._fps, self._max_frames = float(fps), int(max_frames)
        self._max_reconnects = int(max_reconnects)
        self._backoff, self._backoff_max = float(backoff), float(backoff_max)
        self._timeout = float(timeout)
        self._cap: Any = None
        self._target: str | int = text
        self.status = "connecting"
        self.outages = 0
        """Times a live stream was lost (each outage once, however many attempts)."""

    def describe(self) -> dict[str, Any]:
        """Where the source stands: ``status`` and ``outages``."""
        return {"status": self.status, "outages": self.outages}

    def output_policy(self, port: str) -> str | None:
        """``latest`` after a live stream or camera, so consumers see fresh frames."""
        return self.live_policy if self._live else None

    async def open(self, ctx: Context) -> None:
        """Open the capture (on the node's thread)."""
        if self._camera is not None:
            self._target = self._camera
        elif not self._live:
            path = ctx.resolve_path(self._uri)
            if not path.is_file():
                msg = f"node {ctx.node!r}: video file not found: {path}"
                raise UnitConfigError(msg)
            self._target = str(path)
        self._cap = await ctx.run_blocking(open_capture, self._target, self._timeout)
        if self._cap is None and not self._live:
            msg = f"node {ctx.node!r}: OpenCV cannot open video {self._target!r}"
            raise UnitConfigError(msg)

    async def generate(self, ctx: Context) -> AsyncIterator[np.ndarray]:
        """Yield frames until the file ends, ``max_frames``, or reconnects run out."""
        emitted, failures = 0, 0
        interval = 1.0 / self._fps if self._fps else 0.0
        next_at = time.monotonic()
        while not self._max_frames or emitted < self._max_frames:
            frame = await ctx.run_blocking(_read, self._cap) if self._cap is not None else None
            if frame is None:
                if not self._live:
                    break
                failures += 1
                if 0 <= self._max_reconnects < failures:
                    ctx.log.warning(
                        "video_reconnects_exhausted", uri=self._uri, attempts=failures - 1
                    )
                    break
                if self.status == "live":
                    self.outages += 1
                self.status = "reconnecting"
                await self._reconnect(ctx, failures)
                continue
            failures = 0
            if self.status != "live":
                if self.outages:
                    ctx.log.warning("video_reconnected", uri=self._uri, outages=self.outages)
                self.status = "live"
            if interval:
                delay = next_at - time.monotonic()
                if delay > 0:
                    await anyio.sleep(delay)
                next_at = max(next_at + interval, time.monotonic() - interval)
            emitted += 1
            yield frame
        self.status = "ended"

    async def _reconnect(self, ctx: Context, attempt: int) -> None:
        delay = min(self._backoff_max, self._backoff * 2 ** (attempt - 1))
        delay *= random.uniform(0.8, 1.2)  # jitter, not cryptography
        ctx.log.warning(
            "video_reconnecting", uri=self._uri, attempt=attempt, delay_s=round(delay, 3)
        )
        if self._cap is not None:
            await ctx.run_blocking(self._cap.release)
            self._cap = None
        await anyio.sleep(delay)
        self._cap = await ctx.run_blocking(open_capture, self._target, self._timeout)

    async def close(self, ctx: Context) -> None:
        """Release the capture."""
        if self._cap is not None:
            await ctx.run_blocking(self._cap.release)
            self._cap = None


class ImageDirSource(SourceUnit):
    """Images from a directory, in natural order (``2.png`` before ``10.png``).

    Ports:
        image (out): ``np.ndarray`` H x W x 3 ``uint8`` BGR, or the raw file ``bytes``
            with ``decode=False`` (for an ``image_decode`` node with limits).

    A file OpenCV cannot read is skipped with an ``image_unreadable`` warning.

    Args:
        path: the directory (relative to the graph file).
        pattern: glob of files to take (default: common image suffixes).
        decode: decode with OpenCV here, or emit bytes.
    """

    name = "image_dir_source"
    image_out: Output[Any] = Output("image", np.ndarray)

    def __init__(self, *, path: str, pattern: str = "*", decode: bool = True) -> None:
        self._path, self._pattern, self._decode = str(path), str(pattern), bool(decode)
        self._files: list[Path] = []

    async def open(self, ctx: Context) -> None:
        """List the directory."""
        root = ctx.resolve_path(self._path)
        if not root.is_dir():
            msg = f"node {ctx.node!r}: image directory not found: {root}"
            raise UnitConfigError(msg)
        files = [
            p
            for p in root.glob(self._pattern)
            if p.is_file() and (self._pattern != "*" or p.suffix.lower() in IMAGE_SUFFIXES)
        ]
        self._files = sorted(files, key=lambda p: natural_key(p.name))

    async def generate(self, ctx: Context) -> AsyncIterator[Any]:
        """Yield each image in natural order."""
        for path in self._files:
            if not self._decode:
                yield await ctx.run_blocking(path.read_bytes)
                continue
            image = await ctx.run_blocking(cv2.imread, str(path), cv2.IMREAD_COLOR)
            if image is None:
                ctx.log.warning("image_unreadable", path=str(path))
                continue
            yield image
