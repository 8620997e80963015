"""Image transforms: resize, letterbox, normalize, colour conversion, crop, to-tensor.

Each unit is a thin wrapper around a pure function of the same name, so the functions
can be used (and tested) without a flow. Inputs are never modified; every unit emits a
new contiguous array.

Where the work runs (``thread`` parameter, on every unit here except ``crop``): small
arrays inline on the event loop, big ones on the node's executor thread; ``nice``
lowers that thread's priority (see ``_ImageUnit``). ``benchmarks/pipeline.py`` measured
why: a 640 x 480 resize takes 1-2 ms, and while the loop is busy with it, the inference
node cannot hand its next batch to onnxruntime, which then idles (actorflow fell to
0.55 x the raw onnxruntime loop with everything inline). The hand-off to a thread costs
about 0.1 ms, so arrays under ``OFFLOAD_ELEMENTS`` stay inline.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

__all__ = [
    "ColorConvert",
    "Crop",
    "Letterbox",
    "Normalize",
    "Resize",
    "ToTensor",
    "crop_boxes",
    "floats",
    "letterbox",
    "normalize",
    "to_tensor",
]

_INTERPOLATION = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
}
_COLOR = {
    "bgr2rgb": cv2.COLOR_BGR2RGB,
    "rgb2bgr": cv2.COLOR_RGB2BGR,
    "bgr2gray": cv2.COLOR_BGR2GRAY,
    "rgb2gray": cv2.COLOR_RGB2GRAY,
    "gray2bgr": cv2.COLOR_GRAY2BGR,
    "gray2rgb": cv2.COLOR_GRAY2RGB,
    "bgr2hsv": cv2.COLOR_BGR2HSV,
    "rgb2hsv": cv2.COLOR_RGB2HSV,
    "bgr2yuv": cv2.COLOR_BGR2YUV,
}


def floats(value: float | str | Sequence[float], what: str) -> tuple[float, ...]:
    """Accept ``0.5``, ``[0.5, 0.5, 0.5]`` or ``"0.5,0.5,0.5"`` (graph files carry text)."""
    try:
        if isinstance(value, str):
            return tuple(float(v) for v in value.replace(" ", "").split(",") if v)
        if isinstance(value, (int, float)):
            return (float(value),)
        return tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        msg = f"{what} must be a number or a list of numbers, got {value!r}"
        raise UnitConfigError(msg) from exc


OFFLOAD_ELEMENTS = 100_000
"""Arrays with at least this many elements are processed on the node's thread by default."""


class _ImageUnit(FlowUnit):
    """Shared parameters of the image units.

    Args:
        thread: run on the node's executor thread (``True``), on the event loop
            (``False``), or decide by array size (``None``).
        nice: on Linux, lower the priority of this node's executor thread by this much
            (0 to 19), so that inference threads win the cores when preprocessing and a
            model compete for them; ``benchmarks/pipeline.py`` measured 0.85 -> 0.91 x
            raw onnxruntime on 2 cores with ``nice=19``. Ignored elsewhere.
    """

    _thread: bool | None = None
    _nice: int = 0

    def _options(self, thread: bool | None, nice: int) -> None:
        if not 0 <= int(nice) <= 19:
            msg = f"nice must be within 0..19 (only lowering priority is allowed), got {nice}"
            raise UnitConfigError(msg)
        self._thread, self._nice = thread, int(nice)

    async def open(self, ctx: Context) -> None:
        """Lower the priority of this node's thread when ``nice`` asks for it."""
        if self._nice and sys.platform.startswith("linux"):
            await ctx.run_blocking(_renice, self._nice)

    async def _call(self, ctx: Context, image: np.ndarray, fn: Any, *args: Any) -> Any:
        if self._thread or (self._thread is None and image.size >= OFFLOAD_ELEMENTS):
            return await ctx.run_blocking(fn, image, *args)
        return fn(image, *args)


