"""A network sink's ledger: every accepted item is settled exactly once.

``SinkLedger`` is shared by ``HttpDelivery`` and ``WebSocketDelivery``. An item is
*accepted* when the sink takes it, and *settled* when it is delivered or written to
the dead-letter record; settling twice is a no-op, so a late answer from a server can
never count an item that was already dead-lettered (or the other way round).
Invariant, at every moment::

    accepted == delivered + dead_lettered + pending

``abandon`` dead-letters everything still pending **synchronously** (no ``await``), so a
sink's ``close()`` can run it in a ``finally`` even while it is being cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import aiohttp
import anyio
import structlog

from actorflow.flowunits.sinks._delivery import DeadLetterLog, Item

logger = structlog.get_logger(__name__)

CLEANUP_TIMEOUT = 0.2
"""Seconds a sink's ``close()`` may spend, after its items are settled, letting its
cancelled tasks finish and its connections close (usually a few milliseconds)."""


class SinkLedger:
    """Counts one sink's items: accepted, delivered, retried, dead-lettered, pending.

    ``retried`` counts extra attempts (HTTP) or re-sends after a reconnect (WebSocket);
    it is not an outcome, so it is not part of the invariant.
    """

    def __init__(self, dead_letters: DeadLetterLog, sink: str, url: str) -> None:
        self.dead_letters, self.sink, self.url = dead_letters, sink, url
        self.accepted = self.delivered = self.retried = self.dead_lettered = 0
        self._pending: dict[int, Item] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def pending(self) -> int:
        """Items accepted and not settled yet."""
        return len(self._pending)

    def is_pending(self, item: Item) -> bool:
        """Whether ``item`` was accepted and is not settled yet."""
        return id(item) in self._pending

    async def settled(self) -> None:
        """Return once nothing is pending (at once if nothing is)."""
        await self._idle.wait()

    def accept(self, item: Item) -> None:
        """Take responsibility for ``item``: from now on it must be settled."""
        self.accepted += 1
        self._pending[id(item)] = item
        self._idle.clear()

    def _settle(self, item: Item) -> bool:
        if self._pending.pop(id(item), None) is None:
            return False
        if not self._pending:
            self._idle.set()
        return True

    def deliver(self, item: Item) -> bool:
        """Settle ``item`` as delivered; False (and nothing counted) if already settled."""
        if not self._settle(item):
            return False
        self.delivered += 1
        return True

    def dead_letter(
        self, item: Item, reason: str, *, status: int | None = None, error: str | None = None
    ) -> bool:
        """Settle ``item`` as dead-lettered with ``reason``; False if already settled."""
        if not self._settle(item):
            return False
        self.dead_lettered += 1
        self.dead_letters.write_item(
            item,
            sink=self.sink,
            reason=reason,
            url=self.url,
            attempts=item.attempts,
            status=status,
            error=error,
        )
        return True

    def abandon(self, reason: str, error: str) -> int:
        """Dead-letter every pending item with ``reason``, in acceptance order; synchronous.

        Returns how many items were dead-lettered.
        """
        items = list(self._pending.values())
        for item in items:
            self.dead_letter(item, reason, error=error)
        return len(items)

    def snapshot(self) -> dict[str, int]:
        """The counts, for ``describe()`` and metrics."""
        return {
            "accepted": self.accepted,
            "delivered": self.delivered,
            "retried": self.retried,
            "dead_lettered": self.dead_lettered,
            "pending": self.pending,
        }


async def release(
    sink: str, tasks: Collection[asyncio.Task[Any]], session: aiohttp.ClientSession | None
) -> None:
    """Close ``session`` and let the (already cancelled) ``tasks`` finish.

    Shielded from cancellation and bounded by ``CLEANUP_TIMEOUT``. The session is
    closed first: aiohttp closes its sockets synchronously, so even a cleanup cut short
    leaks no socket. Logs ``sink_cleanup_timed_out`` if tasks were still running.
    """
    with anyio.move_on_after(CLEANUP_TIMEOUT, shield=True):
        if session is not None:
            await session.close()
        if tasks:
            await asyncio.wait(tasks)
    left = [task.get_name() for task in tasks if not task.done()]
    if left:
        logger.warning("sink_cleanup_timed_out", sink=sink, tasks=left)
