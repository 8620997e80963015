"""A shared session for short requests on one-in, one-out graphs (cross-request batching).

Why: one session per HTTP request batches across requests too, but each session costs a
set-up, an end-of-stream marker through the graph and a retirement; on a small model
that bookkeeping is a third of the work (``benchmarks/serve.py``: 2.06x the plain
handler with the shared session, 1.52x with one session per request). The multiplexer
keeps **one long-lived session** and sends every request's items on it; results are
matched back to requests by ``seq``.

When: ``Multiplexer.eligible(graph)``: exactly one input node and one output node, and
every unit has one output port that does not expand and no collapsing input, so each
input item yields at most one result, in order. Then a result for ``seq`` s also tells
that every earlier item produced nothing (a filter), and those requests are answered
with no outputs.

Guarantees and limits:

* each request gets exactly the results of its own items, in order;
* a full graph raises ``Overloaded`` (429); items of that request sent before the
  refusal still run, and their results are discarded (counted in ``discarded``);
* a client that disconnects cannot cancel items already in the shared session: their
  results are discarded when they arrive (counted in ``discarded``);
* a request waits at most ``timeout`` seconds for its results (``TimeoutError``);
* when the flow is restarted after a failure, the next request opens a new shared
  session on it; requests waiting when it failed get ``ConnectionError`` (503).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import anyio
import structlog

from actorflow.graph import Graph
from actorflow.integrations.aiohttp import Overloaded
from actorflow.runtime import Flow
from actorflow.unit import Registry, default_registry

logger = structlog.get_logger(__name__)


class Multiplexer:
    """Many requests through one session; see the module docstring."""

    def __init__(
        self, flow: Flow, port: str, *, retry_after: float = 1.0, timeout: float = 30.0
    ) -> None:
        self.flow, self.port = flow, port
        self.retry_after, self.timeout = retry_after, timeout
        self.discarded = 0
        self._session: Any = None
        self._next = 0
        self._pending: dict[int, asyncio.Future[list[Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    @staticmethod
    def eligible(graph: Graph, registry: Registry | None = None) -> bool:
        """Whether every input item of ``graph`` yields at most one result, in order."""
        registry = registry or default_registry
        if len(graph.inputs) != 1 or len(graph.outputs) != 1:
            return False
        for node in graph.nodes:
            if node.kind != "unit":
                continue
            try:
                cls = type(node.instance) if node.instance is not None else registry.get(node.unit)
            except LookupError:
                return False
            if len(cls.outputs) != 1 or cls.outputs[0].expand:
                return False
            if any(p.collapse for p in cls.inputs):
                return False
        return True

    async def start(self) -> None:
        """Open the shared session and start dispatching results."""
        self._session = self.flow.session()
        self._task = asyncio.get_running_loop().create_task(
            self._dispatch(), name="actorflow-serve-mux"
        )

    async def stop(self) -> None:
        """Close the shared session; requests still waiting fail with ``ConnectionError``."""
        self._stopped = True
        if self._session is not None:
            with contextlib.suppress(Exception):
                await self._session.close()
        if self._task is not None:
            with anyio.move_on_after(5):
                await asyncio.wait({self._task})
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_pending(ConnectionError("server stopped"))

    async def infer(self, items: list[tuple[str, Any]]) -> list[Any]:
        """Send ``items`` (all to the input port) and return their results in order.

        Raises:
            Overloaded: the graph is full (nothing more of this request is sent).
            TimeoutError: results did not arrive within ``timeout`` seconds.
        """
        if self._task is None or self._task.done():
            if self._stopped or self.flow.state != "running":
                msg = f"the flow is not running (state: {self.flow.state})"
                raise ConnectionError(msg)
            await self.start()  # the flow was restarted: open a session on it
        assert self._session is not None
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[list[Any]]] = []
        try:
            for _, data in items:
                try:
                    self._session.send_nowait(self.port, data)
                except anyio.WouldBlock:
                    reason = f"input {self.port!r} of the graph is full"
                    raise Overloaded(reason, self.retry_after) from None
                future: asyncio.Future[list[Any]] = loop.create_future()
                self._pending[self._next] = future
                self._next += 1
                futures.append(future)
            async with asyncio.timeout(self.timeout):
                groups = [await f for f in futures]
        except BaseException:
            for f in futures:  # results that still arrive are discarded
                f.cancel()
            raise
        return [r for group in groups for r in group]

    async def _dispatch(self) -> None:
        assert self._session is not None
        try:
            async for result in self._session:
                seq = result.seq
                for earlier in [s for s in self._pending if s < seq]:
                    self._resolve(earlier, [])  # produced nothing (filtered)
                self._resolve(seq, [result])
            self._fail_pending(ConnectionError("the flow ended; its shared session is closed"))
        except Exception as exc:  # the flow failed: every waiting request must learn it
            logger.error("mux_dispatch_failed", error=repr(exc))
            self._fail_pending(ConnectionError(f"flow ended: {exc!r}"))
            raise

    def _resolve(self, seq: int, results: list[Any]) -> None:
        future = self._pending.pop(seq, None)
        if future is None or future.done():
            self.discarded += len(results)
            return
        future.set_result(results)

    def _fail_pending(self, exc: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        self._pending.clear()
