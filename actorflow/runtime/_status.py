"""``Status``: how a flow call ended, numbered as ModelBox's ``StatusCode``."""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """Outcome codes, numbered as ModelBox's ``StatusCode``; they print by name."""

    SUCCESS = 0
    FAULT = 1
    NOTFOUND = 2
    INVALID = 3
    AGAIN = 4
    BADCONF = 5
    INTERNAL = 9
    BUSY = 10
    TIMEOUT = 19
    STOP = 24
    SHUTDOWN = 25
    EOF = 26

    def __str__(self) -> str:
        """``Status.STOP``, not ``24`` (an ``IntEnum`` would print its number)."""
        return f"{type(self).__name__}.{self.name}"

    def __format__(self, spec: str) -> str:
        """f-strings print the name too, unless a numeric format is asked for."""
        return str(self) if not spec else format(int(self), spec)
