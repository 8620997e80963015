"""A small owned thread running its own asyncio loop, for the synchronous compat APIs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
"""What a call returns."""


class LoopThread:
    """An asyncio event loop on a daemon thread named ``name``; ``close()`` joins it.

    Guarantees: every coroutine submitted with ``call`` runs on that one loop, so
    the runtime is only ever touched from one thread; ``close()`` cancels what is
    left, shuts the loop down and joins the thread; calling it twice is harmless.
    """

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop and wait for its result in this thread.

        Raises:
            RuntimeError: called from the loop's own thread (it would deadlock), or
                after ``close()``.
        """
        if threading.current_thread() is self._thread:
            msg = "the synchronous compat API; do not call it from the flow's thread"
            raise RuntimeError(msg)
        if self._closed:
            msg = "the flow has stopped; create a new Flow to run the graph again"
            raise RuntimeError(msg)

        async def run() -> T:
            return await fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def submit(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Future[T]:
        """Start ``fn(*args)`` on the loop without waiting (safe from signal handlers)."""

        async def run() -> T:
            return await fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop)

    def close(self, timeout: float = 10.0) -> None:
        """Cancel leftover tasks, stop the loop and join the thread."""
        if self._closed:
            return
        self._closed = True
        if threading.current_thread() is self._thread:  # pragma: no cover - misuse guard
            self._loop.call_soon(self._loop.stop)
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()
