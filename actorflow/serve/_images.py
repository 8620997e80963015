"""Checks on an encoded image before OpenCV decodes it.

OpenCV decodes whatever it recognises, and some of its decoders spend seconds on a
corrupt file of a hundred bytes (a PNG whose chunk checksums are wrong, found by
``fuzz/fuzz_codec.py``) or allocate what a small header claims (a decompression bomb).
So a served image must be PNG, JPEG, WebP or BMP; a PNG must be well formed (IHDR
first, valid fields, every chunk's CRC right) and its declared size, like a JPEG's,
within the pixel limit, all checked on the header in linear time before decoding.
"""

from __future__ import annotations

import struct
import zlib

from actorflow.serve._errors import BadRequest

PNG = b"\x89PNG\r\n\x1a\n"
_SIGNATURES = {PNG: "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP"}


def image_format(data: bytes) -> str | None:
    """``PNG``, ``JPEG``, ``WebP`` or ``BMP`` from the magic bytes, else ``None``."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _SIGNATURES.items() if data.startswith(magic)), None)


def check_image(data: bytes, *, where: str, max_pixels: int) -> None:
    """Refuse what should not reach the decoder.

    Raises:
        BadRequest: an unsupported format or a malformed PNG (``image``), or a declared
            size over ``max_pixels`` (``size``).
    """
    kind = image_format(data)
    if kind is None:
        msg = f"{where}: not a PNG, JPEG, WebP or BMP image ({len(data)} bytes)"
        raise BadRequest(msg, field=where, reason="image")
    size = _png_size(data, where) if kind == "PNG" else _jpeg_size(data) if kind == "JPEG" else None
    if size is not None and size[0] * size[1] > max_pixels:
        msg = f"{where}: image of {size[0]}x{size[1]} exceeds {max_pixels} pixels"
        raise BadRequest(msg, field=where, reason="size")


def _bad_png(where: str, problem: str) -> BadRequest:
    return BadRequest(f"{where}: malformed PNG: {problem}", field=where, reason="image")


def _png_size(data: bytes, where: str) -> tuple[int, int]:
    """(width, height) of a PNG whose chunks are all well formed."""
    pos, size = len(PNG), None
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise _bad_png(where, f"chunk {kind!r} runs past the end")
        if zlib.crc32(data[pos + 4 : end - 4]) != struct.unpack_from(">I", data, end - 4)[0]:
            raise _bad_png(where, f"chunk {kind!r} has a wrong CRC")
        if size is None:
            if kind != b"IHDR" or length != 13:
                raise _bad_png(where, "IHDR is not the first chunk")
            width, height = struct.unpack_from(">II", data, pos + 8)
            compression, filtering, interlace = data[pos + 18 : pos + 21]
            if compression or filtering or interlace > 1 or not width or not height:
                raise _bad_png(where, "invalid IHDR fields")
            size = (width, height)
        if kind == b"IEND":
            return size
        pos = end
    raise _bad_png(where, "no IEND chunk")


_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's first frame header, when its markers lead there."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF and pos + 9 <= len(data):
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return width, height
        pos += 2 + length
    return None  # the decoder will say whether it is an image
