"""Dedicated, named executor threads for one node: ``actorflow-<node>-<i>``.

Blocking work (inference, decoding, plain-function units) never runs on the event
loop, and never on a shared default pool where a slow model could starve everything
else. Each replica of a node owns one thread, created on first use.

Guarantees:

* A call is never abandoned: cancelling the awaiting task waits for the call to finish
  (a thread cannot be interrupted; ONNX units use ``RunOptions.terminate`` to end
  their calls early).
* ``shutdown()`` ends every thread it started, waiting at most ``timeout`` seconds,
  and returns the names of threads still busy after that.

On asyncio the hand-off is one ``call_soon_threadsafe``; on other anyio backends the
call goes through ``anyio.to_thread`` with a per-node limiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

R = TypeVar("R")

if TYPE_CHECKING:
    from actorflow.runtime._trace import Tracer

_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class NodeExecutor:
    """One named worker thread per replica of a node."""

    def __init__(self, node: str, replicas: int, tracer: Tracer | None = None) -> None:
        self.node = node
        self.tracer = tracer
        self._queues: list[queue.SimpleQueue[_Job | None] | None] = [None] * replicas
        self._threads: list[threading.Thread] = []
        self._limiter: anyio.CapacityLimiter | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, replica: int, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(*args)`` on replica ``replica``'s thread and return its result."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another anyio backend (trio)
            return await self._run_anyio(fn, *args)
        future: asyncio.Future[R] = loop.create_future()
        self._queue(replica).put((fn, args, loop, future))
        with anyio.CancelScope(shield=True):
            result = await future
        return result

    def shutdown(self, timeout: float = 1.0) -> list[str]:
        """Stop every thread; return the names of those still running after ``timeout``."""
        with self._lock:
            self._closed = True
            for q in self._queues:
                if q is not None:
                    q.put(None)
        deadline = timeout
        stuck = []
        for thread in self._threads:
            thread.join(deadline)
            if thread.is_alive():
                stuck.append(thread.name)
                deadline = 0.0
        return stuck

    def _queue(self, replica: int) -> queue.SimpleQueue[_Job | None]:
        q = self._queues[replica]
        if q is None:
            with self._lock:
                if self._closed:
                    msg = f"node {self.node!r}: executor is shut down"
                    raise RuntimeError(msg)
                q = self._queues[replica] = queue.SimpleQueue()
                thread = threading.Thread(
                    target=_work,
                    args=(q, self.tracer),
                    daemon=True,
                    name=f"actorflow-{self.node}-{replica}",
                )
                self._threads.append(thread)
                thread.start()
        return q

    async def _run_anyio(self, fn: Callable[..., R], *args: Any) -> R:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(max(1, len(self._queues)))
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)


def _work(jobs: queue.SimpleQueue[_Job | None], tracer: Tracer | None) -> None:
    track = threading.current_thread().name
    while (job := jobs.get()) is not None:
        fn, args, loop, future = job
        started = time.perf_counter() if tracer is not None else 0.0
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting task, which re-raises it
            _post(loop, future, None, exc)
        else:
            _post(loop, future, result, None)
        if tracer is not None:
            name = getattr(fn, "__qualname__", type(fn).__name__)
            tracer.span(track, name, started, time.perf_counter())
        del job, fn, args, future


def _post(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    exc: BaseException | None,
) -> None:
    # RuntimeError: the loop closed while the call ran; nobody is waiting any more
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve, future, result, exc)


def _resolve(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
