"""A Hypothesis state machine over a flow's lifecycle (issue 9).

Each run builds one flow with an async unit that fails, filters and declares a fatal
error, a plain-``def`` unit that blocks in its thread (on an Event, with a timeout), and
a finite source into a sink; then it runs, opens sessions (read or not), sends, closes,
aborts, stops, waits with timeouts and cancels the task awaiting ``wait()``, in any
order. After every step that ends the flow, and at the end of every run:

* the flow is in a final state (``stopped`` or ``failed``);
* every ledger is closed, per node and per session;
* no task the runtime started is left on the loop;
* no ``actorflow-*`` thread that would keep the process alive (non-daemon) exists.

The flow runs on an event loop of its own (an anyio blocking portal, one per run), so
it keeps running between steps as it would in an application. No step asserts a time.

The input also feeds an ``http_sink`` posting to a real aiohttp server on 127.0.0.1
that misbehaves as Hypothesis draws it (answers, ``503`` with ``Retry-After: 3600``,
never answers, drops the connection, ``500``); at the end every item the sink accepted
was delivered or dead-lettered, none is pending.
"""

from __future__ import annotations

import zlib
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support.lifecycle import (
    FINAL_STATES,
    FakeClock,
    Gate,
    non_daemon_actorflow_threads,
    settled_tasks,
)
from support.servers import Scripted, serve
from support.units import Collect, Numbers

import actorflow as af
from actorflow.unit import FunctionUnit, Registry

HANG_GUARD_S = 20.0
"""Only a guard against a step hanging forever; never a bound asserted."""

KINDS = ("ok", "ok", "bad", "none", "block", "fatal")

SERVER_ACTIONS = ("ok", "ok", "503 3600", "hang", "vanish", "500")
"""How the webhook server answers an attempt (``support.servers.Scripted``)."""
"""What a sent item asks the units to do: pass, fail, be filtered, block, break the unit."""


class DeviceLost(RuntimeError):
    """The error ``Mixed`` declares fatal."""


class Mixed(af.FlowUnit):
    """Async unit: passes, fails (``bad``), filters (``none``) or breaks (``fatal``)."""

    inp = af.Input("in")
    out = af.Output("out")
    fatal_errors = (DeviceLost,)

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        kind = packet.data
        if kind == "bad":
            raise ValueError("bad item")
        if kind == "fatal":
            raise DeviceLost("device lost")
        if kind != "none":
            await ctx.emit(self.out, packet)


def blocking(gate: Gate) -> type[FunctionUnit]:
    """Plain ``def``: blocks its thread on ``gate`` for ``block``, fails on ``bad``."""

    @af.flowunit(register=False, name="blocking")
    def blocking(kind: Any) -> Any:
        if kind == "block":
            gate.block()
        if kind == "bad":
            raise ValueError("bad item")
        return kind

    return blocking


def graph(replicas: int, source_items: int, hook: str) -> dict[str, Any]:
    """``input`` feeds both units (each to its own output) and a webhook; a source
    feeds a sink."""
    return {
        "name": "machine",
        "nodes": {
            "input": {"type": "input"},
            "mixed": {"unit": "mixed", "queue_size": 16},
            "blocking": {"unit": "blocking", "replicas": replicas, "queue_size": 16},
            "out_mixed": {"type": "output"},
            "out_blocking": {"type": "output"},
            "src": {"unit": "numbers", "count": source_items},
            "sink": {"unit": "collect"},
            "post": {
                "unit": "http_sink",
                "url": hook,
                "timeout": 0.2,
                "connect_timeout": 0.2,
                "max_attempts": 2,
                "backoff_base": 0.01,
                "close_timeout": 0.2,
                "allow": "127.0.0.1",
            },
        },
        "edges": [
            "input -> post",
            "input -> mixed",
            "input -> blocking",
            "mixed -> out_mixed",
            "blocking -> out_blocking",
            "src -> sink",
        ],
    }


