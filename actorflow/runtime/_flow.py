"""``Flow``: build a graph into actors, run it, stop it, wait for it, observe it.

Lifecycle::

    created --build()--> built --run_async()/async with/run()--> running
    running --(sources end)--> stopped          Status.STOP
    running --stop() / wait() timeout--> draining --> stopped
    running --a node exceeds its restarts--> failed    Status.FAULT, FlowFailed

Guarantees (the mechanics live in ``_supervisor.py``):

* Sinks open first and sources last: no packet is sent before its consumer opened.
* Bad input cannot take a flow down: an exception in a unit fails that packet only.
* ``stop(grace)`` stops sources and closes the input nodes, lets what is in flight
  drain for up to ``grace`` seconds, then cancels; it returns within
  ``grace + close_timeout`` (plus a little scheduling slack) with the flow in a final
  state, whatever the units do, and is harmless when called twice or before start.
* ``wait(timeout)`` returns ``Status.STOP`` or ``Status.FAULT`` when the flow ends; if
  the timeout expires first the flow is force-stopped within ``stop_grace`` and
  ``Status.TIMEOUT`` returned. Cancelling the task awaiting ``wait`` or ``stop``
  cancels the flow, which still ends in a final state.
* When the flow has ended, no task it started is left, every executor thread it
  started has been asked to end (calls still blocked are abandoned and named), and
  every node's and session's ledger closes (``statistics().balanced``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog
from anyio.abc import TaskGroup

from actorflow.errors import FlowFailed, FlowStateError
from actorflow.graph import Graph
from actorflow.runtime import _entry
from actorflow.runtime._builder import graph_from_units
from actorflow.runtime._interrupts import SECOND_INTERRUPT_CLOSE_S, run_interruptible
from actorflow.runtime._loading import load, prepare, unit_maker
from actorflow.runtime._session import Session
from actorflow.runtime._stats import FlowState, FlowStatistics
from actorflow.runtime._status import Status
from actorflow.runtime._streams import Stream
from actorflow.runtime._supervision import Clock, RestartPolicy, SystemClock
from actorflow.runtime._supervisor import Supervisor
from actorflow.runtime._trace import Tracer
from actorflow.unit import FlowUnit, Registry, SourceUnit, default_registry

logger = structlog.get_logger("actorflow.flow")


class Flow:
    """A graph of async actors: the thing you build, run, stop and observe.

    Args:
        graph: a ``Graph``, a dict graph, a path to a graph file, or a list of
            producer units (the videoflow form, with ``consumers``).
        consumers: with a list of producers, the consumer units (Python builder).
        registry: where unit names are looked up (the process-wide one by default).
        restart: the restart policy applied to every node.
        stop_grace: seconds ``stop()`` lets in-flight packets drain before cancelling.
        close_timeout: seconds each unit's ``close()`` may take.
        result_buffer: results each session buffers before its outputs wait.
        clock: time source for restart backoff (inject a fake one in tests).
        name: the flow's name in logs (default: the graph's).
        trace: record actor spans; ``write_trace(path)`` saves them as a Chrome trace.
        watchdog_threshold: seconds of a blocked event loop that the loop watchdog
            reports (``event_loop_blocked``, naming the node); ``None`` turns it off.
        ray_address: the Ray cluster for nodes with ``placement="ray"`` (``None``: the
            Ray this process is connected to, else a local one started on demand).
    """

    def __init__(
        self,
        graph: Graph | Mapping[str, Any] | str | Path | Sequence[FlowUnit] | None = None,
        consumers: Sequence[FlowUnit] | None = None,
        *,
        registry: Registry | None = None,
        restart: RestartPolicy | None = None,
        stop_grace: float = 5.0,
        close_timeout: float = 10.0,
        result_buffer: int = 64,
        clock: Clock | None = None,
        name: str | None = None,
        trace: bool = False,
        watchdog_threshold: float | None = 0.1,
        ray_address: str | None = None,
    ) -> None:
        self._registry = registry or default_registry
        self._name = name
        self._options: dict[str, Any] = {
            "restart": restart or RestartPolicy(),
            "stop_grace": stop_grace,
            "close_timeout": close_timeout,
            "result_buffer": result_buffer,
            "clock": clock or SystemClock(),
            "watchdog_threshold": watchdog_threshold,
        }
        self._ray_address = ray_address
        self._graph: Graph | None = None
        self._state: FlowState = "created"
        self._sup: Supervisor | None = None
        self._cm_tg: TaskGroup | None = None
        self.log: Any = logger
        self.tracer = Tracer() if trace else None
        """Spans of every ``process`` call and blocking call (``trace=True``), else ``None``."""
        self.base_dir = Path.cwd()
        if isinstance(graph, Sequence) and not isinstance(graph, str):
            self._graph = graph_from_units(graph, consumers or (), name=name)
        elif graph is not None:
            self.init(graph)

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> Flow:
        """Load a graph file (TOML or JSON) into a new flow."""
        return cls(Path(path), **options)

    def init(
        self,
        source: Graph | Mapping[str, Any] | str | Path,
        graph_text: str | None = None,
        format: str = "auto",
        *,
        allow_custom_code: bool | None = None,
    ) -> Flow:
        """Load the graph: ``init(path)``, ``init(dict)``, or ``init(name, text, format)``.

        Returns the flow (truthy), for ModelBox-style ``if not flow.init(...)`` checks.

        Raises:
            GraphError: the document cannot be loaded (file, line and problem named).
            FlowStateError: the flow was already built.
        """
        self._require("init()", "created")
        graph = load(source, graph_text, format, allow_custom_code)
        self._graph = graph
        return self

    def build(self) -> Flow:
        """Validate the graph and instantiate every unit; no I/O happens here.

        Raises:
            GraphValidationError: the graph is wrong (every problem listed).
            UnitConfigError: a unit rejected its parameters.
            FlowStateError: no graph was given, or the flow was already built.
        """
        self._require("build()", "created")
        if self._graph is None:
            msg = "build() needs a graph: pass one to Flow(...) or call init(...) first"
            raise FlowStateError(msg)
        graph = prepare(self._graph, self._registry)
        self._graph = graph
        self.base_dir = graph.base_dir
        self.log = logger.bind(flow=self._name or graph.name)
        self._sup = Supervisor(
            graph,
            unit_maker(graph, self._registry, self._ray_address),
            name=self.name,
            tracer=self.tracer,
            log=self.log,
            **self._options,
        )
        self._state = "built"
        return self

    def rebuild(self) -> Flow:
        """Make a failed flow runnable again: fresh units from the same graph.

        This is what a level above the flow does when the flow failed (see
        ``keep_running``); the flow's ledgers start afresh.

        Raises:
            FlowStateError: the flow has not failed.
        """
        self._require("rebuild()", "failed")
        self._state = "created"
        self._sup = None
        return self.build()

    async def run_async(self) -> Status:
        """Start the flow on the running asyncio loop; return once every node has opened.

        The flow runs in a root task of its own, so a failing node cannot cancel the
        caller's code. Use ``wait()`` to learn how it ended.

        Raises:
            FlowStateError: already started, or not on asyncio (use ``async with flow``).
            FlowFailed: a node failed to open.
        """
        await _entry.start_root(self._start("run_async()"))
        return Status.SUCCESS

    async def wait(self, timeout: float | None = None) -> Status:
        """Wait for the flow to end; ``timeout`` seconds (0 or None: forever).

        Returns ``Status.STOP`` when it ended, ``Status.FAULT`` when nodes failed (the
        ``FlowFailed`` is in ``flow.exception``), ``Status.TIMEOUT`` when the timeout
        expired first, in which case the flow has been force-stopped: it returns within
        ``timeout + stop_grace``.

        Raises:
            FlowStateError: the flow was never started.
        """
        return await self._started("wait()").wait(timeout)

    async def join(self) -> Status:
        """Wait for the flow to end without owning it: cancelling ``join`` leaves it running.

        Raises:
            FlowStateError: the flow was never started.
        """
        return await self._started("join()").join()

    async def stop(self, grace: float | None = None) -> None:
        """Stop sources and inputs, drain for ``grace`` seconds, then cancel the rest.

        Returns within ``grace + close_timeout`` (plus scheduling slack) with the flow
        stopped or failed. Harmless when the flow is not running or already stopping.
        """
        if self._sup is not None:
            await self._sup.stop(grace)

    def run(self) -> Status:
        """Run the flow to its end in this thread (a new event loop); Ctrl-C stops it.

        The first Ctrl-C stops gracefully (drain for the grace period); a second one
        cancels at once (closes get at most ``SECOND_INTERRUPT_CLOSE_S``).

        Raises:
            FlowFailed: nodes failed.
        """
        return asyncio.run(self._run_sync())

    async def __aenter__(self) -> Flow:
        self._cm_tg = await _entry.enter(self._start("async with"))
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        assert self._sup is not None
        assert self._cm_tg is not None
        await _entry.exit(self._sup, self._cm_tg, exc)

    def create_external_data_map(self) -> Session:
        """Open a session: a stream of its own through the running graph (ModelBox name)."""
        if self.state != "running" or self._sup is None:
            msg = f"create_external_data_map() needs a running flow (state: {self.state}); "
            raise FlowStateError(msg + "call run_async() or enter 'async with flow' first")
        return self._sup.open_session()

    session = create_external_data_map

    def add_source(
        self,
        source: SourceUnit,
        *,
        input: str | None = None,
        stream_id: str | None = None,
        collect: bool = False,
    ) -> Stream:
        """Start ``source`` feeding input node ``input`` of the running flow (``_streams.py``).

        Raises:
            FlowStateError: not running, an ambiguous or unknown input, a running id.
        """
        return self._started("add_source()").add_stream(source, input, stream_id, collect)

    async def remove_source(self, stream_id: str, *, drain: bool = True) -> Stream:
        """Stop a stream; ``drain``: what it sent finishes, else it is cancelled (counted)."""
        sup = self._started("remove_source()")
        return await sup.streams.remove(stream_id, drain=drain, budget=sup.close_budget())

    @property
    def name(self) -> str:
        """The flow's name (the graph's unless given)."""
        return self._name or (self._graph.name if self._graph else "flow")

    @property
    def graph(self) -> Graph | None:
        """The graph (validated, nodes in topological order, once built)."""
        return self._graph

    @property
    def state(self) -> FlowState:
        """Where the flow is in its lifecycle."""
        return self._sup.state if self._sup is not None else self._state

    @property
    def exception(self) -> FlowFailed | None:
        """Why the flow failed, or ``None``."""
        return self._sup.failure if self._sup is not None else None

    def statistics(self) -> FlowStatistics:
        """A snapshot of every node's, edge's and session's counters; cheap."""
        if self._sup is None:
            return FlowStatistics(self.name, self.state, {}, {}, {}, 0.0)
        return self._sup.statistics()

    def write_trace(self, path: str | Path) -> Path:
        """Save the recorded spans as a Chrome trace (Perfetto, ``chrome://tracing``).

        Raises:
            FlowStateError: the flow was created without ``trace=True``.
        """
        if self.tracer is None:
            msg = "write_trace() needs a flow created with Flow(..., trace=True)"
            raise FlowStateError(msg)
        return self.tracer.write(path)

    def _require(self, call: str, *states: FlowState) -> None:
        if self.state not in states:
            hint = (
                "create a new Flow to run the graph again"
                if self.state in ("running", "draining", "stopped", "failed")
                else ""
            )
            msg = f"{call} is not allowed when the flow is {self.state}" + (
                f"; {hint}" if hint else ""
            )
            raise FlowStateError(msg)

    def _start(self, call: str) -> Supervisor:
        if self.state == "created":
            self.build()
        self._require(call, "built")
        assert self._sup is not None
        return self._sup

    def _started(self, call: str) -> Supervisor:
        if self._sup is None or self._sup.done is None:
            msg = f"{call} called before the flow was started; call run_async() first"
            raise FlowStateError(msg)
        return self._sup

    async def _run_sync(self) -> Status:
        sup = self._start("run()")

        async def run() -> Status:
            await self.run_async()
            status = await self.wait()
            if status is Status.FAULT and sup.failure is not None:
                raise sup.failure
            return status

        async def cancel() -> None:
            await sup.cancel(min(sup.close_timeout, SECOND_INTERRUPT_CLOSE_S))

        return await run_interruptible(run, sup.stop, cancel, self.log)