def _renice(nice: int) -> None:
    """Lower the calling thread's priority (Linux: threads are scheduled as tasks)."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


def _size(width: int, height: int) -> tuple[int, int]:
    if int(width) <= 0 or int(height) <= 0:
        msg = f"width and height must be > 0, got width={width} height={height}"
        raise UnitConfigError(msg)
    return int(width), int(height)


def letterbox(
    image: np.ndarray,
    width: int,
    height: int,
    *,
    color: int = 114,
    interpolation: int = cv2.INTER_LINEAR,
) -> tuple[np.ndarray, float, int, int]:
    """Fit ``image`` inside width x height keeping its aspect ratio, padding the rest.

    Returns:
        (padded image, scale, pad_x, pad_y): a point (x, y) of the input maps to
        ``(x * scale + pad_x, y * scale + pad_y)``.
    """
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=interpolation)
    pad_x, pad_y = (width - nw) // 2, (height - nh) // 2
    out = cv2.copyMakeBorder(
        resized,
        pad_y,
        height - nh - pad_y,
        pad_x,
        width - nw - pad_x,
        cv2.BORDER_CONSTANT,
        value=(color, color, color),
    )
    return out, scale, pad_x, pad_y


def normalize(
    image: np.ndarray, mean: Sequence[float], std: Sequence[float], scale: float = 1.0
) -> np.ndarray:
    """``(image * scale - mean) / std`` per channel, as a new ``float32`` array."""
    out = image.astype(np.float32)
    if scale != 1.0:
        out *= np.float32(scale)
    out -= np.asarray(mean, np.float32)
    out *= np.asarray([1.0 / s for s in std], np.float32)
    return out


def to_tensor(image: np.ndarray, *, scale: float = 1.0, batch_axis: bool = False) -> np.ndarray:
    """H x W x C (or H x W) to C x H x W ``float32`` (1 x C x H x W with ``batch_axis``)."""
    arr = image[:, :, None] if image.ndim == 2 else image
    out = np.ascontiguousarray(arr.transpose(2, 0, 1), dtype=np.float32)
    if scale != 1.0:
        out *= np.float32(scale)
    return out[None] if batch_axis else out


def crop_boxes(
    image: np.ndarray, xyxy: np.ndarray, *, margin: float = 0.0, size: tuple[int, int] | None = None
) -> list[np.ndarray]:
    """One crop per box (clipped to the image; grown by ``margin`` x box size per side).

    An empty crop (a box entirely outside the image) comes back as a 1 x 1 black patch
    (or ``size``), so that the count always equals the number of boxes.
    """
    h, w = image.shape[:2]
    crops = []
    for x1, y1, x2, y2 in np.asarray(xyxy, np.float64).reshape(-1, 4):
        mx, my = (x2 - x1) * margin, (y2 - y1) * margin
        ix1, iy1 = max(0, int(np.floor(x1 - mx))), max(0, int(np.floor(y1 - my)))
        ix2, iy2 = min(w, int(np.ceil(x2 + mx))), min(h, int(np.ceil(y2 + my)))
        patch = image[iy1:iy2, ix1:ix2]
        if patch.size == 0:
            patch = np.zeros((1, 1, *image.shape[2:]), image.dtype)
        if size is not None:
            patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
        crops.append(np.ascontiguousarray(patch))
    return crops


def _resize(image: np.ndarray, size: tuple[int, int], flag: int) -> np.ndarray:
    return np.asarray(cv2.resize(image, size, interpolation=flag))


def _letterbox(
    image: np.ndarray, size: tuple[int, int], color: int
) -> tuple[np.ndarray, float, int, int]:
    return letterbox(image, *size, color=color)


class Resize(_ImageUnit):
    """Resize images to width x height.

    Ports: image (in) H x W x C ``uint8``/``float32``; image (out) height x width x C.

    Args:
        width: output width in pixels.
        height: output height in pixels.
        interpolation: ``area`` (best for shrinking), ``linear``, ``cubic`` or ``nearest``.
    """

    name = "resize"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    def __init__(
        self,
        *,
        width: int,
        height: int,
        interpolation: str = "area",
        thread: bool | None = None,
        nice: int = 0,
    ) -> None:
        self._size = _size(width, height)
        self._options(thread, nice)
        if interpolation not in _INTERPOLATION:
            msg = f"interpolation must be one of {sorted(_INTERPOLATION)}, got {interpolation!r}"
            raise UnitConfigError(msg)
        self._flag = _INTERPOLATION[interpolation]

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Emit the resized image."""
        resized = await self._call(ctx, packet.data, _resize, self._size, self._flag)
        await ctx.emit(self.image_out, packet.replace(resized))


