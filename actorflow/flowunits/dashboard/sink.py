"""The ``dashboard`` sink: publish images (annotated frames) to the live dashboard page."""

from __future__ import annotations

from typing import Any

import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.dashboard.hub import FrameHub, hub
from actorflow.unit import Context, FlowUnit, Input, Packet

__all__ = ["DashboardSink"]


class DashboardSink(FlowUnit):
    """Show each session's images as a live video tile on the dashboard page.

    Ports:
        image (in): H x W x 3 ``uint8`` BGR (or H x W grey) frames, e.g. the output of
            ``box_visualization``.

    Guarantees: publishing costs the flow a few assignments per frame on the event
    loop and never waits: frames are JPEG-encoded by the dashboard server, on a thread
    of its own, only while someone watches, at most ``max_fps`` times a second per
    stream. Every packet is counted as delivered in the flow's ledger whether or not
    anyone watches; what viewers miss is counted by the hub (``skipped``,
    ``viewer_dropped``), never by the flow.

    Args:
        hub: the name of the frame hub the dashboard server reads (``default``).
        title: the tile's caption (default: ``node/session``).
        quality: JPEG quality, 1-100.
        max_width: frames wider than this are scaled down before encoding (0: never).
        max_fps: the most JPEGs per second made for this node's streams (0: no cap).
    """

    name = "dashboard"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)

    def __init__(
        self,
        *,
        hub: str = "default",
        title: str = "",
        quality: int = 70,
        max_width: int = 640,
        max_fps: float = 15.0,
    ) -> None:
        if not 1 <= int(quality) <= 100:
            msg = f"quality must be 1-100, got {quality}; 70 is a good default"
            raise UnitConfigError(msg)
        if int(max_width) < 0 or float(max_fps) < 0:
            msg = f"max_width and max_fps must be >= 0, got {max_width}, {max_fps}"
            raise UnitConfigError(msg)
        self._hub_name, self._title = str(hub), str(title)
        self._options: dict[str, Any] = {
            "quality": int(quality),
            "max_width": int(max_width),
            "max_fps": float(max_fps),
        }
        self._hub: FrameHub | None = None

    async def open(self, ctx: Context) -> None:
        """Find the hub."""
        self._hub = hub(self._hub_name)

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Make this frame the newest of its session's stream."""
        frame = packet.data
        if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3):
            msg = (
                f"node {ctx.node!r}: port 'image' needs an H x W x 3 BGR or H x W grey "
                f"array, got {type(frame).__name__} {getattr(frame, 'shape', '')}; connect "
                "an image port (e.g. box_visualization:image)"
            )
            raise TypeError(msg)
        assert self._hub is not None
        stream = self._hub.stream(ctx.node, packet.session, self._title, self._options)
        self._hub.publish(stream, frame)

    async def close(self, ctx: Context) -> None:
        """Mark this node's streams as ended (the last frame stays on the page)."""
        if self._hub is not None:
            self._hub.end(ctx.node)

    def describe(self) -> dict[str, Any]:
        """The hub this node publishes to."""
        return {"hub": self._hub_name}
