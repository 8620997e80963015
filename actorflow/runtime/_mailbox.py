"""Bounded mailboxes: one ``Lane`` per edge, gathered into one ``Inbox`` per node.

A lane is a deque with a capacity and a policy; putting and taking are plain method
calls when they need not wait (the fast path: no event-loop pass per message, which is
what makes a hop cost about as much as ``asyncio.Queue``). Waiting parks the task in a
``ParkingLot``, so the runtime stays backend-neutral and no wake-up is lost to a
cancellation.

Guarantees:

* A lane never holds more than ``capacity`` packets. Markers (``_markers``) bypass the
  capacity and are never dropped, so end-of-stream always arrives.
* ``block`` makes the sender wait; ``drop_newest`` discards the incoming packet;
  ``drop_oldest`` evicts the oldest queued packet; ``latest`` keeps only the newest.
  Every discarded packet is counted on the lane and reported through ``on_drop``.
* Items of one lane are taken in the order they were put.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import anyio

from actorflow.graph import Policy
from actorflow.runtime._markers import Marker
from actorflow.runtime._parking import ParkingLot
from actorflow.unit import Packet

Item = Packet[Any] | Marker
"""What a lane carries."""

NOTHING: Any = object()
"""Returned by ``take_nowait`` when no item is ready."""


class Lane:
    """The mailbox of one edge: bounded, with a drop policy, counted."""

    __slots__ = (
        "_space",
        "_space_parked",
        "_waiting",
        "cancelled",
        "capacity",
        "closed",
        "dropped",
        "inbox",
        "index",
        "items",
        "markers",
        "name",
        "offered",
        "on_cancel",
        "on_drop",
        "policy",
        "port",
    )

    def __init__(
        self,
        inbox: Inbox,
        *,
        name: str,
        port: str,
        capacity: int,
        policy: Policy,
        on_drop: Callable[[Packet[Any], Lane], None],
        on_cancel: Callable[[Packet[Any]], None],
    ) -> None:
        if capacity < 1:
            msg = f"lane {name}: capacity must be >= 1, got {capacity}"
            raise ValueError(msg)
        self.inbox, self.name, self.port = inbox, name, port
        self.capacity = 1 if policy == "latest" else capacity
        self.policy: Policy = policy
        self.items: deque[Item] = deque()
        self.markers = 0
        """Markers queued now: they do not take packet capacity."""
        self.closed = False
        self.offered = 0
        """Packets offered to this lane (accepted or dropped)."""
        self.dropped = 0
        self.cancelled = 0
        """Packets whose sender was cancelled while waiting for room (at stop)."""
        self.on_drop = on_drop
        self.on_cancel = on_cancel
        self.index = len(inbox.lanes)
        self._space = ParkingLot()
        self._space_parked = self._space.parked  # tested per take without a call
        self._waiting = inbox.waiters.parked  # the consumers' wake-up queue, looked up once
        inbox.lanes.append(self)
        inbox.open_lanes += 1

    def put_nowait(self, packet: Packet[Any]) -> bool:
        """Put ``packet`` if that needs no waiting; ``False`` means a ``block`` lane is full."""
        items = self.items
        if len(items) - self.markers < self.capacity:
            items.append(packet)
            self.offered += 1
            if self._waiting:
                self.inbox.waiters.unpark()
            return True
        if self.policy == "block":
            return False
        self.offered += 1
        if self.policy == "drop_newest":
            self._drop(packet)
            return True
        self._evict_oldest()
        items.append(packet)
        if self.inbox.waiters:
            self.inbox.wake()
        return True

    def has_room(self) -> bool:
        """Whether ``put_nowait`` would accept a packet now without waiting."""
        return self.policy != "block" or len(self.items) - self.markers < self.capacity

    async def put(self, packet: Packet[Any]) -> None:
        """Put ``packet``, waiting while a ``block`` lane is full.

        If the sender is cancelled while waiting, the packet is counted as cancelled on
        this lane, so the consumer's ledger still closes.
        """
        while not self.put_nowait(packet):
            try:
                await self._space.park()
            except BaseException:
                self.offered += 1
                self.cancelled += 1
                self.on_cancel(packet)
                raise

    def put_marker(self, marker: Marker) -> None:
        """Put a control item; markers ignore the capacity and are never dropped."""
        self.items.append(marker)
        self.markers += 1
        if self.inbox.waiters:
            self.inbox.wake()

    def close(self) -> None:
        """The producer is done: the consumer sees the end once the lane is empty."""
        if not self.closed:
            self.closed = True
            self.inbox.open_lanes -= 1
            self.inbox.wake_all()
            self._wake_senders()

    def space_freed(self) -> None:
        """Called by the consumer after taking an item: let one waiting sender in."""
        self._space.unpark()

    def _wake_senders(self) -> None:
        self._space.unpark_all()

    def _evict_oldest(self) -> None:
        for i, item in enumerate(self.items):
            if type(item) is Packet:
                del self.items[i]
                self._drop(item)
                return

    def _drop(self, packet: Packet[Any]) -> None:
        self.dropped += 1
        self.on_drop(packet, self)


class Inbox:
    """All lanes into one node, shared by the node's replicas (competing consumers)."""

    __slots__ = ("_rr", "lanes", "open_lanes", "waiters")

    def __init__(self) -> None:
        self.lanes: list[Lane] = []
        self.open_lanes = 0
        self.waiters = ParkingLot()
        self._rr = 0

    def take_nowait(self) -> tuple[Lane, Item] | Any:
        """Take the next item, round-robin over lanes; ``NOTHING`` when none is ready."""
        lanes = self.lanes
        if len(lanes) == 1:
            lane = lanes[0]
            if lane.items:
                item = lane.items.popleft()
                if type(item) is not Packet:
                    lane.markers -= 1
                if lane._space_parked:
                    lane.space_freed()
                return lane, item
            return NOTHING
        count = len(lanes)
        for step in range(count):
            lane = lanes[(self._rr + step) % count]
            if lane.items:
                self._rr = (lane.index + 1) % count
                item = lane.items.popleft()
                if type(item) is not Packet:
                    lane.markers -= 1
                if lane._space_parked:
                    lane.space_freed()
                return lane, item
        return NOTHING

    def ready_lane(self) -> Lane | None:
        """The next lane with an item, round-robin (a plain node takes a burst from it)."""
        lanes = self.lanes
        if len(lanes) == 1:
            return lanes[0] if lanes[0].items else None
        count = len(lanes)
        for step in range(count):
            lane = lanes[(self._rr + step) % count]
            if lane.items:
                self._rr = (lane.index + 1) % count
                return lane
        return None

    @property
    def finished(self) -> bool:
        """Every producer closed its lane and every lane is empty."""
        return self.open_lanes == 0 and not any(lane.items for lane in self.lanes)

    async def take(self) -> tuple[Lane, Item]:
        """Take the next item, waiting for one.

        Raises:
            anyio.EndOfStream: every lane is closed and empty.
        """
        while True:
            got = self.take_nowait()
            if got is not NOTHING:
                return got
            if self.open_lanes == 0:
                raise anyio.EndOfStream
            await self.waiters.park()

    async def wait_for_item(self) -> None:
        """Wait until an item may be ready or the inbox ended (used while gathering batches)."""
        if any(lane.items for lane in self.lanes) or self.open_lanes == 0:
            return
        await self.waiters.park()

    def wake(self) -> None:
        """Wake one waiting consumer."""
        self.waiters.unpark()

    def wake_all(self) -> None:
        """Wake every waiting consumer (end of stream)."""
        self.waiters.unpark_all()

    def used(self) -> int:
        """Packets and markers queued now."""
        return sum(len(lane.items) for lane in self.lanes)

    def capacity(self) -> int:
        """Sum of lane capacities."""
        return sum(lane.capacity for lane in self.lanes)

    def drain(self) -> list[Item]:
        """Remove and return everything queued (used to account leftovers at stop)."""
        items: list[Item] = []
        for lane in self.lanes:
            items.extend(lane.items)
            lane.items.clear()
            lane.markers = 0
            lane._wake_senders()
        return items
