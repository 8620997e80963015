"""``Flow``: ModelBox's synchronous flow API over an actorflow ``Flow``.

The native flow runs on a small owned thread with its own asyncio loop
(``actorflow-modelbox-<name>``); every call is handed to that loop and waited for,
so the runtime is only touched from one thread. The thread is joined when the flow
ends (``wait`` returns) or is stopped.

ModelBox semantics kept here rather than in the runtime: methods return a ``Status``
instead of raising, ``wait(0)`` waits forever, and a graph fed only by external data
maps ends when every map was shut down and drained to ``STATUS_EOF`` (or closed), so
that ``wait(0)`` then returns ``STATUS_STOP``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anyio

from actorflow.compat._loop import LoopThread
from actorflow.compat.modelbox._external import ExternalDataMap
from actorflow.compat.modelbox._log import error
from actorflow.compat.modelbox._status import Status, StatusCode, status_of
from actorflow.errors import ActorFlowError
from actorflow.graph import Graph, load_graph
from actorflow.graph._formats import load_document
from actorflow.runtime import Flow as NativeFlow

T = TypeVar("T")
"""What a call on the loop returns."""

FORMAT_AUTO = "auto"
FORMAT_TOML = "toml"
FORMAT_JSON = "json"
_FORMATS = {FORMAT_AUTO, FORMAT_TOML, FORMAT_JSON, "FORMAT_AUTO", "FORMAT_TOML", "FORMAT_JSON"}


class Format:
    """Graph file formats for ``Flow.init``."""

    FORMAT_AUTO = FORMAT_AUTO
    FORMAT_TOML = FORMAT_TOML
    FORMAT_JSON = FORMAT_JSON


class Flow:
    """A flow graph with ModelBox's Python API: ``init``, ``build``, ``run_async``, ``wait``.

    Every method returns a ``Status`` (truthy on success) and logs what went wrong;
    none raises for a bad graph or a failed run.
    """

    Format = Format

    def __init__(self) -> None:
        self._native: NativeFlow | None = None
        self._loop: LoopThread | None = None
        self._maps: list[ExternalDataMap] = []
        self._changed: anyio.Event | None = None
        self._session_fed = False

    # -- lifecycle -------------------------------------------------------------------

    def init(
        self,
        source: str | Path | Mapping[str, Any],
        graph: str | None = None,
        format: str = FORMAT_AUTO,
        *,
        allow_custom_code: bool | None = None,
    ) -> Status:
        """Load a graph: ``init(path[, format])``, ``init(name, graph, format)``, ``init(config)``.

        ``config`` is a parsed document (a dict with ``driver`` and ``graph``).
        """
        if graph is not None and str(graph) in _FORMATS:
            format, graph = str(graph), None  # init(path, format)
        try:
            loaded = self._load(source, graph, _format(format), allow_custom_code)
            self._native = NativeFlow(loaded)
        except (ActorFlowError, OSError, ValueError) as exc:
            error(f"flow init failed: {exc}")
            return Status(StatusCode.STATUS_BADCONF, str(exc))
        return Status()

    def build(self) -> Status:
        """Load driver directories, validate the graph and create every unit."""
        if self._native is None:
            return Status(StatusCode.STATUS_FAULT, "build() needs init() first")
        native = self._native
        try:
            native.build()  # synchronous and loop-free: validation and unit construction
        except Exception as exc:  # ModelBox reports through the Status, never raises
            error(f"flow build failed: {exc}")
            code = (
                StatusCode.STATUS_BADCONF
                if isinstance(exc, ActorFlowError)
                else (StatusCode.STATUS_FAULT)
            )
            return Status(code, str(exc))
        graph = native.graph
        self._session_fed = graph is not None and not _has_sources(graph)
        return Status()

    def run_async(self) -> Status:
        """Start the flow; return once every node has opened."""
        if self._native is None:
            return Status(StatusCode.STATUS_FAULT, "run_async() needs init() first")
        if self._native.state == "created" and not self.build():
            return Status(StatusCode.STATUS_BADCONF, "build failed")
        try:
            self.call(self._native.run_async)
        except Exception as exc:  # ModelBox reports through the Status, never raises
            error(f"flow run failed: {exc}")
            self._close_loop()
            return Status(StatusCode.STATUS_FAULT, str(exc))
        return Status()

    def run(self) -> Status:
        """Start the flow and wait for it to end."""
        started = self.run_async()
        return self.wait(0) if started else started

    def wait(self, millisecond: int = 0, ret_val: Status | None = None) -> Status:
        """Wait for the flow to end: ``STATUS_STOP``, ``STATUS_FAULT`` or ``STATUS_TIMEDOUT``.

        ``millisecond=0`` waits forever. When the time runs out first the flow is
        stopped and ``STATUS_TIMEDOUT`` returned. A graph fed only by external data
        maps ends once every map was shut down and received ``STATUS_EOF``.
        """
        if self._native is None or self._loop is None:
            return Status(StatusCode.STATUS_FAULT, "wait() needs run_async() first")
        timeout = millisecond / 1000 if millisecond > 0 else None
        try:
            status = self.call(self._wait, timeout)
        except RuntimeError as exc:
            return Status(
                StatusCode.STATUS_STOP if self._loop.closed else StatusCode.STATUS_FAULT, str(exc)
            )
        failure = self._native.exception
        self._close_loop()
        return status_of(status, str(failure) if failure else "")

    def stop(self) -> Status:
        """Stop the flow: drain what is in flight for the grace period, then cancel."""
        if self._native is not None and self._loop is not None and not self._loop.closed:
            self.call(self._native.stop)
            self._close_loop()
        return Status()

    def create_external_data_map(self) -> ExternalDataMap:
        """Open a session of the running flow (its ``input`` and ``output`` nodes).

        Raises:
            FlowStateError: the flow is not running.
        """
        if self._native is None or self._loop is None:
            msg = "create_external_data_map() needs a running flow; call run_async() first"
            raise RuntimeError(msg)
        native = self._native
        session = self.call(_sync(native.create_external_data_map))
        data_map = ExternalDataMap(self, session)
        self._maps.append(data_map)
        return data_map

    # -- plumbing ----------------------------------------------------------------------

    @property
    def native(self) -> NativeFlow | None:
        """The actorflow ``Flow`` underneath (for ``statistics()`` and the like)."""
        return self._native

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the flow's loop thread (started on first use)."""
        if self._loop is None:
            name = self._native.name if self._native is not None else "flow"
            self._loop = LoopThread(f"actorflow-modelbox-{name}")
        return self._loop.call(fn, *args)

    def session_changed(self) -> None:
        """A map ended (on the loop thread): ``wait`` re-checks whether all have."""
        if self._changed is not None:
            self._changed.set()

    async def _wait(self, timeout: float | None) -> Any:
        assert self._native is not None
        async with anyio.create_task_group() as tg:
            if self._session_fed:
                tg.start_soon(self._stop_when_maps_end)
            status = await self._native.wait(timeout)
            tg.cancel_scope.cancel()
        return status

    async def _stop_when_maps_end(self) -> None:
        assert self._native is not None
        while not (self._maps and all(m.done for m in self._maps)):
            self._changed = anyio.Event()
            await self._changed.wait()
        await self._native.stop()

    def _close_loop(self) -> None:
        if self._loop is not None:
            self._loop.close()

    @staticmethod
    def _load(
        source: str | Path | Mapping[str, Any],
        graph: str | None,
        fmt: Any,
        allow_custom_code: bool | None,
    ) -> Graph:
        if isinstance(source, Mapping):
            return load_document(source, path="<config>", allow_custom_code=allow_custom_code)
        if graph is not None:
            return load_graph(
                graph, format=fmt, name=str(source), allow_custom_code=allow_custom_code
            )
        return load_graph(Path(source), format=fmt, allow_custom_code=allow_custom_code)


def _format(value: str) -> str:
    fmt = str(value).lower().removeprefix("format_")
    if fmt not in ("auto", "toml", "json"):
        msg = f"unknown graph format {value!r}; use FORMAT_AUTO, FORMAT_TOML or FORMAT_JSON"
        raise ValueError(msg)
    return fmt


def _has_sources(graph: Graph) -> bool:
    fed = {edge.dst.node for edge in graph.edges}
    return any(node.kind == "unit" and node.id not in fed for node in graph.nodes)


def _sync(fn: Callable[[], T]) -> Callable[[], Awaitable[T]]:
    async def run() -> T:
        return fn()

    return run
