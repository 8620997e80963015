"""``Status`` and its ``StatusCode``s, numbered as ModelBox's ``modelbox::StatusCode``."""

from __future__ import annotations

import enum
from typing import Any


class StatusCode(enum.IntEnum):
    """ModelBox status codes (same numbers as ``actorflow.runtime.Status``)."""

    STATUS_SUCCESS = 0
    STATUS_FAULT = 1
    STATUS_NOTFOUND = 2
    STATUS_INVALID = 3
    STATUS_AGAIN = 4
    STATUS_BADCONF = 5
    STATUS_NOMEM = 6
    STATUS_RANGE = 7
    STATUS_EXIST = 8
    STATUS_INTERNAL = 9
    STATUS_BUSY = 10
    STATUS_PERMIT = 11
    STATUS_NOTSUPPORT = 12
    STATUS_NODATA = 13
    STATUS_NOSPACE = 14
    STATUS_NOBUFS = 15
    STATUS_OVERFLOW = 16
    STATUS_INPROGRESS = 17
    STATUS_ALREADY = 18
    STATUS_TIMEDOUT = 19
    STATUS_TIMEOUT = 19  # the spelling actorflow's docs use; an alias of STATUS_TIMEDOUT
    STATUS_NOSTREAM = 20
    STATUS_RESET = 21
    STATUS_CONTINUE = 22
    STATUS_EDQUOT = 23
    STATUS_STOP = 24
    STATUS_SHUTDOWN = 25
    STATUS_EOF = 26


_Code = StatusCode


class Status:
    """An outcome: a ``code`` and a message, as ModelBox's Python ``Status``.

    A ``Status`` is truthy only for ``STATUS_SUCCESS``; it compares equal to its
    ``StatusCode`` (``ret == Status.StatusCode.STATUS_EOF``), to its integer, and to
    ``True``/``False`` by truthiness (``if ret == False:``).
    """

    StatusCode = StatusCode

    __slots__ = ("_code", "_message")

    def __init__(self, code: _Code | int = _Code.STATUS_SUCCESS, message: str = "") -> None:
        self._code = _Code(int(code))
        self._message = message

    @property
    def code(self) -> _Code:
        """The status code."""
        return self._code

    def errormsg(self) -> str:
        """The message (empty on success)."""
        return self._message

    def __bool__(self) -> bool:
        return self._code is _Code.STATUS_SUCCESS

    def __eq__(self, other: object) -> bool:
        if isinstance(other, bool):
            return bool(self) is other
        if isinstance(other, Status):
            return self._code == other._code
        if isinstance(other, int):
            return int(self._code) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._code)

    def __int__(self) -> int:
        return int(self._code)

    def __str__(self) -> str:
        name = self._code.name
        return f"{name}: {self._message}" if self._message else name

    def __repr__(self) -> str:
        return f"Status({self._code.name}, {self._message!r})"


def status_of(value: Any, message: str = "") -> Status:
    """A ``Status`` from an ``actorflow.runtime.Status`` (or any int-like code)."""
    return Status(int(value), message)
