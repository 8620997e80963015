"""Detection units: NMS, box visualization, label visualization.

Visualization units draw on a *copy* of the image (inputs are shared by fan-out and
never modified) and run inline: drawing a handful of boxes costs microseconds.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections, nms
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

__all__ = ["BoxVisualization", "LabelVisualization", "Nms", "draw_boxes", "draw_labels"]

_PALETTE = (
    (0, 155, 255),
    (255, 128, 0),
    (60, 200, 60),
    (200, 60, 200),
    (40, 40, 230),
    (230, 200, 40),
)


def _colour(class_id: int) -> tuple[int, int, int]:
    return _PALETTE[class_id % len(_PALETTE)]


def draw_boxes(
    image: np.ndarray, detections: Detections, *, thickness: int = 2, landmarks: bool = True
) -> np.ndarray:
    """Return a copy of ``image`` with every box (and ``data["landmarks"]`` points) drawn."""
    out = image.copy()
    points = detections.data.get("landmarks") if landmarks else None
    for i, (box, _, class_id) in enumerate(detections):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        colour = _colour(class_id)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        if points is not None:
            for x, y in np.asarray(points[i]).reshape(-1, 2):
                cv2.circle(out, (round(float(x)), round(float(y))), 2, colour, -1)
    return out


def draw_labels(
    image: np.ndarray, detections: Detections, *, text: str = "{confidence:.2f}", scale: float = 0.5
) -> np.ndarray:
    """Return a copy of ``image`` with a label above each box.

    ``text`` is a format string over ``confidence``, ``class_id`` and every
    ``data`` key (``"{class_name} {confidence:.2f}"``).
    """
    out = image.copy()
    for i, (box, confidence, class_id) in enumerate(detections):
        fields: dict[str, Any] = {"confidence": confidence, "class_id": class_id}
        fields.update({k: v[i] for k, v in detections.data.items() if np.ndim(v[i]) == 0})
        try:
            label = text.format(**fields)
        except (KeyError, ValueError, IndexError):
            label = f"{class_id} {confidence:.2f}"
        x1, y1 = round(float(box[0])), round(float(box[1]))
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(out, (x1, top), (x1 + tw + 2, top + th + base + 2), _colour(class_id), -1)
        cv2.putText(
            out,
            label,
            (x1 + 1, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return out


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
    """

    name = "box_visualization"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    detections_in: Input[Detections] = Input("detections", Detections)
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    def __init__(self, *, thickness: int = 2, landmarks: bool = True) -> None:
        self._thickness, self._landmarks = int(thickness), bool(landmarks)

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Emit the annotated copy."""
        image = draw_boxes(
            packet.data["image"],
            packet.data["detections"],
            thickness=self._thickness,
            landmarks=self._landmarks,
        )
        await ctx.emit(self.image_out, packet.replace(image))


class LabelVisualization(FlowUnit):
    """Write a label above each detection box.

    Ports: image (in), detections (in), joined by lineage; image (out), a new array.

    Args:
        text: format string over ``confidence``, ``class_id`` and scalar ``data`` keys.
        scale: font scale.
    """

    name = "label_visualization"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    detections_in: Input[Detections] = Input("detections", Detections)
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    def __init__(self, *, text: str = "{confidence:.2f}", scale: float = 0.5) -> None:
        self._text, self._scale = str(text), float(scale)

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Emit the labelled copy."""
        image = draw_labels(
            packet.data["image"], packet.data["detections"], text=self._text, scale=self._scale
        )
        await ctx.emit(self.image_out, packet.replace(image))
