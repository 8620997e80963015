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
"""

from __future__ import annotations

from collections import deque

import anyio


class ParkingLot:
    """A FIFO of parked tasks; see the module docstring for the guarantees."""

    __slots__ = ("_parked",)

    def __init__(self) -> None:
        self._parked: deque[anyio.Event] = deque()

    def __bool__(self) -> bool:
        return bool(self._parked)

    def __len__(self) -> int:
        return len(self._parked)

    async def park(self) -> None:
        """Wait until unparked. Cancellation leaves the lot cleanly."""
        event = anyio.Event()
        self._parked.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.unpark()  # woken, then cancelled: hand the wake-up on
            else:
                self._parked.remove(event)
            raise

    def unpark(self) -> bool:
        """Wake the task parked longest; ``False`` when none is parked."""
        if not self._parked:
            return False
        self._parked.popleft().set()
        return True

    def unpark_all(self) -> None:
        """Wake every parked task."""
        parked, self._parked = self._parked, deque()
        for event in parked:
            event.set()
