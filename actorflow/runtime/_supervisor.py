"""``Supervisor``: owns one running flow — its actors, sessions, ledgers, stop and restarts.

``Flow`` is the facade users call; everything that decides how a flow lives and ends
is here, in one place:

* **Start**: actors start sinks first, sources last (``tg.start`` returns once a unit
  opened), each in a task named ``actorflow-<node>-<replica>``.
* **Restarts** (one-for-one, per node): see ``_process`` and ``_supervision``.
* **Stop** (``stop(grace)``): sources stop and inputs close, what is in flight drains
  for up to ``grace`` seconds, then every actor is cancelled and each unit's
  ``close()`` gets what is left of ``close_timeout``. It returns within
  ``grace + close_timeout + CANCEL_SLACK`` with the flow in a final state, whatever the
  units do: thread calls still blocked are abandoned (counted and named), and an
  actor that ignores cancellation is reported (``flow_stop_overran``) and left behind.
* **Wait** (``wait(timeout)``): when the timeout expires, the flow is force-stopped:
  cancelled at once, closes bounded by ``min(close_timeout, stop_grace)``, so it returns
  within ``timeout + stop_grace + CANCEL_SLACK``.
* **Cancellation** of the task awaiting ``stop()`` or ``wait()`` cancels the flow and
  still ends in a final state.
* **End**: leftovers in mailboxes, joins and re-order buffers are counted as cancelled,
  every session's stream ends, executor threads are told to finish, and the ledgers
  close (``FlowStatistics.balanced``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from actorflow.errors import FlowFailed, FlowStateError
from actorflow.graph import Graph
from actorflow.runtime._actor import run_replica, run_source
from actorflow.runtime._markers import Failed
from actorflow.runtime._plan import Plan
from actorflow.runtime._session import Session
from actorflow.runtime._sessions import SessionTable
from actorflow.runtime._stats import FlowState, FlowStatistics, SessionCounters, flow_statistics
from actorflow.runtime._status import Status
from actorflow.runtime._streams import Stream, StreamTable, stream_meta
from actorflow.runtime._supervision import Clock, RestartPolicy, Supervision, root_causes
from actorflow.runtime._trace import Tracer
from actorflow.runtime._watchdog import LoopWatchdog, start_watchdog
from actorflow.unit import FlowUnit, SourceUnit

CANCEL_SLACK = 0.1
"""Seconds allowed, past the close budget, for cancelled actors to unwind."""


class Supervisor:
    """Runs one built graph; see the module docstring. Implements ``FlowHooks``."""

    def __init__(
        self,
        graph: Graph,
        make_units: Callable[[str], list[FlowUnit]],
        *,
        name: str,
        restart: RestartPolicy,
        stop_grace: float,
        close_timeout: float,
        result_buffer: int,
        clock: Clock,
        tracer: Tracer | None,
        watchdog_threshold: float | None,
        log: Any,
    ) -> None:
        self.name, self.log, self.tracer = name, log, tracer
        self.base_dir: Path = graph.base_dir
        self.restart, self.clock = restart, clock
        self.stop_grace, self.close_timeout = stop_grace, close_timeout
        self.result_buffer = result_buffer
        self.watchdog_threshold = watchdog_threshold
        self.sessions = SessionTable()
        self.streams = StreamTable()
        self.ledgers: dict[int, SessionCounters] = self.sessions.ledgers
        self.plan = Plan(graph, make_units)
        self.plan.wire(self, self.sessions.open, self.ledgers)
        self.state: FlowState = "built"
        self.failure: FlowFailed | None = None
        self.start_failed = False
        self.started: anyio.Event | None = None
        self.done: anyio.Event | None = None
        self._inputs_closed: anyio.Event | None = None
        self._source_scopes: list[anyio.CancelScope] = []
        self._tg: TaskGroup | None = None
        self.root: asyncio.Task[None] | None = None
        """The root task when started with ``run_async()``."""
        self._close_by: float | None = None
        self._task_nodes: dict[str, str] = {}
        self._watchdog: LoopWatchdog | None = None
        self._finished = False
        self._started_at = 0.0
        self._stopped_at = 0.0

    # -- FlowHooks -------------------------------------------------------------------

    @property
    def aborted(self) -> set[int]:
        """Ids of aborted sessions."""
        return self.sessions.aborted

    def session_counters(self, session: int) -> SessionCounters | None:
        """The ledger of ``session``."""
        return self.ledgers.get(session)

    def expected_markers(self, origin: str, node: str) -> int:
        """How many lanes into ``node`` carry markers from ``origin``."""
        return self.plan.expected(origin, node)

    def session_end_at_sink(self, session: int) -> None:
        """A sink node saw the end of ``session``."""
        self.sessions.end_arrived(session)

    def failed_at_sink(self, node: str, marker: Failed) -> None:
        """A sink failed a packet: its session receives the error."""
        self.sessions.deliver_error(node, marker)

    def close_budget(self) -> float:
        """Seconds a ``close()`` may take now: ``close_timeout``, less once stopping."""
        if self._close_by is None:
            return self.close_timeout
        return max(0.0, min(self.close_timeout, self._close_by - time.monotonic()))

    # -- sessions --------------------------------------------------------------------

    def open_session(self, meta: Mapping[str, Any] | None = None) -> Session:
        """Open an external session (the flow must be running)."""
        return self.sessions.open_session(
            self.plan.input_lanes,
            self.plan.input_checks,
            ends_expected=self.plan.session_ends,
            result_buffer=self.result_buffer,
            meta=meta,
        )

    def add_stream(
        self, unit: SourceUnit, port: str | None, stream_id: str | None, collect: bool
    ) -> Stream:
        """Start ``unit`` feeding input node ``port`` through a session of its own."""
        if self.state != "running" or self._tg is None:
            msg = f"add_source() needs a running flow (state: {self.state})"
            raise FlowStateError(msg)
        port = self.streams.input_for(port, list(self.plan.input_lanes))
        sid = self.streams.new_id(stream_id)
        stream = Stream(sid, unit, port, self.open_session(stream_meta(sid)))
        self.streams.start(
            self._tg,
            stream,
            collect=collect,
            base_dir=self.base_dir,
            log=self.log,
            close_budget=self.close_budget,
        )
        self.log.info("stream_added", stream=sid, unit=unit.name, input=port)
        return stream

    # -- lifecycle -------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the lifecycle events (on the event loop that will run the flow)."""
        self.state = "running"
        self.started = anyio.Event()
        self.done = anyio.Event()
        self._inputs_closed = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The flow's root: start actors sinks-first, run them, account for the end."""
        assert self.started is not None
        assert self.done is not None
        self._started_at = time.monotonic()
        if self.watchdog_threshold is not None:
            name = f"actorflow-watchdog-{self.name}"
            self._watchdog = start_watchdog(
                self.watchdog_threshold, self.log, self._task_nodes.get, name
            )
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await self._start_actors(tg)
                self.log.info("flow_started", nodes=len(self.plan.nodes))
                self.started.set()
                task_status.started()
        except BaseException as exc:
            if not root_causes(exc):
                raise  # the caller cancelled us: propagate
            self._record_failure(exc)
        finally:
            self.start_failed = not self.started.is_set()
            self._finish()
            self.started.set()
            self.done.set()
            with contextlib.suppress(RuntimeError):  # RuntimeError: already called
                task_status.started()  # a failed start still hands control back

    async def join(self) -> Status:
        """Wait for the end without affecting the flow."""
        assert self.done is not None
        await self.done.wait()
        return Status.FAULT if self.failure is not None else Status.STOP

    async def stop(self, grace: float | None = None) -> None:
        """Stop sources and inputs, drain for ``grace`` seconds, then cancel the rest."""
        done = self.done
        if done is None or done.is_set():
            return
        grace = self.stop_grace if grace is None else grace
        try:
            self._begin_draining(grace)
            with anyio.move_on_after(grace):
                await done.wait()
            if not done.is_set():
                await self.cancel(self.close_timeout)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self.cancel(self.close_timeout)
            raise

    async def wait(self, timeout: float | None) -> Status:
        """Wait for the end; on ``timeout`` force-stop and return ``Status.TIMEOUT``."""
        done = self.done
        assert done is not None
        try:
            if not timeout:
                await done.wait()
            else:
                with anyio.move_on_after(timeout):
                    await done.wait()
                if not done.is_set():
                    self._begin_draining(0.0)
                    await self.cancel(min(self.close_timeout, self.stop_grace))
                    return Status.TIMEOUT
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self.cancel(self.close_timeout)
            raise
        return Status.FAULT if self.failure is not None else Status.STOP

    async def cancel(self, close_budget: float) -> None:
        """Cancel every actor now; closes get at most ``close_budget`` seconds.

        Returns within ``close_budget + CANCEL_SLACK`` with the flow in a final state.
        """
        done = self.done
        if done is None or done.is_set():
            return
        close_by = time.monotonic() + close_budget
        self._close_by = close_by if self._close_by is None else min(self._close_by, close_by)
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        with anyio.move_on_after(close_budget + CANCEL_SLACK):
            await done.wait()
        if not done.is_set():
            stuck = [n.id for n in self.plan.nodes.values() if n.live_replicas > 0]
            self.log.error("flow_stop_overran", nodes=stuck, close_budget_s=close_budget)
            self._finish()
            done.set()

    def _begin_draining(self, grace: float) -> None:
        if self.state != "running":
            return
        self.state = "draining"
        self.log.info("flow_stopping", grace_s=grace)
        self.streams.stop_all()
        for scope in self._source_scopes:
            scope.cancel()
        for lanes in self.plan.input_lanes.values():
            for lane in lanes:
                lane.close()
        if self._inputs_closed is not None:
            self._inputs_closed.set()

    async def _start_actors(self, tg: TaskGroup) -> None:
        plan = self.plan
        for node_id in reversed(plan.order):
            if node_id not in plan.nodes or plan.is_source(node_id):
                continue
            node, units = plan.nodes[node_id], plan.units[node_id]
            supervision = Supervision(self.restart, self.clock)
            for replica, unit in enumerate(units):
                name = self._task_name(node_id, replica)
                await tg.start(run_replica, node, unit, replica, supervision, name=name)
        if plan.input_lanes:
            tg.start_soon(self._hold_inputs_open, name=f"actorflow-{self.name}-inputs")
        for node_id in plan.order:
            if plan.is_source(node_id):
                scope = anyio.CancelScope()
                self._source_scopes.append(scope)
                session = self.sessions.new_ledger()
                source = functools.partial(run_source, stop_scope=scope)
                unit = plan.units[node_id][0]
                name = self._task_name(node_id, 0)
                await tg.start(source, plan.nodes[node_id], unit, session, name=name)

    def _task_name(self, node: str, replica: int) -> str:
        name = f"actorflow-{node}-{replica}"
        self._task_nodes[name] = node
        return name

    async def _hold_inputs_open(self) -> None:
        """A graph with input nodes runs until ``stop()``, even with no unit to keep it up."""
        assert self._inputs_closed is not None
        await self._inputs_closed.wait()

    def _record_failure(self, exc: BaseException) -> None:
        roots = root_causes(exc)
        if roots:
            self.failure = FlowFailed(
                f"flow {self.name!r} failed: " + "; ".join(str(r) for r in roots), roots
            )
            self.log.error("flow_failed", causes=[str(r) for r in roots])

    def _finish(self) -> None:
        """Account for leftovers, end every session, release threads. Runs once."""
        if self._finished:
            return
        self._finished = True
        if self._watchdog is not None:
            self._watchdog.stop()
        plan = self.plan
        for node in plan.nodes.values():
            plan.account_leftovers(node)
        self.sessions.finish_all()
        for node in plan.nodes.values():
            busy = node.executor.shutdown()
            if busy:
                self.log.warning("executor_threads_busy", node=node.id, threads=busy)
        self._stopped_at = time.monotonic()
        self.state = "failed" if self.failure is not None else "stopped"
        self.log.info(
            "flow_stopped",
            state=self.state,
            elapsed_s=round(self._stopped_at - self._started_at, 3),
        )

    # -- observing -------------------------------------------------------------------

    def statistics(self) -> FlowStatistics:
        """A snapshot of every node's, edge's and session's counters; cheap."""
        end = self._stopped_at or time.monotonic()
        return flow_statistics(
            self.name,
            self.state,
            self.plan,
            self.sessions,
            elapsed=end - self._started_at if self._started_at else 0.0,
            loop_blocked=self._watchdog.episodes if self._watchdog is not None else 0,
            streams=self.streams.statistics(),
        )
