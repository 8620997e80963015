"""The loop watchdog: notices when something blocks the event loop, and names the node.

A unit that calls ``time.sleep`` or runs heavy NumPy inside ``async def process``
blocks every other node, every session and every HTTP handler of the process. The
watchdog makes that visible instead of mysterious.

How it works: a daemon thread posts a probe to the loop (``call_soon_threadsafe``)
and checks, every half threshold, whether the loop ran it. When a probe waits longer
than the threshold, the loop is blocked: the watchdog reads which task the loop is
running (actor tasks are named after their node), logs ``event_loop_blocked`` with
that node, and counts the episode. When the loop runs again it logs
``event_loop_resumed`` with the episode's length. The cost on the loop is one probe
callback per half threshold; nothing on the hot path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any


class LoopWatchdog:
    """Watches one asyncio loop; start with ``start()``, end with ``stop()`` (idempotent).

    Args:
        loop: the loop to watch.
        threshold: seconds of blocking that count as an episode.
        log: a structlog logger (bound to the flow).
        node_of: maps the name of the task the loop is running to a node id.
        name: the thread's name.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        threshold: float,
        log: Any,
        node_of: Callable[[str], str | None],
        name: str,
    ) -> None:
        self.loop, self.threshold, self.log, self.node_of = loop, threshold, log, node_of
        self.episodes = 0
        """Times the loop was seen blocked past the threshold."""
        self._probe_sent: float | None = None
        self._episode: list[str | None] = []
        """While an episode is reported and not over: the node blocking the loop."""
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=name, daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching: the thread wakes at once and ends (joined briefly here)."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=0.1)  # it only has to wake and return

    def _watch(self) -> None:
        interval = max(0.005, self.threshold / 2)
        reported = False
        while not self._stopped.wait(interval):
            sent = self._probe_sent
            if sent is None:
                self._probe_sent = time.monotonic()
                try:
                    self.loop.call_soon_threadsafe(self._ack)
                except RuntimeError:  # the loop closed
                    return
                reported = False
                continue
            blocked = time.monotonic() - sent
            if blocked > self.threshold and not reported:
                reported = True
                self.episodes += 1
                node = self._running_node()
                self._episode.append(node)
                self.log.warning(
                    "event_loop_blocked",
                    node=node,
                    blocked_s=round(blocked, 3),
                    threshold_s=self.threshold,
                )

    def _running_node(self) -> str | None:
        task = asyncio.current_task(self.loop)  # a dict lookup, safe from this thread
        return self.node_of(task.get_name()) if task is not None else None

    def _ack(self) -> None:
        sent, self._probe_sent = self._probe_sent, None
        if self._episode and sent is not None:
            node = self._episode.pop()
            self.log.warning(
                "event_loop_resumed", node=node, blocked_s=round(time.monotonic() - sent, 3)
            )


def start_watchdog(
    threshold: float, log: Any, node_of: Callable[[str], str | None], name: str
) -> LoopWatchdog | None:
    """Start watching the running asyncio loop; ``None`` on other backends (trio)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    watchdog = LoopWatchdog(loop, threshold, log, node_of, name=name)
    watchdog.start()
    return watchdog
