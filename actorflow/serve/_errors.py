"""Error answers and JSON in/out shared by every serving endpoint (graphs and wrappers).

Guarantees:

* every error answer is a JSON object ``{"error": message, "reason": kind, "status":
  code}`` plus ``"field"`` when one input port or field is at fault (the same body on
  ``/v1/infer``, ``/v1/stream`` frames and wrapper endpoints);
* every JSON answer is valid JSON: NaN and ±Infinity are sent as ``null``;
* ``loads`` never raises anything but ``BadRequest``: bad syntax, nesting deeper than
  the limit (checked without recursion) and oversized integers are all 400s.
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web


class BadRequest(ValueError):
    """A request the client got wrong; answered with ``status`` and a JSON body.

    Attributes:
        field: the input port or field at fault (``None`` for the body as a whole).
        reason: the kind of problem: ``json``, ``depth``, ``body``, ``unknown_port``,
            ``type``, ``shape``, ``image``, ``size``, ``parts``, ``timeout``.
        status: the HTTP status (400 unless the problem is a size or a timeout).
    """

    def __init__(
        self, message: str, *, field: str | None = None, reason: str = "body", status: int = 400
    ) -> None:
        super().__init__(message)
        self.field, self.reason, self.status = field, reason, status


def body(status: int, message: str, reason: str, field: str | None = None) -> dict[str, Any]:
    """The JSON error body (module docstring)."""
    doc: dict[str, Any] = {"error": message, "reason": reason, "status": status}
    if field is not None:
        doc["field"] = field
    return doc


def problem(
    status: int, message: str, reason: str, field: str | None = None, **headers: str
) -> web.Response:
    """An error response with the JSON error body."""
    return json_response(body(status, message, reason, field), status=status, headers=headers)


def from_bad_request(exc: BadRequest) -> web.Response:
    """The response for a ``BadRequest``."""
    return problem(exc.status, str(exc), exc.reason, exc.field)


_REASONS = {408: "timeout", 413: "size", 404: "not_found", 405: "method", 503: "shutting_down"}


def describe_http(exc: web.HTTPException) -> tuple[str, str, dict[str, str]]:
    """``(message, reason, headers to keep)`` for an aiohttp ``HTTPException``."""
    headers = {k: v for k, v in exc.headers.items() if k in ("Retry-After", "Allow")}
    text = exc.text or ""
    message = text if text and not text.startswith(f"{exc.status}:") else exc.reason
    return message, _REASONS.get(exc.status, "http"), headers


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any) -> str:
    """``value`` as strict JSON; non-finite floats become ``null`` (no ``NaN`` tokens)."""
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False)
    except ValueError:  # only when a NaN/Infinity is present: pay for the walk then
        return json.dumps(_finite(value), allow_nan=False, ensure_ascii=False)


def json_response(
    value: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A ``application/json`` response encoded with ``dumps``."""
    return web.Response(
        text=dumps(value), status=status, headers=headers, content_type="application/json"
    )


def depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in node if isinstance(child, dict | list))
    return deepest


def loads(raw: bytes | str, max_depth: int, *, where: str = "body") -> Any:
    """Parse JSON ``raw``, refusing what nests deeper than ``max_depth``.

    Raises:
        BadRequest: not JSON (``json``), too deep (``depth``), or a number the parser
            refuses (an integer of thousands of digits: ``json``).
    """
    try:
        doc = json.loads(raw)
    except RecursionError:
        msg = f"{where} nests deeper than {max_depth} levels"
        raise BadRequest(msg, reason="depth") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        msg = f"{where} is not valid JSON: {_short(str(exc))}"
        raise BadRequest(msg, reason="json") from None
    if _opening_brackets(raw) > max_depth and depth(doc) > max_depth:  # count: C speed
        msg = f"{where} nests deeper than {max_depth} levels"
        raise BadRequest(msg, reason="depth")
    return doc


def _opening_brackets(raw: bytes | str) -> int:
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{")
    return raw.count(b"[") + raw.count(b"{")


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
