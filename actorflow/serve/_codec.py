"""Request decoding and answer encoding for ``actorflow serve``.

Requests: JSON (base64 images), multipart uploads, or a raw image body. Answers: images
as base64 PNG or JPEG and detections as one record per object (``OutputOptions``).

Rules:

* a JSON body is ``{"inputs": {port: value}}`` (one item per port) or
  ``{"inputs": [{port: value}, ...]}`` (several items, one session);
* a value for a port typed ``np.ndarray`` is an image: a base64 string, or
  ``{"base64": "..."}``; ``{"base64", "dtype", "shape"}`` is a raw tensor instead, and a
  nested list of numbers a float32 tensor;
  a port typed ``bytes`` receives the decoded bytes; every other port the JSON value;
* a multipart body has one part per port; file parts are decoded as above;
* bodies that look like graph documents are refused: graphs are never accepted over HTTP;
* multipart bodies are counted part by part and refused past ``max_body``, past
  ``max_part`` bytes in one part or ``max_parts`` parts (413), before the rest is read.
* a raw body (``image/*``, ``application/octet-stream``) is one payload for the graph's
  only input port (or ``?port=NAME``), counted as it arrives.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import BodyPartReader, web

from actorflow.serve._errors import BadRequest

GRAPH_KEYS = frozenset(
    {
        "graph",
        "graphconf",
        "nodes",
        "edges",
        "steps",
        "dynamic_blocks_definitions",
        "workflow",
        "specification",
    }
)
"""Top-level keys of graph and workflow documents (refused in request bodies)."""

MAX_PIXELS = 40_000_000
"""Images larger than this (width x height) are refused after decoding."""


def port_kind(port_type: Any) -> str:
    """``image``, ``bytes`` or ``json`` for a declared port type."""
    if port_type is np.ndarray or getattr(port_type, "__origin__", None) is np.ndarray:
        return "image"
    if port_type in (bytes, bytearray):
        return "bytes"
    return "json"


def decode_image(data: bytes, *, where: str) -> np.ndarray[Any, Any]:
    """Decode an encoded image (PNG, JPEG, ...) to a BGR uint8 array.

    Raises:
        BadRequest: not an image (``image``) or too many pixels (``size``), naming ``where``.
    """
    import cv2  # only image inputs need OpenCV

    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if array is None:
        msg = f"{where}: not a decodable image ({len(data)} bytes)"
        raise BadRequest(msg, field=where, reason="image")
    if array.shape[0] * array.shape[1] > MAX_PIXELS:
        msg = f"{where}: image of {array.shape[1]}x{array.shape[0]} exceeds {MAX_PIXELS} pixels"
        raise BadRequest(msg, field=where, reason="size")
    return np.asarray(array)


def _b64(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        msg = f"{where}: expected a base64 string, got {type(text).__name__}"
        raise BadRequest(msg, field=where, reason="type")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        msg = f"{where}: invalid base64 ({exc})"
        raise BadRequest(msg, field=where, reason="type") from exc


def decode_value(value: Any, kind: str, where: str) -> Any:
    """Turn one JSON value into the payload a port of ``kind`` expects."""
    if kind == "json":
        return value
    if kind == "image" and isinstance(value, list):  # a plain nested list: a float32 tensor
        try:
            return np.asarray(value, np.float32)
        except (TypeError, ValueError) as exc:
            msg = f"{where}: a list must be a rectangular array of numbers ({exc})"
            raise BadRequest(msg, field=where, reason="shape") from exc
    if isinstance(value, Mapping) and "dtype" in value and "shape" in value:
        raw = _b64(value.get("base64"), where)
        try:
            return np.frombuffer(raw, np.dtype(value["dtype"])).reshape(value["shape"]).copy()
        except (TypeError, ValueError) as exc:
            msg = f"{where}: tensor does not match dtype/shape ({exc})"
            raise BadRequest(msg, field=where, reason="shape") from exc
    raw = _b64(value.get("base64") if isinstance(value, Mapping) else value, where)
    return raw if kind == "bytes" else decode_image(raw, where=where)


def check_not_graph(doc: Any) -> None:
    """Refuse bodies that carry a graph or workflow document."""
    if isinstance(doc, Mapping) and GRAPH_KEYS & set(doc):
        msg = (
            "inline graph documents are not accepted over HTTP; the server runs the graph "
            "it was started with (send {'inputs': {...}})"
        )
        raise BadRequest(msg)


def decode_json(doc: Any, kinds: Mapping[str, str]) -> list[tuple[str, Any]]:
    """``(port, payload)`` pairs, in order, from a JSON request body."""
    check_not_graph(doc)
    if not isinstance(doc, Mapping) or "inputs" not in doc:
        msg = f"expected {{'inputs': {{port: value}}}} with ports {sorted(kinds)}"
        raise BadRequest(msg)
    inputs = doc["inputs"]
    groups = inputs if isinstance(inputs, list) else [inputs]
    items: list[tuple[str, Any]] = []
    for i, group in enumerate(groups):
        if not isinstance(group, Mapping) or not group:
            msg = f"inputs[{i}] must be a non-empty object of port: value"
            raise BadRequest(msg, field=f"inputs[{i}]", reason="type")
        for port, value in group.items():
            if port not in kinds:
                msg = f"unknown input port {port!r}; the graph's inputs are {sorted(kinds)}"
                raise BadRequest(msg, field=f"inputs.{port}", reason="unknown_port")
            items.append((port, decode_value(value, kinds[port], f"inputs.{port}")))
    return items


async def decode_multipart(
    request: web.Request,
    kinds: Mapping[str, str],
    max_body: int,
    *,
    max_parts: int = 64,
    max_part: int | None = None,
) -> list[tuple[str, Any]]:
    """``(port, payload)`` pairs from a multipart upload, counting bytes as they arrive.

    Raises:
        BadRequest: 413 past ``max_parts`` parts (before the next part is read), past
            ``max_part`` bytes in one part, or ``max_body`` in all; 400 for a nested
            body, an unknown port or an undecodable file.
    """
    part_limit = max_body if max_part is None else min(max_part, max_body)
    reader = await request.multipart()
    items: list[tuple[str, Any]] = []
    total = count = 0
    async for part in reader:
        count += 1
        if count > max_parts:
            msg = f"multipart body has more than {max_parts} parts"
            raise BadRequest(msg, reason="parts", status=413)
        if not isinstance(part, BodyPartReader):
            msg = "nested multipart bodies are not accepted"
            raise BadRequest(msg)
        name = part.name or ""
        if name not in kinds:
            msg = f"unknown input port {name!r}; the graph's inputs are {sorted(kinds)}"
            raise BadRequest(msg, field=name, reason="unknown_port")
        chunks = []
        size = 0
        while chunk := await part.read_chunk(65536):
            total += len(chunk)
            size += len(chunk)
            if size > part_limit:
                msg = f"part {name!r} is larger than {part_limit} bytes"
                raise BadRequest(msg, field=name, reason="size", status=413)
            if total > max_body:
                msg = f"multipart body is larger than {max_body} bytes"
                raise BadRequest(msg, reason="size", status=413)
            chunks.append(chunk)
        raw = b"".join(chunks)
        kind = kinds[name]
        if kind == "image":
            items.append((name, decode_image(raw, where=f"part {name!r}")))
        elif kind == "bytes":
            items.append((name, raw))
        else:
            try:
                items.append((name, json.loads(raw)))
            except ValueError:
                items.append((name, raw.decode("utf-8", "replace")))
    if not items:
        msg = f"empty multipart body; send one part per input port {sorted(kinds)}"
        raise BadRequest(msg)
    return items


# -- request bodies of every kind ---------------------------------------------------------

RAW_IMAGE_TYPES = ("image/", "application/octet-stream")
"""Content types of a raw body: the bytes of one image (or one ``bytes`` payload)."""


async def decode_raw(
    request: web.Request, kinds: Mapping[str, str], max_body: int
) -> list[tuple[str, Any]]:
    """The one ``(port, payload)`` of a raw body (``image/*``, ``application/octet-stream``).

    It goes to the graph's only input port, or to the port named by ``?port=NAME``, and
    is decoded like a file part, counted as it arrives.

    Raises:
        BadRequest: the port cannot be told, takes JSON values, or the image is bad.
        web.HTTPRequestEntityTooLarge: the body is larger than ``max_body``.
    """
    content_type = request.content_type
    port = _raw_port(request, kinds)
    raw = await _read_bounded(request, max_body)
    if kinds[port] == "image":
        return [(port, decode_image(raw, where=f"{content_type} body"))]
    if kinds[port] == "bytes":
        return [(port, raw)]
    msg = f"input {port!r} takes JSON values, not a raw {content_type} body"
    raise BadRequest(msg, field=port, reason="type")


def _raw_port(request: web.Request, kinds: Mapping[str, str]) -> str:
    port = request.query.get("port")
    if port is None:
        if len(kinds) != 1:
            msg = (
                f"a raw {request.content_type} body needs ?port=NAME: the graph has inputs "
                f"{sorted(kinds)}"
            )
            raise BadRequest(msg)
        return next(iter(kinds))
    if port not in kinds:
        msg = (
            f"unknown input port {port!r}{_near(port, kinds)}; the graph's inputs are "
            f"{sorted(kinds)}"
        )
        raise BadRequest(msg)
    return port


def _near(name: str, names: Mapping[str, str]) -> str:
    from actorflow.graph import suggest

    return suggest(name, names)


async def _read_bounded(request: web.Request, max_body: int) -> bytes:
    chunks, total = [], 0
    while chunk := await request.content.read(65536):
        total += len(chunk)
        if total > max_body:
            raise web.HTTPRequestEntityTooLarge(max_size=max_body, actual_size=total)
        chunks.append(chunk)
    return b"".join(chunks)


# -- response values ----------------------------------------------------------------------

IMAGE_FORMATS = ("png", "jpeg", "list")
"""How images in JSON answers are written: base64 PNG (default), base64 JPEG, or nested
lists (the raw array)."""
DETECTION_FORMATS = ("records", "columns")
"""How ``Detections`` are written: one record per object (default), or column arrays."""


@dataclass(frozen=True, slots=True)
class OutputOptions:
    """How a JSON answer writes images and detections (see ``output_options``)."""

    images: str = "png"
    detections: str = "records"
    jpeg_quality: int = 90


def output_options(request: web.Request) -> OutputOptions:
    """Read the answer's format from the request.

    * images: ``?images=png|jpeg|list``, else the ``Accept`` header (``image/jpeg`` or
      ``image/png`` listed next to ``application/json``), else PNG;
    * detections: ``?detections=records|columns``, else records.

    Raises:
        BadRequest: an unknown option value.
    """
    images = request.query.get("images")
    if images is None:
        accept = request.headers.get("Accept", "")
        images = "jpeg" if "image/jpeg" in accept else "png"
    detections = request.query.get("detections", "records")
    if images not in IMAGE_FORMATS:
        msg = f"images={images!r}: choose one of {', '.join(IMAGE_FORMATS)}"
        raise BadRequest(msg)
    if detections not in DETECTION_FORMATS:
        msg = f"detections={detections!r}: choose one of {', '.join(DETECTION_FORMATS)}"
        raise BadRequest(msg)
    return OutputOptions(images=images, detections=detections)


def encode_value(value: Any, options: OutputOptions) -> Any:
    """A payload as a JSON value: images encoded, detections as records or columns.

    An image is a ``uint8`` array of shape H x W, H x W x 1, x 3 or x 4 (OpenCV's BGR
    order); it becomes ``{"format", "width", "height", "base64"}``. Other arrays become
    nested lists, bytes base64, mappings and sequences are walked.
    """
    from actorflow.flowunits.detection.detections import Detections
    from actorflow.flowunits.sinks._delivery import jsonable

    if isinstance(value, Detections):
        if options.detections == "columns":
            return jsonable(value)
        return detection_records(value)
    if isinstance(value, np.ndarray) and options.images != "list" and is_image(value):
        return encode_image(value, options.images, quality=options.jpeg_quality)
    if isinstance(value, Mapping):
        return {str(k): encode_value(v, options) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v, options) for v in value]
    return jsonable(value)


def is_image(array: np.ndarray[Any, Any]) -> bool:
    """Whether an array is an image: ``uint8``, H x W or H x W x 1/3/4, both sides > 1."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        return False
    if array.ndim == 3 and array.shape[2] not in (1, 3, 4):
        return False
    return bool(array.shape[0] > 1 and array.shape[1] > 1)


def encode_image(array: np.ndarray[Any, Any], fmt: str, *, quality: int = 90) -> dict[str, Any]:
    """``{"format", "width", "height", "base64"}`` for a BGR(A) or grey ``uint8`` image."""
    import cv2  # only image answers need OpenCV

    if fmt == "jpeg" and array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]  # JPEG has no alpha
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", array, params)
    if not ok:  # pragma: no cover - imencode fails only for shapes is_image refuses
        msg = f"cannot encode an array of shape {array.shape} as {fmt}"
        raise ValueError(msg)
    return {
        "format": fmt,
        "width": int(array.shape[1]),
        "height": int(array.shape[0]),
        "base64": base64.b64encode(buf.tobytes()).decode("ascii"),
    }


def detection_records(detections: Any) -> list[dict[str, Any]]:
    """One record per object of a ``Detections``.

    Each record holds ``box`` (x1, y1, x2, y2), ``score``, ``class_id``, and every
    per-box ``data`` field by name (``class_name``, ``landmarks``, ...).
    """
    from actorflow.flowunits.sinks._delivery import jsonable

    records = []
    for i in range(len(detections)):
        record: dict[str, Any] = {
            "box": [float(v) for v in detections.xyxy[i]],
            "score": float(detections.confidence[i]),
            "class_id": int(detections.class_id[i]),
        }
        for key, column in detections.data.items():
            record[str(key)] = jsonable(column[i])
        records.append(record)
    return records