class Letterbox(_ImageUnit):
    """Fit images into width x height keeping the aspect ratio (padding with ``color``).

    Ports: image (in); image (out). The packet's ``meta["letterbox"]`` is set to
    ``(scale, pad_x, pad_y)`` so that a later stage can map boxes back.
    """

    name = "letterbox"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    def __init__(
        self,
        *,
        width: int,
        height: int,
        color: int = 114,
        thread: bool | None = None,
        nice: int = 0,
    ) -> None:
        self._size = _size(width, height)
        self._color = int(color)
        self._options(thread, nice)

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Emit the letterboxed image with its mapping in ``meta``."""
        out, scale, px, py = await self._call(ctx, packet.data, _letterbox, self._size, self._color)
        await ctx.emit(self.image_out, packet.replace(out).with_meta(letterbox=(scale, px, py)))


class Normalize(_ImageUnit):
    """``(image * scale - mean) / std`` per channel, to ``float32``.

    Ports: image (in) H x W x C; tensor (out) H x W x C ``float32`` (C x H x W with
    ``chw=True``, ready for an NCHW model once the inference unit stacks the batch).
    """

    name = "normalize"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    tensor_out: Output[np.ndarray] = Output("tensor", np.ndarray)

    def __init__(
        self,
        *,
        mean: Any = 0.0,
        std: Any = 1.0,
        scale: float = 1.0,
        chw: bool = False,
        thread: bool | None = None,
        nice: int = 0,
    ) -> None:
        self._options(thread, nice)
        self._mean, self._std = floats(mean, "mean"), floats(std, "std")
        if any(s == 0 for s in self._std):
            msg = f"std must not contain 0, got {self._std}"
            raise UnitConfigError(msg)
        self._scale, self._chw = float(scale), bool(chw)

    def _normalize(self, image: np.ndarray) -> np.ndarray:
        out = normalize(image, self._mean, self._std, self._scale)
        return to_tensor(out) if self._chw else out

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Emit the normalised tensor."""
        out = await self._call(ctx, packet.data, self._normalize)
        await ctx.emit(self.tensor_out, packet.replace(out))


class ColorConvert(_ImageUnit):
    """Convert colour spaces with ``cv2.cvtColor`` (``code`` such as ``bgr2rgb``).

    Ports: image (in); image (out).

    Args:
        code: the conversion, as OpenCV's ``COLOR_<CODE>`` constant in lower case.
    """

    name = "color_convert"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    def __init__(self, *, code: str = "bgr2rgb", thread: bool | None = None, nice: int = 0) -> None:
        self._options(thread, nice)
        key = code.lower().replace("_", "").replace("to", "2")
        if key not in _COLOR:
            msg = f"code must be one of {sorted(_COLOR)}, got {code!r}"
            raise UnitConfigError(msg)
        self._code = _COLOR[key]

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Emit the converted image."""
        out = await self._call(ctx, packet.data, cv2.cvtColor, self._code)
        await ctx.emit(self.image_out, packet.replace(out))


class ToTensor(_ImageUnit):
    """H x W x C to C x H x W ``float32`` (times ``scale``).

    Ports: image (in); tensor (out). With ``batch_axis=True`` the output is
    1 x C x H x W (for an inference node with ``batched=true``).
    """

    name = "to_tensor"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    tensor_out: Output[np.ndarray] = Output("tensor", np.ndarray)

    def __init__(
        self,
        *,
        scale: float = 1.0,
        batch_axis: bool = False,
        thread: bool | None = None,
        nice: int = 0,
    ) -> None:
        self._scale, self._batch = float(scale), bool(batch_axis)
        self._options(thread, nice)

    def _tensor(self, image: np.ndarray) -> np.ndarray:
        return to_tensor(image, scale=self._scale, batch_axis=self._batch)

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Emit the tensor."""
        out = await self._call(ctx, packet.data, self._tensor)
        await ctx.emit(self.tensor_out, packet.replace(out))


class Crop(FlowUnit):
    """Cut one crop per box out of an image: an *expand* unit.

    Ports:
        image (in): H x W x C image.
        boxes (in): ``Detections`` or an N x 4 (or N x 5) xyxy array for the same image
            (joined by lineage).
        crop (out, expand): one child packet per box, in box order (lineage one level
            deeper); no box, no child.

    Args:
        width, height: resize every crop to this size (both or neither).
        margin: grow each box by this fraction of its size on every side.
    """

    name = "crop"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    boxes_in: Input[Any] = Input("boxes", Detections)
    crop_out: Output[np.ndarray] = Output("crop", np.ndarray, expand=True)

    def __init__(
        self, *, width: int | None = None, height: int | None = None, margin: float = 0.0
    ) -> None:
        if (width is None) != (height is None):
            msg = "give both width and height (to resize crops) or neither"
            raise UnitConfigError(msg)
        self._size = _size(width, height) if width is not None and height is not None else None
        self._margin = float(margin)

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Emit one child per box."""
        boxes = packet.data["boxes"]
        xyxy = boxes.xyxy if isinstance(boxes, Detections) else np.asarray(boxes)[:, :4]
        for patch in crop_boxes(packet.data["image"], xyxy, margin=self._margin, size=self._size):
            await ctx.emit(self.crop_out, packet.replace(patch))