@dataclass
class SessionModel:
    session: af.Session
    reader: Future[None] | None
    closed: bool = False
    aborted: bool = False


async def drain(session: af.Session) -> None:
    async for _ in session:
        pass


class LifecycleMachine(RuleBasedStateMachine):
    sessions = Bundle("sessions")

    def __init__(self) -> None:
        super().__init__()
        self._portal_cm = start_blocking_portal("asyncio")
        self.portal: BlockingPortal = self._portal_cm.__enter__()
        self.gate = Gate(timeout=60.0)
        self.flow: af.Flow | None = None
        self.server: Any = None
        self.models: list[SessionModel] = []
        self.fatal_sent = 0

    # -- helpers ---------------------------------------------------------------------

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the flow's loop, with a hang guard."""

        async def guarded() -> Any:
            with anyio.fail_after(HANG_GUARD_S):
                return await fn(*args)

        return self.portal.call(guarded)

    @property
    def state(self) -> str:
        assert self.flow is not None
        return self.flow.state

    def assert_final(self, after: str) -> None:
        assert self.state in FINAL_STATES, f"after {after}: the flow is {self.state}"

    # -- rules -------------------------------------------------------------------------

    @initialize(
        target=sessions,
        replicas=st.integers(1, 2),
        grace=st.sampled_from([0.0, 0.05, 0.1]),
        start=st.sampled_from([True, True, True, False]),
        read=st.booleans(),
        answers=st.lists(st.sampled_from(SERVER_ACTIONS), min_size=1, max_size=6),
    )
    def begin(
        self, replicas: int, grace: float, start: bool, read: bool, answers: list[str]
    ) -> Any:
        """Build the flow; usually also run it and open a first session."""
        self.start_server(answers)
        self.build(replicas, grace)
        if not start:
            return multiple()
        self.run()
        return self.open_session(read)

    def start_server(self, answers: list[str]) -> None:
        """The webhook: the n-th attempt of any item gets ``answers[n % len]``."""
        scripted = Scripted(lambda key, n: answers[(zlib.crc32(key.encode()) + n) % len(answers)])
        self.server = self.portal.call(serve, scripted.handle)

    def build(self, replicas: int, grace: float) -> None:
        from actorflow.flowunits.sinks.http import HttpSink

        registry = Registry()
        registry.register(HttpSink, "http_sink")
        registry.register(Mixed, "mixed")
        registry.register(blocking(self.gate), "blocking")
        registry.register(Numbers, "numbers")
        registry.register(Collect, "collect")
        self.flow = af.Flow(
            graph(replicas, source_items=20, hook=str(self.server.make_url("/hook"))),
            registry=registry,
            stop_grace=grace,
            close_timeout=0.2,
            clock=FakeClock(),
        )
        self.flow.build()

    @precondition(lambda self: self.state == "built")
    @rule()
    def run(self) -> None:
        assert self.flow is not None
        self.call(self.flow.run_async)

    @precondition(lambda self: self.state == "running")
    @rule(target=sessions, read=st.booleans())
    def open_session(self, read: bool) -> SessionModel:
        assert self.flow is not None

        async def open_() -> af.Session:
            assert self.flow is not None
            return self.flow.session()

        session = self.call(open_)
        reader = self.portal.start_task_soon(drain, session) if read else None
        model = SessionModel(session, reader)
        self.models.append(model)
        return model

    @rule(model=sessions, kind=st.sampled_from(KINDS))
    def send(self, model: SessionModel, kind: str) -> None:
        async def send_() -> None:
            try:
                model.session.send_nowait("input", kind)
                self.fatal_sent += kind == "fatal"
            except anyio.WouldBlock:
                pass  # full: admission control said no, nothing was sent
            except af.SessionClosed:
                assert model.closed or model.aborted or self.state != "running", (
                    "an open session of a running flow refused an item"
                )

        self.call(send_)

    @rule(model=sessions)
    def close(self, model: SessionModel) -> None:
        model.closed = True
        self.call(model.session.close)

    @rule(model=sessions)
    def abort(self, model: SessionModel) -> None:
        model.aborted = True
        self.call(model.session.abort)

    @precondition(lambda self: self.state != "created")
    @rule()
    def stop(self) -> None:
        assert self.flow is not None
        started = self.state != "built"
        self.call(self.flow.stop)
        if started:
            self.assert_final("stop()")

    @precondition(lambda self: self.state not in ("created", "built"))
    @rule(timeout=st.sampled_from([0.001, 0.02, 0.05]))
    def wait_with_timeout(self, timeout: float) -> None:
        assert self.flow is not None
        status = self.call(self.flow.wait, timeout)
        assert status in (af.Status.STOP, af.Status.FAULT, af.Status.TIMEOUT)
        self.assert_final(f"wait({timeout}) -> {status.name}")

    @precondition(lambda self: self.state not in ("created", "built"))
    @rule()
    def cancel_the_waiter(self) -> None:
        flow = self.flow
        assert flow is not None

        async def cancel() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(flow.wait)
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()

        self.call(cancel)
        self.assert_final("cancelling the task awaiting wait()")

    @rule()
    def unblock(self) -> None:
        self.gate.open()  # blocked thread calls return; later ones do not block

    # -- checks ----------------------------------------------------------------------

    @invariant()
    def only_broken_units_fail_a_flow(self) -> None:
        if self.flow is not None and self.state == "failed":
            assert self.fatal_sent > 5, f"the flow failed: {self.flow.exception}"

    @invariant()
    def ended_flows_have_closed_ledgers(self) -> None:
        if self.flow is None or self.state not in FINAL_STATES:
            return
        self.check_closed()

    def check_closed(self) -> None:
        assert self.flow is not None

        async def snapshot() -> af.FlowStatistics:
            assert self.flow is not None
            return self.flow.statistics()

        stats = self.call(snapshot)
        for node in stats.nodes.values():
            assert node.in_flight == 0, node
        for ledger in stats.sessions.values():
            assert ledger.balanced, ledger
        sink = stats.nodes["post"].info["sink"]
        assert sink["pending"] == 0, sink
        assert sink["accepted"] == sink["delivered"] + sink["dead_lettered"], sink
        assert not self.call(settled_tasks), "runtime tasks outlived the flow"
        assert not non_daemon_actorflow_threads()

    def teardown(self) -> None:
        try:
            if self.flow is not None and self.state not in ("created", "built"):
                if self.state not in FINAL_STATES:
                    self.call(self.flow.stop)
                self.assert_final("the last stop()")
                self.check_closed()
        finally:
            self.gate.open()
            for model in self.models:
                if model.reader is not None:
                    model.reader.cancel()
            if self.server is not None:
                self.portal.call(self.server.close)
            self._portal_cm.__exit__(None, None, None)


def test_every_lifecycle_ends_final_with_closed_ledgers_and_nothing_left() -> None:
    run_state_machine_as_test(
        LifecycleMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


@pytest.mark.parametrize("kind", ["block", "fatal", "bad"])
def test_one_fixed_lifecycle_per_kind(kind: str) -> None:
    """The machine's steps in one fixed order, so a failure here reads plainly."""
    machine = LifecycleMachine()
    try:
        machine.start_server(["ok", "503 3600", "ok", "hang"])
        machine.build(replicas=2, grace=0.05)
        machine.run()
        model = machine.open_session(read=True)
        for _ in range(8):
            machine.send(model, kind)
        machine.send(model, "ok")
        if kind != "block":  # every item answered (or the flow ended) before stopping
            machine.close(model)
            assert model.reader is not None
            model.reader.result(timeout=HANG_GUARD_S)
        machine.only_broken_units_fail_a_flow()
        machine.stop()
        machine.only_broken_units_fail_a_flow()
        machine.ended_flows_have_closed_ledgers()
    finally:
        machine.teardown()
