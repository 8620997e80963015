"""Image decoding with limits checked from the header, before any pixel is decoded.

A decompression bomb (a tiny PNG that claims 50 000 x 50 000 pixels) is refused by
reading the dimensions from the file header; only then does OpenCV decode.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

__all__ = ["DecodeError", "ImageDecode", "decode_image", "image_size"]

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000

_JPEG_SOF = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)


class DecodeError(ValueError):
    """Image bytes were refused or could not be decoded; the message says why."""


def image_size(data: bytes) -> tuple[str, int, int]:
    """Return ``(format, width, height)`` read from the header only.

    Supports PNG, JPEG, BMP, GIF and WebP (the formats OpenCV decodes in practice).

    Raises:
        DecodeError: unknown format or a truncated/corrupt header.
    """
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            width, height = struct.unpack(">II", data[16:24])
            return "png", width, height
        if data[:2] == b"\xff\xd8":
            return ("jpeg", *_jpeg_size(data))
        if data[:2] == b"BM":
            width, height = struct.unpack("<ii", data[18:26])
            return "bmp", width, abs(height)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return "gif", width, height
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return ("webp", *_webp_size(data))
    except (struct.error, IndexError) as exc:
        msg = f"corrupt image header ({len(data)} bytes): {exc}"
        raise DecodeError(msg) from exc
    msg = (
        f"unrecognised image data ({len(data)} bytes, starts with {data[:8]!r}); "
        "expected PNG, JPEG, BMP, GIF or WebP"
    )
    raise DecodeError(msg)


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            msg = f"corrupt JPEG: no marker at byte {pos}"
            raise DecodeError(msg)
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    msg = f"corrupt JPEG: no frame header in {len(data)} bytes"
    raise DecodeError(msg)


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return (
            int.from_bytes(data[24:27], "little") + 1,
            int.from_bytes(data[27:30], "little") + 1,
        )
    msg = f"corrupt WebP: unknown chunk {chunk!r}"
    raise DecodeError(msg)


def decode_image(
    data: bytes | bytearray | memoryview | np.ndarray,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    color: bool = True,
) -> np.ndarray:
    """Decode encoded image bytes to an H x W x 3 BGR (or H x W grey) ``uint8`` array.

    Guarantees: the byte and pixel limits are checked before decoding; every refusal
    or failure raises ``DecodeError`` with the reason (never returns ``None``).
    """
    raw = bytes(data) if not isinstance(data, bytes) else data
    if len(raw) > max_bytes:
        msg = f"image is {len(raw)} bytes, over max_bytes={max_bytes}"
        raise DecodeError(msg)
    kind, width, height = image_size(raw)
    if width <= 0 or height <= 0:
        msg = f"{kind} header claims an empty image ({width}x{height})"
        raise DecodeError(msg)
    if width * height > max_pixels:
        msg = (
            f"{kind} image is {width}x{height} = {width * height} pixels, over "
            f"max_pixels={max_pixels}; refused before decoding"
        )
        raise DecodeError(msg)
    flag = cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), flag)
    if image is None:
        msg = f"corrupt {kind} data ({len(raw)} bytes, header {width}x{height}): decoder failed"
        raise DecodeError(msg)
    return np.asarray(image)


class ImageDecode(FlowUnit):
    """Decode encoded images (bytes) to BGR ``uint8`` arrays, on the node's thread.

    Ports:
        data (in): ``bytes`` of a PNG, JPEG, BMP, GIF or WebP file.
        image (out): ``np.ndarray`` H x W x 3 ``uint8`` BGR (H x W when ``color=False``).

    Guarantees: oversized or corrupt input fails *that packet* with a ``DecodeError``
    naming the node and the reason; the flow goes on with the next packet.

    Args:
        max_bytes: refuse larger inputs.
        max_pixels: refuse images whose header claims more pixels (decompression bombs).
        color: decode to BGR (``True``) or grey.
    """

    name = "image_decode"
    data_in: Input[bytes] = Input("data", bytes)
    image_out: Output[np.ndarray] = Output("image", np.ndarray)

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        color: bool = True,
    ) -> None:
        if max_bytes <= 0 or max_pixels <= 0:
            msg = f"max_bytes and max_pixels must be > 0, got {max_bytes}, {max_pixels}"
            raise UnitConfigError(msg)
        self._limits: dict[str, Any] = {
            "max_bytes": int(max_bytes),
            "max_pixels": int(max_pixels),
            "color": bool(color),
        }

    async def process(self, ctx: Context, packet: Packet[bytes]) -> None:
        """Decode one image; raises ``DecodeError`` (this packet fails) on bad input."""
        try:
            image = await ctx.run_blocking(self._decode, packet.data)
        except DecodeError as exc:
            msg = f"node {ctx.node!r}: {exc}"
            raise DecodeError(msg) from None
        await ctx.emit(self.image_out, packet.replace(image))

    def _decode(self, data: bytes) -> np.ndarray:
        return decode_image(data, **self._limits)
