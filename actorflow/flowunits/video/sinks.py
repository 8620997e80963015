"""File sinks: ``video_writer_sink``, ``image_dir_sink``, ``json_lines_sink``.

Sinks emit nothing. Encoding and file writes run on the node's executor thread, so a
slow disk applies backpressure through the sink's mailbox instead of stalling the loop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections
from actorflow.unit import Context, FlowUnit, Input, Packet

__all__ = ["ImageDirSink", "JsonLinesSink", "VideoWriterSink", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """Arrays, numpy scalars, ``Detections`` and containers of them, as JSON values."""
    if isinstance(value, Detections):
        return value.to_json()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": len(value)}
    return value


class VideoWriterSink(FlowUnit):
    """Write frames to a video file (opened at the first frame, which fixes the size).

    Ports:
        frame (in): H x W x 3 ``uint8`` BGR; frames of another size are resized to the
            first frame's size.

    Guarantees: the file is complete and playable after ``close`` (the writer is
    released exactly once). A writer OpenCV cannot open fails the packet with the
    path, fourcc and a suggestion (MJPG/.avi or mp4v/.mp4 always work).

    Args:
        path: output file (relative to the graph file); parent directories are created.
        fps: frame rate stored in the file.
        fourcc: codec (``MJPG``, ``mp4v``, ``XVID``).
    """

    name = "video_writer_sink"
    frame_in: Input[np.ndarray] = Input("frame", np.ndarray)

    def __init__(self, *, path: str, fps: float = 25.0, fourcc: str = "MJPG") -> None:
        if len(fourcc) != 4 or float(fps) <= 0:
            msg = f"fourcc must be 4 characters and fps > 0, got {fourcc!r}, {fps}"
            raise UnitConfigError(msg)
        self._path, self._fps, self._fourcc = str(path), float(fps), fourcc
        self._writer: Any = None
        self._size: tuple[int, int] | None = None
        self._file: Path | None = None
        self.frames_written = 0

    async def open(self, ctx: Context) -> None:
        """Resolve the path and create its directory."""
        self._file = ctx.resolve_path(self._path)
        await ctx.run_blocking(self._file.parent.mkdir, 0o777, True, True)

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Write one frame."""
        await ctx.run_blocking(self._write, ctx.node, packet.data)

    def _write(self, node: str, frame: np.ndarray) -> None:
        if self._writer is None:
            height, width = frame.shape[:2]
            self._size = (width, height)
            writer = cv2.VideoWriter(
                str(self._file),
                cv2.CAP_FFMPEG,
                cv2.VideoWriter.fourcc(*self._fourcc),
                self._fps,
                self._size,
            )
            if not writer.isOpened():
                writer.release()
                msg = (
                    f"node {node!r}: cannot open a {self._fourcc} video writer for "
                    f"{self._file}; use fourcc='MJPG' with .avi or 'mp4v' with .mp4"
                )
                raise OSError(msg)
            self._writer = writer
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        self._writer.write(np.ascontiguousarray(frame, dtype=np.uint8))
        self.frames_written += 1

    async def close(self, ctx: Context) -> None:
        """Release the writer (finishes the file)."""
        if self._writer is not None:
            await ctx.run_blocking(self._writer.release)
            self._writer = None


class ImageDirSink(FlowUnit):
    """Write each frame as an image file named from ``pattern``.

    Ports: image (in), H x W x 3 ``uint8`` BGR.

    Args:
        path: directory (relative to the graph file), created if missing.
        pattern: file name; ``{session}``, ``{seq}`` and ``{lineage}`` are filled in.
    """

    name = "image_dir_sink"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)

    def __init__(self, *, path: str, pattern: str = "{session}_{seq:06d}.png") -> None:
        self._path, self._pattern = str(path), str(pattern)
        self._dir: Path | None = None

    async def open(self, ctx: Context) -> None:
        """Create the directory."""
        self._dir = ctx.resolve_path(self._path)
        await ctx.run_blocking(self._dir.mkdir, 0o777, True, True)

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Encode and write one image."""
        lineage = "_".join(str(i) for i in packet.lineage)
        name = self._pattern.format(session=packet.session, seq=packet.seq, lineage=lineage)
        assert self._dir is not None
        path = self._dir / name
        try:
            ok = await ctx.run_blocking(cv2.imwrite, str(path), packet.data)
        except cv2.error as exc:
            ok, reason = False, str(exc).strip().splitlines()[-1]
        else:
            reason = "imwrite returned False"
        if not ok:
            msg = (
                f"node {ctx.node!r}: cannot write {path} ({reason}); use a .png, .jpg "
                "or .bmp pattern and a writable directory"
            )
            raise OSError(msg)


class JsonLinesSink(FlowUnit):
    """Append one JSON object per packet: ``session``, ``seq``, ``lineage`` and ``data``.

    Ports: data (in): anything ``to_jsonable`` handles (``Detections``, arrays, dicts).

    Guarantees: each line is flushed whole when written, so a reader never sees half a
    record; the file is closed exactly once.

    Args:
        path: output file (relative to the graph file); truncated at ``open``.
    """

    name = "json_lines_sink"
    data_in: Input[Any] = Input("data", object)

    def __init__(self, *, path: str) -> None:
        self._path = str(path)
        self._fh: IO[str] | None = None

    async def open(self, ctx: Context) -> None:
        """Open (truncate) the file."""
        path = ctx.resolve_path(self._path)
        self._fh = await ctx.run_blocking(_open_text, path)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Write one line."""
        record = {
            "session": packet.session,
            "seq": packet.seq,
            "lineage": list(packet.lineage),
            "data": to_jsonable(packet.data),
        }
        line = json.dumps(record, separators=(",", ":")) + "\n"
        assert self._fh is not None
        await ctx.run_blocking(_write_line, self._fh, line)

    async def close(self, ctx: Context) -> None:
        """Close the file."""
        if self._fh is not None:
            await ctx.run_blocking(self._fh.close)
            self._fh = None


def _open_text(path: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8")


def _write_line(fh: IO[str], line: str) -> None:
    fh.write(line)
    fh.flush()
