"""Dedicated, named executor threads for one node: ``actorflow-<node>-<i>``.

Blocking work (inference, decoding, plain-function units) never runs on the event
loop, and never on a shared default pool where a slow model could starve everything
else. Each replica of a node owns one thread, created on first use.

Guarantees:

* Cancelling the task awaiting a call ends the wait at once. A thread cannot be
  interrupted, so a call still running is *abandoned*: its result is discarded, it is
  counted (``abandoned``) and its thread named (``abandoned_threads``), and the
  ``thread_call_abandoned`` event is logged. This is what keeps ``stop()`` bounded
  whatever a unit does in its thread.
* Threads are daemon threads: a call blocked forever never keeps the process alive.
* ``shutdown()`` never blocks: it asks every thread to end after its current call and
  returns the names of those still busy.

* ``run_each`` hands a whole burst of calls over at once: one hand-off to the thread
  and one loop wake-up for the results, however many items; it stops at the first
  exception (the items after it are not run) and, once abandoned, runs no further item.

On asyncio the hand-off is one ``call_soon_threadsafe``; on other anyio backends the
call goes through ``anyio.to_thread`` with a per-node limiter (abandoned the same way:
``abandon_on_cancel``).
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
    """One named worker thread per replica of a node.

    Attributes:
        abandoned: calls whose awaiting task was cancelled while they still ran.
        abandoned_threads: names of the threads those calls ran on (each once).
    """

    def __init__(
        self, node: str, replicas: int, tracer: Tracer | None = None, log: Any = None
    ) -> None:
        self.node = node
        self.tracer = tracer
        self.log = log
        self.abandoned = 0
        self.abandoned_threads: list[str] = []
        self._queues: list[queue.SimpleQueue[_Job | None] | None] = [None] * replicas
        self._threads: list[threading.Thread | None] = [None] * replicas
        self._busy = [False] * replicas
        self._limiter: anyio.CapacityLimiter | None = None
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, replica: int, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(*args)`` on replica ``replica``'s thread and return its result.

        Cancellation returns at once and abandons the call (see the module docstring).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another anyio backend (trio)
            return await self._run_anyio(replica, fn, *args)
        future: asyncio.Future[R] = loop.create_future()
        self._queue(replica).put((fn, args, loop, future))
        try:
            return await future
        except asyncio.CancelledError:
            if self._busy[replica]:
                self._abandon(replica, fn)
            raise

    async def run_each(
        self, replica: int, fn: Callable[..., Any], items: list[Any], params: dict[str, Any]
    ) -> tuple[list[Any], Exception | None]:
        """Call ``fn(item, **params)`` for each item in turn on replica ``replica``'s thread.

        One hand-off for the whole burst. The calls stop at the first ``Exception``.

        Returns:
            The results of the calls that returned, in order, and the exception of the
            call after them (``None`` when every call returned). ``len(results) + 1``
            items ran when an exception is returned; the rest did not run.
        """
        burst = Burst(fn, items, params, self.tracer)
        try:
            return await self.run(replica, burst)
        except BaseException:
            burst.stopped = True  # abandoned or cancelled: run no further item
            raise

    def shutdown(self) -> list[str]:
        """Ask every thread to end after its current call; never waits.

        Returns:
            The names of threads busy with a call now (they end when it returns).
        """
        with self._lock:
            self._closed = True
            for q in self._queues:
                if q is not None:
                    q.put(None)
        return [t.name for t, busy in zip(self._threads, self._busy, strict=True) if t and busy]

    def _abandon(self, replica: int, fn: Callable[..., Any]) -> None:
        name = f"actorflow-{self.node}-{replica}"
        self.abandoned += 1
        if name not in self.abandoned_threads:
            self.abandoned_threads.append(name)
        if self.log is not None:
            call = fn.name if type(fn) is Burst else _call_name(fn)
            self.log.warning("thread_call_abandoned", node=self.node, thread=name, call=call)

    def _queue(self, replica: int) -> queue.SimpleQueue[_Job | None]:
        q = self._queues[replica]
        if q is None:
            with self._lock:
                if self._closed:
                    msg = f"node {self.node!r}: executor is shut down"
                    raise RuntimeError(msg)
                q = self._queues[replica] = queue.SimpleQueue()
                thread = threading.Thread(
                    target=self._work,
                    args=(q, replica),
                    daemon=True,
                    name=f"actorflow-{self.node}-{replica}",
                )
                self._threads[replica] = thread
                thread.start()
        return q

    def _work(self, jobs: queue.SimpleQueue[_Job | None], replica: int) -> None:
        tracer = self.tracer
        track = threading.current_thread().name
        while (job := jobs.get()) is not None:
            fn, args, loop, future = job
            if future.cancelled():  # its task was cancelled before the call started
                del job, fn, args, future
                continue
            self._busy[replica] = True
            started = time.perf_counter() if tracer is not None else 0.0
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting task, which re-raises it
                _post(loop, future, None, exc)
            else:
                _post(loop, future, result, None)
            finally:
                self._busy[replica] = False
            if tracer is not None and type(fn) is not Burst:  # a burst traces each call
                tracer.span(track, _call_name(fn), started, time.perf_counter())
            del job, fn, args, future

    async def _run_anyio(self, replica: int, fn: Callable[..., R], *args: Any) -> R:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(max(1, len(self._queues)))
        try:
            return await anyio.to_thread.run_sync(
                fn, *args, limiter=self._limiter, abandon_on_cancel=True
            )
        except anyio.get_cancelled_exc_class():
            self._abandon(replica, fn)
            raise


class Burst:
    """Several calls of one function, run back to back on a worker thread (``run_each``)."""

    __slots__ = ("fn", "items", "name", "params", "stopped", "tracer")

    def __init__(
        self,
        fn: Callable[..., Any],
        items: list[Any],
        params: dict[str, Any],
        tracer: Tracer | None,
    ) -> None:
        self.fn, self.items, self.params, self.tracer = fn, items, params, tracer
        self.name = _call_name(fn)
        self.stopped = False
        """Set on the loop when the awaiting task gives up: no further call starts."""

    def __call__(self) -> tuple[list[Any], Exception | None]:
        fn, params, results = self.fn, self.params, []
        if self.tracer is not None:
            return self._traced()
        try:
            for item in self.items:
                if self.stopped:
                    break
                results.append(fn(item, **params) if params else fn(item))
        except Exception as exc:
            return results, exc
        return results, None

    def _traced(self) -> tuple[list[Any], Exception | None]:
        fn, params, tracer, results = self.fn, self.params, self.tracer, []
        assert tracer is not None
        track, clock = threading.current_thread().name, time.perf_counter
        for item in self.items:
            if self.stopped:
                break
            started = clock()
            try:
                results.append(fn(item, **params))
            except Exception as exc:
                return results, exc
            finally:
                tracer.span(track, self.name, started, clock())
        return results, None


def _call_name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", type(fn).__name__)


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
