"""``Status``: how a flow call ended, numbered as ModelBox's ``StatusCode``."""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """Outcome codes, numbered as ModelBox's ``StatusCode``."""

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
