"""Limits, positions and value helpers shared by the graph file parsers.

Every parser reads through ``read_text`` (size limit before parsing) and checks the
parsed tree with ``check_depth`` (depth limit), so that a hostile or broken document
ends in ``GraphSyntaxError`` with a named limit, never in ``RecursionError``.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actorflow.errors import GraphSyntaxError
from actorflow.graph._model import Location

MAX_DOCUMENT_BYTES = 1024 * 1024
"""A graph document larger than this is refused before it is parsed."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists a parsed document may have."""
MAX_NODES = 10_000
"""Most nodes (or workflow steps) one document may declare."""

_NUMBER_INT = re.compile(r"^[+-]?\d+$")
_NUMBER_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def read_text(path: Path) -> str:
    """Read a graph file as UTF-8, refusing a file over ``MAX_DOCUMENT_BYTES`` unread.

    Raises:
        GraphSyntaxError: the file is missing, too large, unreadable or not UTF-8.
    """
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            msg = (
                f"graph file is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES} "
                "(max_document_bytes); graph files describe graphs, keep data elsewhere"
            )
            raise GraphSyntaxError(msg, path=str(path))
        data = path.read_bytes()
    except GraphSyntaxError:
        raise
    except FileNotFoundError:
        msg = f"graph file not found (resolved from {Path.cwd()})"
        raise GraphSyntaxError(msg, path=str(path)) from None
    except OSError as exc:
        msg = f"cannot read graph file: {exc.strerror or exc}"
        raise GraphSyntaxError(msg, path=str(path)[:200]) from None
    except ValueError:  # a NUL byte in the path
        msg = "cannot read graph file: the path holds a NUL byte"
        raise GraphSyntaxError(msg, path=repr(str(path))[:200]) from None
    return decode(data, str(path))


def decode(data: bytes, path: str) -> str:
    """Decode UTF-8 (a BOM is allowed), with the size limit applied first."""
    check_size(len(data), path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = position(data[: exc.start].decode("utf-8", "replace"), exc.start)
        msg = f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded"
        raise GraphSyntaxError(msg, path=path, line=line, column=column) from None


def check_size(size: int, path: str) -> None:
    """Refuse a document of ``size`` bytes when it is over ``MAX_DOCUMENT_BYTES``."""
    if size > MAX_DOCUMENT_BYTES:
        msg = f"graph document is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES}"
        raise GraphSyntaxError(msg, path=path)


def check_depth(doc: object, path: str) -> None:
    """Refuse a parsed tree nested deeper than ``MAX_DEPTH`` (walked without recursion)."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise depth_error(path)
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list | tuple):
            stack.extend((v, depth + 1) for v in value)


def depth_error(path: str) -> GraphSyntaxError:
    """The error for a document nested deeper than ``MAX_DEPTH``."""
    return GraphSyntaxError(f"document nesting depth is over the limit of {MAX_DEPTH}", path=path)


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


class Positions:
    """Line starts of one text, indexed once: each ``location`` is a binary search."""

    def __init__(self, text: str, path: str) -> None:
        self.path = path
        self._lines = [0, *(m.end() for m in re.finditer("\n", text))]

    def location(self, offset: int) -> Location:
        """The 1-based line and column of ``offset``."""
        line = bisect.bisect_right(self._lines, offset)
        return Location(self.path, line, offset - self._lines[line - 1] + 1)


def json_string_values(text: str, key: str) -> dict[str, int]:
    """Where each string value of ``"key": "..."`` first appears in a JSON text.

    One pass over the text, so looking up every step of a document costs linear time
    (a search per step was quadratic).
    """
    pattern = re.compile(re.escape(json.dumps(key)) + r'\s*:\s*("(?:[^"\\]++|\\.)*+")')
    found: dict[str, int] = {}
    for match in pattern.finditer(text):
        try:
            value = json.loads(match.group(1))
        except ValueError:
            continue
        found.setdefault(value, match.start())
    return found


def location_of(text: str, pattern: str, path: str, *, start: int = 0) -> Location | None:
    """Where the regex ``pattern`` first matches in ``text`` (from ``start``), if it does."""
    match = re.compile(pattern).search(text, start)
    if match is None:
        return None
    line, column = position(text, match.start())
    return Location(path, line, column)


def json_key_location(text: str, key: str, value: str | None, path: str) -> Location | None:
    """Where ``"key": "value"`` (or just ``"key":``) appears in a JSON text."""
    pattern = re.escape(json.dumps(key)) + r"\s*:"
    if value is not None:
        pattern += r"\s*" + re.escape(json.dumps(value))
    return location_of(text, pattern, path)


def typed_value(text: str) -> Any:
    """Read a DOT attribute value: int, float, ``true``/``false``, a JSON list, else str."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if _NUMBER_INT.match(text.strip()):
        return int(text)
    if _NUMBER_FLOAT.match(text.strip()):
        return float(text)
    stripped = text.strip()
    if stripped[:1] in ("[", "{") and stripped[-1:] in ("]", "}"):
        try:
            return json.loads(stripped)
        except (ValueError, RecursionError):
            return text
    return text


def describe(value: object) -> str:
    """A short type name for messages (``'list'``, ``'str'``...)."""
    return type(value).__name__
