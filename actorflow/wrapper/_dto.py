"""Request and response records of the wrapper SDK (aiges ``dto`` shapes).

A wrapper receives its body data as a ``DataListCls`` (``.list[i].data``, ``.len``,
``.key``, ``.type``, ``.status``) and returns a ``Response`` holding ``ResponseData``
items, or ``response_err(code)``. Body data is handed over as the bytes-like object
that came in (``bytes`` or a ``memoryview``), never copied on the way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

DataText = 0
"""``type`` of text data."""
DataAudio = 1
"""``type`` of audio data."""
DataImage = 2
"""``type`` of image data."""
DataVideo = 3
"""``type`` of video data."""

DataBegin = 0
"""``status`` of the first chunk of a stream."""
DataContinue = 1
"""``status`` of a middle chunk of a stream."""
DataEnd = 2
"""``status`` of the last chunk of a stream."""
DataOnce = 3
"""``status`` of a one-shot (non-session) request or response."""
Once = DataOnce

TYPE_NAMES = {DataText: "text", DataAudio: "audio", DataImage: "image", DataVideo: "video"}
"""Data type code -> name used in schemas and HTTP responses."""


class DataListNode:
    """One body item of a request.

    Attributes:
        key: the body field's key.
        data: the payload, ``bytes`` or a ``memoryview``: the raw bytes of binary fields,
            UTF-8 for text, the JSON text for JSON fields. Never a copy of what came in.
        len: the payload's size in bytes.
        type: ``DataText`` (text and JSON), ``DataAudio``, ``DataImage`` or ``DataVideo``.
        status: ``DataOnce`` for one-shot requests; ``DataBegin``/``DataContinue``/
            ``DataEnd`` in sessions.
    """

    __slots__ = ("data", "key", "len", "status", "type")

    def __init__(
        self,
        key: str = "",
        data: Any = b"",
        len: int = 0,
        type: int = DataText,
        status: int = DataOnce,
    ) -> None:
        self.key, self.data, self.len, self.type, self.status = key, data, len, type, status

    def __repr__(self) -> str:
        return (
            f"DataListNode(key={self.key!r}, type={TYPE_NAMES.get(self.type, self.type)}, "
            f"len={self.len}, status={self.status})"
        )


class DataListCls:
    """The body items of one request, in the order the request class declares them."""

    __slots__ = ("list",)

    def __init__(self, items: list[DataListNode] | None = None) -> None:
        self.list: list[DataListNode] = items if items is not None else []

    def get(self, key: str) -> DataListNode | None:
        """Return the item called ``key``, or ``None``."""
        for node in self.list:
            if node.key == key:
                return node
        return None

    def __iter__(self) -> Iterator[DataListNode]:
        return iter(self.list)

    def __len__(self) -> int:
        return len(self.list)

    def __repr__(self) -> str:
        return f"DataListCls({self.list!r})"


class ResponseData:
    """One item of a response.

    Attributes:
        key: the response field's key.
        data: ``str``, ``bytes``/``memoryview``/``bytearray``, or a JSON-serialisable
            value (dict, list, number).
        len: the size in bytes the wrapper reports (HTTP responses report the real size).
        type: a data type code (``DataText`` ...).
        status: ``DataOnce`` for one-shot responses.
    """

    __slots__ = ("data", "key", "len", "status", "type")

    def __init__(
        self,
        key: str = "",
        data: Any = "",
        len: int = 0,
        type: int = DataText,
        status: int = DataOnce,
    ) -> None:
        self.key, self.data, self.len, self.type, self.status = key, data, len, type, status

    def to_dict(self) -> dict[str, Any]:
        """The item as a dict (``data`` left as is)."""
        return {
            "key": self.key,
            "data": self.data,
            "len": self.len,
            "type": self.type,
            "status": self.status,
        }

    def toJSON(self) -> str:
        """The item as JSON text (bytes are shown as their length)."""
        return json.dumps(self.to_dict(), default=_json_default, sort_keys=True, indent=4)

    def __repr__(self) -> str:
        return (
            f"ResponseData(key={self.key!r}, type={TYPE_NAMES.get(self.type, self.type)}, "
            f"len={self.len}, status={self.status})"
        )


class Response:
    """What ``wrapperOnceExec`` returns: items in ``list``, or an ``error_code``.

    ``error_code == 0`` means success; any other value is looked up with
    ``wrapperError(code)`` for the message users see. The runtime stores that text
    in ``message`` when it hands a failed response on (a graph node, a server).
    """

    __slots__ = ("error_code", "list", "message")

    def __init__(
        self, items: list[ResponseData] | None = None, error_code: int = 0, message: str = ""
    ) -> None:
        self.list: list[ResponseData] = items if items is not None else []
        self.error_code = error_code
        self.message = message

    def response_err(self, error_code: int) -> Response:
        """Mark this response as failed with ``error_code`` and return it."""
        self.error_code = error_code
        return self

    def toJSON(self) -> str:
        """The response as JSON text (bytes are shown as their length)."""
        doc = {"error_code": self.error_code, "list": [d.to_dict() for d in self.list]}
        return json.dumps(doc, default=_json_default, sort_keys=True, indent=4)

    def __repr__(self) -> str:
        return f"Response(error_code={self.error_code}, list={self.list!r})"


class SessionCreateResponse:
    """What ``wrapperCreate`` may return: a session ``handle`` or an ``error_code``."""

    __slots__ = ("error_code", "handle")

    def __init__(self, handle: str = "", error_code: int = 0) -> None:
        self.handle, self.error_code = handle, error_code


def response_err(error_code: int) -> Response:
    """Return a new failed ``Response`` carrying ``error_code``."""
    return Response(error_code=error_code)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{memoryview(value).nbytes} bytes>"
    msg = f"cannot serialise {type(value).__name__} to JSON"
    raise TypeError(msg)
