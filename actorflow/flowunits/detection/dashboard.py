"""``dashboard_visualization``: the seed's "show this image on the dashboard" block.

DaoAI's ``daoai/dashboard_visualization@v1`` draws nothing itself: it puts the image
it is given (already annotated upstream) on the live dashboard page. This unit takes
the same field (``image``) and passes the image through unchanged on its ``image``
output, so it can sit anywhere in a graph. Publishing to actorflow's live dashboard
happens in ``DashboardVisualization.publish``, the one place to connect once the
``dashboard`` sink lands (DESIGN §10); until then it records the latest image only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from actorflow.unit import Context, FlowUnit, Input, Output, Packet

__all__ = ["DashboardVisualization"]


class DashboardVisualization(FlowUnit):
    """Publish an image to the live dashboard and pass it on unchanged.

    Ports: image (in) an H x W x 3 ``uint8`` image; image (out) the same array.

    Args:
        title: the tile's caption on the dashboard (default: the node id).
    """

    name = "dashboard_visualization"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    def __init__(self, *, title: str = "") -> None:
        self._title = str(title)
        self._published = 0

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Publish the image, then emit it unchanged."""
        self.publish(ctx, packet)
        await ctx.emit(self.image_out, packet)

    def publish(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Hand the image to the live dashboard (the single place that does).

        Must stay cheap: it runs on the event loop for every image. The dashboard
        sink encodes only while someone watches, keeping the latest image per stream.
        """
        self._published += 1

    def describe(self) -> Mapping[str, Any]:
        """The tile's caption and how many images were published."""
        return {"title": self._title, "published": self._published}
