"""``dashboard_visualization``: DaoAI's "show this image on the dashboard" block.

DaoAI's ``daoai/dashboard_visualization@v1`` draws nothing itself: it puts the image
it is given (already annotated upstream) on the live dashboard page. This unit is the
``dashboard`` sink (``flowunits/dashboard``: latest frame per stream, JPEG only while
someone watches) with an ``image`` output that passes the image on unchanged, so it
can sit anywhere in a graph, as the workflow block does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from actorflow.flowunits.dashboard.sink import DashboardSink
from actorflow.unit import Context, Output, Packet

__all__ = ["DashboardVisualization"]


class DashboardVisualization(DashboardSink):
    """Publish an image to the live dashboard and pass it on unchanged.

    Ports: image (in) an H x W x 3 ``uint8`` image; image (out) the same array.
    Parameters: those of the ``dashboard`` sink (``title`` is the tile's caption).
    """

    name = "dashboard_visualization"
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Publish the image, then emit it unchanged."""
        await super().process(ctx, packet)
        await ctx.emit(self.image_out, packet)
