"""Detection units: NMS, box visualization, label visualization.

Visualization units draw on a *copy* of the image (inputs are shared by fan-out and
never modified) and run inline: drawing a handful of boxes costs microseconds. They
take Roboflow's parameters (``core/bounding_box_visualization@v1``,
``core/label_visualization@v1``); see ``draw`` for palettes and colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections, nms
from actorflow.flowunits.detection.draw import (
    LEGACY,
    POSITIONS,
    Palette,
    draw_boxes,
    draw_labels,
    parse_color,
)
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

__all__ = ["BoxVisualization", "LabelVisualization", "Nms", "draw_boxes", "draw_labels"]


def _palette(
    color_palette: str | None, palette_size: int, custom_colors: Sequence[str], color_axis: str
) -> Palette:
    """Roboflow's palette parameters, or actorflow's own palette when none is named."""
    if color_palette is None:
        return Palette(LEGACY.colors, Palette.from_params(color_axis=color_axis).axis)
    return Palette.from_params(color_palette, palette_size, list(custom_colors), color_axis)


class Nms(FlowUnit):
    """Non-maximum suppression (and a confidence floor) on ``Detections``.

    Ports: detections (in); detections (out), best score first.

    Args:
        iou_threshold: suppress boxes overlapping a kept one by more than this.
        confidence: drop boxes scoring below this first.
        class_agnostic: when false, boxes only suppress boxes of their own class.
        method: ``union`` (IoU) or ``min`` (intersection over the smaller box).
    """

    name = "nms"
    detections_in: Input[Detections] = Input("detections", Detections)
    detections_out: Output[Detections] = Output("detections", Detections)

    def __init__(
        self,
        *,
        iou_threshold: float = 0.5,
        confidence: float = 0.0,
        class_agnostic: bool = False,
        method: str = "union",
    ) -> None:
        if not 0.0 <= float(iou_threshold) <= 1.0:
            msg = f"iou_threshold must be within [0, 1], got {iou_threshold}"
            raise UnitConfigError(msg)
        if method not in ("union", "min"):
            msg = f"method must be 'union' or 'min', got {method!r}"
            raise UnitConfigError(msg)
        self._iou, self._conf = float(iou_threshold), float(confidence)
        self._agnostic, self._method = bool(class_agnostic), method

    async def process(self, ctx: Context, packet: Packet[Detections]) -> None:
        """Emit the kept detections."""
        dets = packet.data
        dets = dets[dets.confidence >= self._conf]
        keep = nms(
            dets.xyxy,
            dets.confidence,
            self._iou,
            method=self._method,
            class_id=None if self._agnostic else dets.class_id,
        )
        await ctx.emit(self.detections_out, packet.replace(dets[keep]))


class BoxVisualization(FlowUnit):
    """Draw detection boxes (and landmarks) on the image.

    Ports: image (in), detections (in), joined by lineage; image (out), a new array.
    The Roboflow field ``predictions`` maps to ``detections`` in workflows.

    Args:
        thickness: line width in pixels.
        landmarks: also draw ``data["landmarks"]`` points.
        color_palette: ``DEFAULT``, ``ROBOFLOW``, ``CUSTOM`` or ``Matplotlib <map>``
            (``None``: actorflow's palette).
        palette_size: colours taken from a ``Matplotlib`` map.
        custom_colors: the ``CUSTOM`` palette (names, ``#RRGGBB``, ``rgb(...)``).
        color_axis: pick colours by ``CLASS``, ``INDEX`` or ``TRACK``.
        roundness: 0 (square corners) to 1 (corner radius: half the shorter side).
        copy_image: accepted for Roboflow workflows; the unit always draws on a copy,
            because its input may be shared with other nodes.
    """

    name = "box_visualization"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    detections_in: Input[Detections] = Input("detections", Detections)
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    def __init__(
        self,
        *,
        thickness: int = 2,
        landmarks: bool = True,
        color_palette: str | None = None,
        palette_size: int = 10,
        custom_colors: Sequence[str] = (),
        color_axis: str = "CLASS",
        roundness: float = 0.0,
        copy_image: bool = True,
    ) -> None:
        if int(thickness) < 1 or not 0.0 <= float(roundness) <= 1.0:
            msg = f"need thickness >= 1 and 0 <= roundness <= 1, got {thickness}, {roundness}"
            raise UnitConfigError(msg)
        self._thickness, self._landmarks = int(thickness), bool(landmarks)
        self._palette = _palette(color_palette, palette_size, custom_colors, color_axis)
        self._roundness = float(roundness)
        del copy_image  # drawing always copies: inputs are shared by fan-out

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Emit the annotated copy."""
        image = draw_boxes(
            packet.data["image"],
            packet.data["detections"],
            thickness=self._thickness,
            landmarks=self._landmarks,
            palette=self._palette,
            roundness=self._roundness,
        )
        await ctx.emit(self.image_out, packet.replace(image))


class LabelVisualization(FlowUnit):
    """Write a label on each detection box.

    Ports: image (in), detections (in), joined by lineage; image (out), a new array.
    The Roboflow field ``predictions`` maps to ``detections`` in workflows.

    Args:
        text: Roboflow's ``Class``, ``Confidence``, ``Class and Confidence``,
            ``Index``, ``Dimensions``, ``Area``, or a format string over
            ``confidence``, ``class_id``, ``index`` and scalar ``data`` keys.
        text_scale: font scale.
        text_thickness: font stroke width.
        text_padding: pixels between the text and its background's edge.
        text_position: where the label sits on its box (``TOP_LEFT``, ``CENTER``...).
        text_color: the text's colour (name, ``#RRGGBB``, ``rgb(...)``).
        border_radius: corner radius of the label's background, in pixels.
        color_palette: background colours, as for ``box_visualization``.
        palette_size: colours taken from a ``Matplotlib`` map.
        custom_colors: the ``CUSTOM`` palette.
        color_axis: pick colours by ``CLASS``, ``INDEX`` or ``TRACK``.
        copy_image: accepted for Roboflow workflows; the unit always draws on a copy.
    """

    name = "label_visualization"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    detections_in: Input[Detections] = Input("detections", Detections)
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    def __init__(
        self,
        *,
        text: str = "{confidence:.2f}",
        text_scale: float = 0.5,
        text_thickness: int = 1,
        text_padding: int = 1,
        text_position: str = "TOP_LEFT",
        text_color: str = "WHITE",
        border_radius: int = 0,
        color_palette: str | None = None,
        palette_size: int = 10,
        custom_colors: Sequence[str] = (),
        color_axis: str = "CLASS",
        copy_image: bool = True,
    ) -> None:
        if text_position not in POSITIONS:
            msg = f"text_position must be one of {list(POSITIONS)}, got {text_position!r}"
            raise UnitConfigError(msg)
        if float(text_scale) <= 0 or int(text_thickness) < 1 or int(text_padding) < 0:
            msg = (
                "need text_scale > 0, text_thickness >= 1 and text_padding >= 0, got "
                f"{text_scale}, {text_thickness}, {text_padding}"
            )
            raise UnitConfigError(msg)
        if int(border_radius) < 0:
            msg = f"border_radius must be >= 0 pixels, got {border_radius}"
            raise UnitConfigError(msg)
        parse_color(text_color)  # fail at build, not on the first frame
        self._style: dict[str, Any] = {
            "text": str(text),
            "text_scale": float(text_scale),
            "text_thickness": int(text_thickness),
            "text_padding": int(text_padding),
            "text_position": text_position,
            "text_color": text_color,
            "border_radius": int(border_radius),
            "palette": _palette(color_palette, palette_size, custom_colors, color_axis),
        }
        del copy_image  # drawing always copies: inputs are shared by fan-out

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Emit the labelled copy."""
        image = draw_labels(packet.data["image"], packet.data["detections"], **self._style)
        await ctx.emit(self.image_out, packet.replace(image))
