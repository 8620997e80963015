"""``Flow.run()``'s Ctrl-C handling: the first stops gracefully, the second cancels.

Guarantees: the handler is installed only on the main thread (elsewhere signals
cannot be handled) and removed when the run ends; the second Ctrl-C cancels every
actor at once, giving each unit's ``close()`` at most ``SECOND_INTERRUPT_CLOSE_S``.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

SECOND_INTERRUPT_CLOSE_S = 1.0
"""After a second Ctrl-C, what each unit's ``close()`` may still take."""


async def run_interruptible(
    run: Callable[[], Awaitable[T]],
    stop: Callable[[], Awaitable[None]],
    cancel: Callable[[], Awaitable[None]],
    log: Any,
) -> T:
    """Await ``run()`` with SIGINT calling ``stop()`` the first time, ``cancel()`` after."""
    loop = asyncio.get_running_loop()
    presses = 0
    tasks: set[asyncio.Task[None]] = set()

    async def call(action: Callable[[], Awaitable[None]]) -> None:
        await action()

    def on_sigint() -> None:
        nonlocal presses
        presses += 1
        action = "stopping gracefully" if presses == 1 else "cancelling"
        log.warning("flow_interrupted", action=action)
        task = loop.create_task(call(stop if presses == 1 else cancel))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        return await run()
    finally:
        if in_main:
            loop.remove_signal_handler(signal.SIGINT)
