"""``Flow``: build a graph into actors, run it, stop it, wait for it, observe it.

Lifecycle::

    created --build()--> built --run_async()/async with/run()--> running
    running --(sources end)--> stopped          Status.STOP
    running --stop() / wait() timeout--> draining --> stopped
    running --a node exceeds its restarts--> failed    Status.FAULT, FlowFailed

Guarantees:

* Sinks open first and sources last: no packet is sent before its consumer opened.
* ``stop(grace)`` stops sources and closes the input nodes, lets what is in flight
  drain for up to ``grace`` seconds, then cancels; it returns within grace plus the
  close timeout, and is harmless when called twice or before start.
* ``wait(timeout)`` returns ``Status.STOP`` or ``Status.FAULT`` when the flow ends; if
  the timeout expires first the flow is stopped and ``Status.TIMEOUT`` returned.
  Cancelling the task awaiting ``wait`` cancels the flow.
* When the flow has ended, no task it started is left, every executor thread it
  started has been asked to end, and the ledger of every node closes: packets left in
  mailboxes at stop are counted as cancelled (``statistics()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from actorflow.errors import FlowFailed, FlowStateError
from actorflow.graph import Graph, load_graph, validate
from actorflow.runtime._actor import run_replica, run_source
from actorflow.runtime._builder import BuilderCatalog, graph_from_units
from actorflow.runtime._markers import Failed
from actorflow.runtime._node import NodeRuntime
from actorflow.runtime._plan import Plan
from actorflow.runtime._session import Session
from actorflow.runtime._stats import (
    EdgeStatistics,
    FlowState,
    FlowStatistics,
    NodeStatistics,
    SessionCounters,
    SessionStatistics,
    edge_statistics,
    node_statistics,
)
from actorflow.runtime._status import Status
from actorflow.runtime._supervision import Clock, RestartPolicy, Supervision, SystemClock
from actorflow.runtime._trace import Tracer
from actorflow.unit import FlowUnit, Registry, block_unit_class, default_registry, instantiate

logger = structlog.get_logger("actorflow.flow")

RETIRED_SESSIONS_KEPT = 1000
"""Finished sessions whose ledgers ``statistics()`` still shows (the most recent ones)."""


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
    ) -> None:
        self._registry = registry or default_registry
        self._restart = restart or RestartPolicy()
        self._stop_grace = stop_grace
        self._close_timeout = close_timeout
        self._result_buffer = result_buffer
        self._clock = clock or SystemClock()
        self._name = name
        self._graph: Graph | None = None
        self._state: FlowState = "created"
        self._plan: Plan | None = None
        self._failure: FlowFailed | None = None
        self._sessions: dict[int, Session] = {}
        """Sessions that can still receive packets; finished ones are retired."""
        self._retired: deque[tuple[int, SessionCounters]] = deque(maxlen=RETIRED_SESSIONS_KEPT)
        self._sessions_finished = 0
        self.ledgers: dict[int, SessionCounters] = {}
        """Ledgers of every session (external and source streams), by id."""
        self._next_session = 1
        self.aborted: set[int] = set()
        self._source_scopes: list[anyio.CancelScope] = []
        self._tg: TaskGroup | None = None
        self._started: anyio.Event | None = None
        self._done: anyio.Event | None = None
        self._inputs_closed: anyio.Event | None = None
        self._root: asyncio.Task[None] | None = None
        self._cm_tg: TaskGroup | None = None
        self._started_at = 0.0
        self._start_failed = False
        self._stopped_at = 0.0
        self.log: Any = logger
        self.tracer = Tracer() if trace else None
        """Spans of every ``process`` call and blocking call (``trace=True``), else ``None``."""
        self.base_dir = Path.cwd()
        if isinstance(graph, Sequence) and not isinstance(graph, str):
            self._graph = graph_from_units(graph, consumers or (), name=name)
        elif graph is not None:
            self.init(graph)

    # -- construction ------------------------------------------------------------------

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
        if isinstance(source, Graph):
            graph = source
        elif graph_text is not None:
            graph = load_graph(
                graph_text,
                format=format,  # type: ignore[arg-type]
                name=str(source),
                allow_custom_code=allow_custom_code,
            )
        elif isinstance(source, Mapping):
            graph = load_graph(source)
        else:
            graph = load_graph(
                Path(source),
                format=format,  # type: ignore[arg-type]
                allow_custom_code=allow_custom_code,
            )
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
        graph = self._graph
        if graph.driver_dirs:
            from actorflow.unit._drivers import load_driver_dirs

            load_driver_dirs(graph.driver_dirs, base_dir=graph.base_dir, source=graph.source)
        graph = validate(graph, BuilderCatalog(self._registry, graph))
        self._graph = graph
        self.base_dir = graph.base_dir
        self.log = logger.bind(flow=self._name or graph.name)
        self._plan = Plan(graph, self._registry, self._make_units)
        self._plan.wire(self, self._sessions, self.ledgers)
        self._state = "built"
        return self

    def _make_units(self, node_id: str) -> list[FlowUnit]:
        assert self._graph is not None
        spec = self._graph.node(node_id)
        if spec.instance is not None:
            first = spec.instance
            return [first] + [copy.deepcopy(first) for _ in range(spec.replicas - 1)]
        if spec.block is not None:  # a workflow dynamic block: its class is this graph's
            cls: type[FlowUnit] = block_unit_class(spec.block)
        else:
            cls = self._registry.get(spec.unit)  # other nodes name registered units
        return [instantiate(cls, spec.params, node=spec.id) for _ in range(spec.replicas)]

    # -- running -------------------------------------------------------------------------

    async def run_async(self) -> Status:
        """Start the flow on the running asyncio loop; return once every node has opened.

        The flow runs in a root task of its own, so a failing node cannot cancel the
        caller's code. Use ``wait()`` to learn how it ended.

        Raises:
            FlowStateError: already started, or not on asyncio (use ``async with flow``).
            FlowFailed: a node failed to open.
        """
        if self._state == "created":
            self.build()
        self._require("run_async()", "built")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            msg = "run_async() needs asyncio; use 'async with flow' on other backends"
            raise FlowStateError(msg) from None
        self._prepare()
        assert self._started is not None
        assert self._done is not None
        self._root = loop.create_task(self._run(), name=f"actorflow-{self.name}")
        async with anyio.create_task_group() as tg:
            tg.start_soon(_set_when, self._done, self._started)
            await self._started.wait()
            tg.cancel_scope.cancel()
        if self._start_failed and self._failure is not None:
            raise self._failure
        return Status.SUCCESS

    async def wait(self, timeout: float | None = None) -> Status:
        """Wait for the flow to end; ``timeout`` seconds (0 or None: forever).

        Returns ``Status.STOP`` when it ended, ``Status.FAULT`` when nodes failed (the
        ``FlowFailed`` is in ``flow.exception``), ``Status.TIMEOUT`` when the timeout
        expired first, in which case the flow has been stopped.

        Raises:
            FlowStateError: the flow was never started.
        """
        if self._done is None:
            msg = "wait() called before the flow was started; call run_async() first"
            raise FlowStateError(msg)
        try:
            if not timeout:
                await self._done.wait()
            else:
                with anyio.move_on_after(timeout):
                    await self._done.wait()
                if not self._done.is_set():
                    await self.stop()
                    return Status.TIMEOUT
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._cancel_and_wait()
            raise
        return Status.FAULT if self._failure is not None else Status.STOP

    async def stop(self, grace: float | None = None) -> None:
        """Stop sources and inputs, drain for ``grace`` seconds, then cancel the rest.

        Harmless when the flow is not running or already stopping.
        """
        if self._done is None or self._done.is_set():
            return
        grace = self._stop_grace if grace is None else grace
        if self._state == "running":
            self._state = "draining"
            self.log.info("flow_stopping", grace_s=grace)
            for scope in self._source_scopes:
                scope.cancel()
            assert self._plan is not None
            for lanes in self._plan.input_lanes.values():
                for lane in lanes:
                    lane.close()
            if self._inputs_closed is not None:
                self._inputs_closed.set()
        with anyio.move_on_after(grace):
            await self._done.wait()
        if not self._done.is_set():
            await self._cancel_and_wait()

    def run(self) -> Status:
        """Run the flow to its end in this thread (a new event loop); Ctrl-C stops it.

        The first Ctrl-C stops gracefully (drain for the grace period); a second one
        cancels at once.

        Raises:
            FlowFailed: nodes failed.
        """
        return asyncio.run(self._run_sync())

    async def __aenter__(self) -> Flow:
        if self._state == "created":
            self.build()
        self._require("async with", "built")
        self._prepare()
        self._cm_tg = anyio.create_task_group()
        await self._cm_tg.__aenter__()
        try:
            await self._cm_tg.start(self._run)
        except BaseException as exc:
            await self._cm_tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        if self._start_failed and self._failure is not None:
            await self._cm_tg.__aexit__(None, None, None)
            raise self._failure
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        assert self._cm_tg is not None
        try:
            if exc is not None:
                with anyio.CancelScope(shield=True):
                    await self._cancel_and_wait()
            else:
                await self.stop()
        finally:
            await self._cm_tg.__aexit__(
                type(exc) if exc else None, exc, exc.__traceback__ if exc else None
            )
        if exc is None and self._failure is not None:
            raise self._failure

    # -- sessions --------------------------------------------------------------------

    def create_external_data_map(self) -> Session:
        """Open a session: a stream of its own through the running graph (ModelBox name)."""
        if self._state != "running":
            msg = (
                f"create_external_data_map() needs a running flow (state: {self._state}); "
                "call run_async() or enter 'async with flow' first"
            )
            raise FlowStateError(msg)
        assert self._plan is not None
        session_id = self._next_session
        self._next_session += 1
        ledger = self.ledgers[session_id] = SessionCounters()
        session = Session(
            session_id,
            self._plan.input_lanes,
            ledger,
            ends_expected=self._plan.session_ends,
            result_buffer=self._result_buffer,
            on_abort=self.aborted.add,
            on_finish=self._retire,
        )
        self._sessions[session_id] = session
        return session

    session = create_external_data_map

    # -- observing -------------------------------------------------------------------

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
        return self._state

    @property
    def exception(self) -> FlowFailed | None:
        """Why the flow failed, or ``None``."""
        return self._failure

    def statistics(self) -> FlowStatistics:
        """A snapshot of every node's, edge's and session's counters; cheap."""
        plan = self._plan
        nodes: dict[str, NodeStatistics] = {}
        edges: dict[str, EdgeStatistics] = {}
        if plan is not None:
            for node in plan.nodes.values():
                unit = plan.units[node.id][0]
                nodes[node.id] = node_statistics(node, unit, plan.is_source(node.id))
                edges.update(edge_statistics(node))
        sessions = {
            sid: SessionStatistics(sid, c.sent, c.delivered, c.dropped, c.failed, c.cancelled)
            for sid, c in (*self._retired, *self.ledgers.items())
        }
        end = self._stopped_at or time.monotonic()
        elapsed = end - self._started_at if self._started_at else 0.0
        return FlowStatistics(
            self.name,
            self._state,
            nodes,
            edges,
            sessions,
            elapsed,
            sessions_open=len(self._sessions),
            sessions_finished=self._sessions_finished,
        )

    def write_trace(self, path: str | Path) -> Path:
        """Save the recorded spans as a Chrome trace (Perfetto, ``chrome://tracing``).

        Raises:
            FlowStateError: the flow was created without ``trace=True``.
        """
        if self.tracer is None:
            msg = "write_trace() needs a flow created with Flow(..., trace=True)"
            raise FlowStateError(msg)
        return self.tracer.write(path)

    # -- the hooks nodes use (FlowHooks) ---------------------------------------------

    def session_counters(self, session: int) -> SessionCounters | None:
        """The ledger of ``session``."""
        return self.ledgers.get(session)

    def is_aborted(self, session: int) -> bool:
        """Whether ``session`` was aborted."""
        return session in self.aborted

    def expected_markers(self, origin: str, node: str) -> int:
        """How many lanes into ``node`` carry markers from ``origin``."""
        assert self._plan is not None
        return self._plan.expected(origin, node)

    def session_end_at_sink(self, session: int) -> None:
        """A sink node saw the end of ``session``."""
        target = self._sessions.get(session)
        if target is not None:
            target.end_arrived()

    def _retire(self, session_id: int) -> None:
        """A session reached its end: stop tracking it, keep its ledger among the recent ones.

        Nothing of a finished session is left in the graph (its end marker came after
        its last packet on every path), so this bounds memory in long-running servers.
        """
        if self._sessions.pop(session_id, None) is None:
            return
        self.aborted.discard(session_id)
        ledger = self.ledgers.pop(session_id, None)
        if ledger is not None:
            self._retired.append((session_id, ledger))
        self._sessions_finished += 1

    def failed_at_sink(self, node: str, marker: Failed) -> None:
        """A sink failed a packet: its session receives the error (port: the sink's id)."""
        target = self._sessions.get(marker.session)
        if target is not None:
            target.deliver_error(node, marker)

    def new_source_session(self) -> int:
        """Allocate a session id (and ledger) for a source's stream."""
        session_id = self._next_session
        self._next_session += 1
        self.ledgers[session_id] = SessionCounters()
        return session_id

    # -- internals -------------------------------------------------------------------

    def _require(self, call: str, *states: FlowState) -> None:
        if self._state not in states:
            hint = (
                "create a new Flow to run the graph again"
                if self._state in ("running", "draining", "stopped", "failed")
                else ""
            )
            msg = f"{call} is not allowed when the flow is {self._state}" + (
                f"; {hint}" if hint else ""
            )
            raise FlowStateError(msg)

    def _prepare(self) -> None:
        self._state = "running"
        self._started = anyio.Event()
        self._done = anyio.Event()
        self._inputs_closed = anyio.Event()

    async def _run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The flow's root: start actors sinks-first, run them, account for the end."""
        assert self._plan is not None
        assert self._started is not None
        assert self._done is not None
        plan = self._plan
        self._started_at = time.monotonic()
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await self._start_actors(tg, plan)
                self.log.info("flow_started", nodes=len(plan.nodes))
                self._started.set()
                task_status.started()
        except BaseException as exc:
            if _only_cancelled(exc):
                raise  # the caller cancelled us: propagate
            self._record_failure(exc)
        finally:
            self._start_failed = not self._started.is_set()
            self._finish(plan)
            self._started.set()
            self._done.set()
            with contextlib.suppress(RuntimeError):  # RuntimeError: already called
                task_status.started()  # a failed start still hands control back

    async def _start_actors(self, tg: TaskGroup, plan: Plan) -> None:
        for node_id in reversed(plan.order):
            if node_id not in plan.nodes or plan.is_source(node_id):
                continue
            node, units = plan.nodes[node_id], plan.units[node_id]
            supervision = Supervision(self._restart, self._clock)
            for replica, unit in enumerate(units):
                await tg.start(self._replica, node, unit, replica, supervision)
        if plan.input_lanes:
            tg.start_soon(self._hold_inputs_open)
        for node_id in plan.order:
            if plan.is_source(node_id):
                scope = anyio.CancelScope()
                self._source_scopes.append(scope)
                session = self.new_source_session()
                await tg.start(
                    self._source, plan.nodes[node_id], plan.units[node_id][0], session, scope
                )

    async def _replica(
        self,
        node: NodeRuntime,
        unit: FlowUnit,
        replica: int,
        supervision: Supervision,
        *,
        task_status: TaskStatus[None],
    ) -> None:
        await run_replica(
            node,
            unit,
            replica,
            supervision,
            close_timeout=self._close_timeout,
            task_status=task_status,
        )

    async def _source(
        self,
        node: NodeRuntime,
        unit: FlowUnit,
        session: int,
        scope: anyio.CancelScope,
        *,
        task_status: TaskStatus[None],
    ) -> None:
        await run_source(
            node,
            unit,
            session,
            close_timeout=self._close_timeout,
            stop_scope=scope,
            task_status=task_status,
        )

    async def _hold_inputs_open(self) -> None:
        """A graph with input nodes runs until ``stop()``, even with no unit to keep it up."""
        assert self._inputs_closed is not None
        await self._inputs_closed.wait()

    async def _cancel_and_wait(self) -> None:
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        if self._done is not None:
            with anyio.move_on_after(self._close_timeout + 1.0):
                await self._done.wait()

    def _record_failure(self, exc: BaseException) -> None:
        roots = _root_causes(exc)
        if roots:
            self._failure = FlowFailed(
                f"flow {self.name!r} failed: " + "; ".join(str(r) for r in roots), roots
            )
            self.log.error("flow_failed", causes=[str(r) for r in roots])

    def _finish(self, plan: Plan) -> None:
        """Account for leftovers, end every session, release threads."""
        for node in plan.nodes.values():
            plan.account_leftovers(node)
        for session in list(self._sessions.values()):
            session.finish()
        for node in plan.nodes.values():
            stuck = node.executor.shutdown(timeout=1.0)
            if stuck:
                self.log.warning("executor_threads_stuck", node=node.id, threads=stuck)
        self._stopped_at = time.monotonic()
        self._state = "failed" if self._failure is not None else "stopped"
        self.log.info(
            "flow_stopped",
            state=self._state,
            elapsed_s=round(self._stopped_at - self._started_at, 3),
        )

    async def _run_sync(self) -> Status:
        loop = asyncio.get_running_loop()
        presses = 0
        tasks: set[asyncio.Task[None]] = set()

        def on_sigint() -> None:
            nonlocal presses
            presses += 1
            if presses == 1:
                self.log.warning("flow_interrupted", action="stopping gracefully")
                tasks.add(loop.create_task(self.stop()))
            else:
                tasks.add(loop.create_task(self._cancel_and_wait()))

        in_main = threading.current_thread() is threading.main_thread()
        if in_main:
            loop.add_signal_handler(signal.SIGINT, on_sigint)
        try:
            await self.run_async()
            status = await self.wait()
        finally:
            if in_main:
                loop.remove_signal_handler(signal.SIGINT)
        if status is Status.FAULT and self._failure is not None:
            raise self._failure
        return status


def _root_causes(exc: BaseException) -> list[Exception]:
    """The NodeFailed errors (and unexpected errors) in ``exc``; never cancellations."""
    if isinstance(exc, BaseExceptionGroup):
        found: list[Exception] = []
        for inner in exc.exceptions:
            found.extend(_root_causes(inner))
        return found
    if isinstance(exc, Exception):
        return [exc]
    return []


def _only_cancelled(exc: BaseException) -> bool:
    return not _root_causes(exc)


async def _set_when(done: anyio.Event, target: anyio.Event) -> None:
    await done.wait()
    target.set()
