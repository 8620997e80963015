"""``ParkingLot``'s guarantees on both paths: asyncio futures and ``anyio.Event`` (trio).

FIFO wake-ups, and no wake-up lost to a cancellation: a task cancelled while parked
leaves the lot, and a task woken but cancelled before it ran hands its wake-up on.
"""

from __future__ import annotations

import asyncio

import anyio
import pytest

from actorflow.runtime._parking import ParkingLot

pytestmark = pytest.mark.anyio

BACKENDS = [pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]


async def park_and_record(lot: ParkingLot, name: str, woken: list[str]) -> None:
    await lot.park()
    woken.append(name)


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_tasks_are_woken_in_the_order_they_parked() -> None:
    lot, woken = ParkingLot(), []
    async with anyio.create_task_group() as tg:
        for name in "abc":
            tg.start_soon(park_and_record, lot, name, woken)
            await anyio.wait_all_tasks_blocked()
        assert len(lot) == 3
        for _ in range(3):
            assert lot.unpark()
            await anyio.wait_all_tasks_blocked()
    assert woken == ["a", "b", "c"]
    assert not lot
    assert not lot.unpark()


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_a_task_cancelled_while_parked_leaves_the_lot() -> None:
    lot, woken = ParkingLot(), []
    async with anyio.create_task_group() as tg:
        tg.start_soon(park_and_record, lot, "ignored", woken)
        async with anyio.create_task_group() as inner:
            inner.start_soon(park_and_record, lot, "cancelled", woken)
            await anyio.wait_all_tasks_blocked()
            inner.cancel_scope.cancel()
        assert len(lot) == 1  # only the task outside the cancelled group is left
        assert lot.unpark()
    assert woken == ["ignored"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_woken_task_cancelled_before_it_ran_hands_its_wake_up_on() -> None:
    """``Task.cancel()`` between the wake-up and the task's next step (anyio's cancel
    scopes wait for the next checkpoint there, so a bare cancel is the attack)."""
    lot, woken = ParkingLot(), []
    doomed = asyncio.create_task(park_and_record(lot, "doomed", woken))
    await anyio.wait_all_tasks_blocked()
    following = asyncio.create_task(park_and_record(lot, "next", woken))
    await anyio.wait_all_tasks_blocked()
    assert lot.unpark()  # wakes "doomed" ...
    doomed.cancel()  # ... which is cancelled before it runs
    await anyio.wait_all_tasks_blocked()
    assert woken == ["next"]  # the wake-up was not lost
    assert doomed.cancelled()
    assert following.done()
    assert not lot


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_unpark_skips_the_futures_of_tasks_cancelled_while_parked() -> None:
    lot, woken = ParkingLot(), []
    gone = asyncio.create_task(park_and_record(lot, "gone", woken))
    await anyio.wait_all_tasks_blocked()
    following = asyncio.create_task(park_and_record(lot, "next", woken))
    await anyio.wait_all_tasks_blocked()
    gone.cancel()  # its future is cancelled at once; the task has not run its cleanup
    assert lot.unpark()  # must wake "next", not spend the wake-up on "gone"
    await anyio.wait_all_tasks_blocked()
    assert woken == ["next"]
    assert gone.cancelled()
    assert following.done()
    assert not lot


@pytest.mark.parametrize("anyio_backend", BACKENDS)
async def test_unpark_all_wakes_everyone_and_the_lot_stays_usable() -> None:
    lot, woken = ParkingLot(), []
    parked = lot.parked
    async with anyio.create_task_group() as tg:
        for name in "ab":
            tg.start_soon(park_and_record, lot, name, woken)
        await anyio.wait_all_tasks_blocked()
        lot.unpark_all()
        await anyio.wait_all_tasks_blocked()
        assert sorted(woken) == ["a", "b"]
        tg.start_soon(park_and_record, lot, "c", woken)
        await anyio.wait_all_tasks_blocked()
        assert lot.parked is parked  # lanes keep this reference: it must stay the same
        assert parked
        lot.unpark()
    assert woken[-1] == "c"
