"""Request decoding for ``actorflow serve``: JSON (base64 images) and multipart uploads.

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
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from aiohttp import BodyPartReader, web

from actorflow.serve._errors import BadRequest
from actorflow.serve._images import check_image

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

TENSOR_DTYPES = (
    "bool",
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float16",
    "float32",
    "float64",
)
"""The ``dtype`` values a raw tensor may name (numpy parses other strings as code-like
specifications: ``",n"`` raised ``SyntaxError``, found by ``fuzz/fuzz_codec.py``)."""

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
    """Decode an encoded PNG, JPEG, WebP or BMP image to a BGR uint8 array.

    The header is checked first (``_images.check_image``): format, PNG structure and
    declared size, so that malformed files and decompression bombs never reach OpenCV.

    Raises:
        BadRequest: not an image (``image``) or too many pixels (``size``), naming ``where``.
    """
    import cv2  # only image inputs need OpenCV

    check_image(data, where=where, max_pixels=MAX_PIXELS)  # before the decoder sees it
    try:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:  # OpenCV asserts on some inputs instead of returning None
        array = None
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
            with np.errstate(over="raise", invalid="raise"):
                return np.asarray(value, np.float32)
        except FloatingPointError as exc:
            msg = f"{where}: a number is out of the float32 range ({exc})"
            raise BadRequest(msg, field=where, reason="type") from exc
        except (TypeError, ValueError) as exc:
            msg = f"{where}: a list must be a rectangular array of numbers ({exc})"
            raise BadRequest(msg, field=where, reason="shape") from exc
    if isinstance(value, Mapping) and "dtype" in value and "shape" in value:
        raw = _b64(value.get("base64"), where)
        if value["dtype"] not in TENSOR_DTYPES:
            msg = (
                f"{where}: dtype must be one of {', '.join(TENSOR_DTYPES)}, got {value['dtype']!r}"
            )
            raise BadRequest(msg, field=where, reason="type")
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
