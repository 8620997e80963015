"""``ParkingLot``: the one wait queue every runtime primitive parks its tasks in.

Modelled on trio's ``ParkingLot``: a task parks until another unparks it; the lot knows
nothing about *why* they wait (room in a lane, an item, a result, a re-order window),
so the owner re-checks its condition after waking.

Guarantees:

* Tasks are woken in the order they parked (FIFO).
* Cancel cleanup: a task cancelled while parked leaves the lot; a task that was
  unparked but cancelled before it could run passes its wake-up on to the next parked
  task, so a wake-up is never lost (a lost one would leave a sender blocked on a lane
  that has room).

On asyncio a parked task waits on a bare ``asyncio.Future`` of the running loop (an
``anyio.Event`` costs an async-backend lookup per park, about 7 % of a hop); on other
anyio backends it waits on an ``anyio.Event``. Both give the guarantees above: a
cancelled future is skipped by ``unpark`` and removed by its task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import anyio

_Waiter = asyncio.Future[None] | anyio.Event


class ParkingLot:
    """A FIFO of parked tasks; see the module docstring for the guarantees."""

    __slots__ = ("parked",)

    def __init__(self) -> None:
        self.parked: deque[_Waiter] = deque()
        """The parked waiters, oldest first; truthy while any may be parked. The same
        deque for the lot's lifetime, so hot paths may keep a reference and test it
        without a method call."""

    def __bool__(self) -> bool:
        return bool(self.parked)

    def __len__(self) -> int:
        return len(self.parked)

    async def park(self) -> None:
        """Wait until unparked. Cancellation leaves the lot cleanly."""
        try:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        except RuntimeError:  # not asyncio (trio)
            await self._park_event()
            return
        self.parked.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.unpark()  # woken, then cancelled: hand the wake-up on
            else:
                waiter.cancel()
                _discard(self.parked, waiter)
            raise

    async def _park_event(self) -> None:
        event = anyio.Event()
        self.parked.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.unpark()  # woken, then cancelled: hand the wake-up on
            else:
                _discard(self.parked, event)
            raise

    def unpark(self) -> bool:
        """Wake the task parked longest; ``False`` when none is parked."""
        parked = self.parked
        while parked:
            waiter = parked.popleft()
            if not isinstance(waiter, asyncio.Future):
                waiter.set()
                return True
            if not waiter.done():  # a cancelled task's future is skipped
                waiter.set_result(None)
                return True
        return False

    def unpark_all(self) -> None:
        """Wake every parked task."""
        parked = list(self.parked)
        self.parked.clear()
        for waiter in parked:
            if not isinstance(waiter, asyncio.Future):
                waiter.set()
            elif not waiter.done():
                waiter.set_result(None)


def _discard(parked: deque[_Waiter], waiter: _Waiter) -> None:
    with contextlib.suppress(ValueError):  # already taken off the lot by unpark()
        parked.remove(waiter)
