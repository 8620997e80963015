"""Helpers for lifecycle tests: a gate that plain-``def`` units block on, and leak checks."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import anyio

import actorflow as af
from actorflow.unit import FunctionUnit

FINAL_STATES = ("stopped", "failed")
"""States a flow may be in once ``stop()``/``wait()`` returned or its waiter was cancelled."""

PACKAGE_DIR = Path(af.__file__).resolve().parent


class Gate:
    """What a blocking thread call waits on: ``threading.Event.wait(timeout)``.

    Tests open the gate at teardown, so abandoned calls end and their threads exit
    (the suite's ``no_leaks`` fixture checks that). ``entered()`` waits, off the event
    loop, until calls really are blocked: no sleeps to synchronise.
    """

    def __init__(self, timeout: float = 60.0) -> None:
        self.release = threading.Event()
        self.timeout = timeout
        self._entered = threading.Semaphore(0)

    def block(self) -> None:
        """Called on a worker thread: announce the call, then wait for the gate."""
        self._entered.release()
        self.release.wait(self.timeout)

    async def entered(self, count: int = 1) -> None:
        """Wait until ``count`` calls are blocked at the gate."""
        for _ in range(count):
            started = await anyio.to_thread.run_sync(self._entered.acquire, True, 30.0)
            assert started, "a blocking call never reached the gate"

    def open(self) -> None:
        """Let every blocked call (and every later one) return."""
        self.release.set()


def blocking_unit(gate: Gate, *, when: Any = None) -> type[FunctionUnit]:
    """A plain-``def`` unit (``stuck``) that blocks in its thread on ``gate``.

    With ``when`` set, only payloads equal to it block; the others pass through.
    """

    @af.flowunit(register=False, name="stuck")
    def stuck(x: Any) -> Any:
        if when is None or x == when:
            gate.block()
        return x

    return stuck


def actorflow_tasks() -> list[asyncio.Task[Any]]:
    """Unfinished asyncio tasks the runtime started (named ``actorflow-*`` or running its code)."""
    left = []
    for task in asyncio.all_tasks():
        if task.done():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        ours = code is not None and Path(code.co_filename).resolve().is_relative_to(PACKAGE_DIR)
        if ours or task.get_name().startswith("actorflow"):
            left.append(task)
    return left


async def settled_tasks() -> list[asyncio.Task[Any]]:
    """``actorflow_tasks()`` after letting cancelled tasks finish unwinding (3 loop passes)."""
    for _ in range(3):
        await asyncio.sleep(0)
    return actorflow_tasks()


def non_daemon_actorflow_threads() -> list[str]:
    """Live ``actorflow-*`` threads that would keep the process alive at exit."""
    return [
        t.name for t in threading.enumerate() if t.name.startswith("actorflow-") and not t.daemon
    ]


async def release(flow: af.Flow, gate: Gate) -> None:
    """Teardown: open the gate; if the flow outlived its stop (the bug), let it end."""
    gate.open()
    if flow.state in ("running", "draining"):
        with anyio.move_on_after(30, shield=True):
            await flow.stop()
            if flow.state in ("running", "draining"):
                await flow.wait()


class FakeClock:
    """Restart backoff without waiting: sleeps advance time and return at once."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await anyio.lowlevel.checkpoint()
