"""Restart policy and clock: one-for-one supervision of a node's replicas.

A failing ``process`` fails that packet only (``_process``). A replica restarts
(``close`` then ``open``, after a backoff) when its unit looks broken: a fatal error,
``failures_before_restart`` failures in a row, or a failed re-``open``. Restarts for
fatal errors and failed re-opens count towards the restart intensity: more than
``max_restarts`` of them within ``window_s`` seconds escalate, and the flow fails with
``FlowFailed`` naming the node and the root cause (Erlang/OTP's restart intensity; the
default 5 in 30 s is OTP's advice for workers that should not flap). Restarts for
failures in a row never escalate by themselves: bad input cannot fail a flow.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import anyio


class Clock(Protocol):
    """Time source for supervision; inject a fake one in tests."""

    def now(self) -> float:
        """Monotonic seconds."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock: ``time.monotonic`` and ``anyio.sleep``."""

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the event loop."""
        await anyio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How a node's failures are handled.

    Attributes:
        max_restarts: restarts allowed within ``window_s`` before the flow fails;
            0 fails the flow at the first error.
        window_s: the sliding window, in seconds.
        backoff_initial_s: delay before the first restart; doubles per recent restart.
        backoff_max_s: the cap on that delay.
        failures_before_restart: failed calls in a row, with no success between them,
            after which a replica is restarted (a fresh ``open`` may cure a unit stuck
            in a bad state); such restarts do not count towards ``max_restarts``.
    """

    max_restarts: int = 5
    window_s: float = 30.0
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 2.0
    failures_before_restart: int = 10

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or self.window_s <= 0 or self.failures_before_restart < 1:
            msg = (
                f"restart policy needs max_restarts >= 0, window_s > 0 and "
                f"failures_before_restart >= 1, got max_restarts={self.max_restarts} "
                f"window_s={self.window_s} failures_before_restart={self.failures_before_restart}"
            )
            raise ValueError(msg)


class Supervision:
    """Restart bookkeeping of one node (shared by its replicas)."""

    def __init__(self, policy: RestartPolicy, clock: Clock) -> None:
        self.policy, self.clock = policy, clock
        self._recent: deque[float] = deque()
        self.restarts = 0

    async def on_failure(self, error: Exception, *, escalate: bool = True) -> None:
        """Wait the backoff before a restart.

        ``escalate=False`` (failures in a row) waits the initial backoff and is not
        counted towards the intensity.

        Raises:
            Exception: ``error`` itself, when the restart intensity is exceeded.
        """
        if not escalate:
            self.restarts += 1
            await self.clock.sleep(self.policy.backoff_initial_s)
            return
        now = self.clock.now()
        window_start = now - self.policy.window_s
        while self._recent and self._recent[0] <= window_start:
            self._recent.popleft()
        self._recent.append(now)
        if len(self._recent) > self.policy.max_restarts:
            raise error
        self.restarts += 1
        exponent = len(self._recent) - 1
        delay = min(self.policy.backoff_max_s, self.policy.backoff_initial_s * 2**exponent)
        await self.clock.sleep(delay)


def root_causes(exc: BaseException) -> list[Exception]:
    """The errors in ``exc`` (an exception group, nested or not); never cancellations."""
    if isinstance(exc, BaseExceptionGroup):
        found: list[Exception] = []
        for inner in exc.exceptions:
            found.extend(root_causes(inner))
        return found
    if isinstance(exc, Exception):
        return [exc]
    return []
