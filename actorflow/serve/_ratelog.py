"""Logging that an attacker cannot turn into a disk-filling flood.

``RateLimitedLog`` lets through at most ``burst`` records per event name in each
``period`` seconds; the rest are counted, and the next record let through carries
``suppressed=N`` so that nothing is hidden, only summarised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class RateLimitedLog:
    """A structlog logger wrapper with a per-event budget (module docstring)."""

    def __init__(
        self,
        logger: Any,
        *,
        burst: int = 5,
        period: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger, self._burst, self._period, self._clock = logger, burst, period, clock
        self._windows: dict[str, tuple[float, int, int]] = {}  # event: (start, used, dropped)

    def _allow(self, event: str) -> int | None:
        """``None`` when over budget, else how many were suppressed before this one."""
        now = self._clock()
        start, used, dropped = self._windows.get(event, (now, 0, 0))
        if now - start >= self._period:
            start, used = now, 0
        if used >= self._burst:
            self._windows[event] = (start, used, dropped + 1)
            return None
        self._windows[event] = (start, used + 1, 0)
        return dropped

    def warning(self, event: str, **fields: Any) -> None:
        """Log at WARNING within the budget."""
        self._emit("warning", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log at INFO within the budget."""
        self._emit("info", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log at ERROR with the current traceback, within the budget."""
        self._emit("exception", event, fields)

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        suppressed = self._allow(event)
        if suppressed is None:
            return
        if suppressed:
            fields["suppressed"] = suppressed
        getattr(self._logger, level)(event, **fields)
