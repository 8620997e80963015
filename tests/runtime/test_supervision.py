"""Supervision: failures fail packets; broken units restart and escalate past the intensity."""

from __future__ import annotations

import anyio
import pytest
from support.units import AddOne, Collect, FatalAddOne, Numbers

import actorflow as af
from actorflow.runtime import RestartPolicy

pytestmark = pytest.mark.anyio


class FakeClock:
    """A clock whose sleeps return at once and advance time (no real waiting)."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await anyio.lowlevel.checkpoint()


async def test_a_failing_packet_fails_alone_and_the_unit_goes_on() -> None:
    clock = FakeClock()
    unit = AddOne(fail_on=(3, 7))
    src = Numbers(count=10)
    sink = Collect()(unit(src))
    flow = af.Flow([src], [sink], clock=clock)
    await flow.run_async()
    assert await flow.wait(5) is af.Status.STOP
    assert sink.items == [1, 2, 3, 5, 6, 7, 9, 10]
    node = flow.statistics().nodes["add_one"]
    assert (node.processed, node.failed, node.restarts) == (8, 2, 0)
    assert (unit.opens, unit.closes) == (1, 1)
    assert clock.sleeps == []
    assert flow.statistics().balanced


async def test_a_stream_of_bad_inputs_never_fails_the_flow() -> None:
    """Failures in a row restart the unit (a fresh open may help) but never escalate."""
    clock = FakeClock()
    unit = AddOne(fail_on=tuple(range(100)))
    src = Numbers(count=100)
    policy = RestartPolicy(max_restarts=1, failures_before_restart=3)
    flow = af.Flow([src], [Collect()(unit(src))], restart=policy, clock=clock)
    await flow.run_async()
    assert await flow.wait(5) is af.Status.STOP
    node = flow.statistics().nodes["add_one"]
    assert (node.failed, node.restarts) == (100, 33)
    assert unit.opens == unit.closes == 34
    assert set(clock.sleeps) == {0.05}  # the initial backoff, never doubled
    assert flow.statistics().balanced


async def test_a_fatal_error_restarts_the_unit_with_doubling_backoff() -> None:
    clock = FakeClock()
    unit = FatalAddOne(fail_on=(3, 7))
    src = Numbers(count=10)
    sink = Collect()(unit(src))
    flow = af.Flow([src], [sink], clock=clock)
    await flow.run_async()
    assert await flow.wait(5) is af.Status.STOP
    assert sink.items == [1, 2, 3, 5, 6, 7, 9, 10]
    node = flow.statistics().nodes["fatal_add_one"]
    assert (node.processed, node.failed, node.restarts) == (8, 2, 2)
    assert (unit.opens, unit.closes) == (3, 3)  # close once per open, restarts included
    assert clock.sleeps == [0.05, 0.1]  # backoff doubles per recent restart
    assert flow.statistics().balanced


async def test_too_many_restarts_fail_the_flow_naming_node_and_root_cause() -> None:
    clock = FakeClock()
    src = Numbers(count=20)
    unit = FatalAddOne(fail_on=tuple(range(20)))
    flow = af.Flow([src], [Collect()(unit(src))], clock=clock)
    await flow.run_async()
    assert await flow.wait(5) is af.Status.FAULT
    failure = flow.exception
    assert isinstance(failure, af.FlowFailed)
    (cause,) = failure.exceptions  # collateral errors are not reported
    assert isinstance(cause, af.NodeFailed)
    assert (cause.node, cause.unit, cause.phase) == ("fatal_add_one", "FatalAddOne", "process")
    assert isinstance(cause.__cause__, ZeroDivisionError)
    assert flow.statistics().nodes["fatal_add_one"].restarts == 5
    assert flow.state == "failed"
    assert flow.statistics().balanced


async def test_a_reopen_that_fails_counts_towards_the_intensity() -> None:
    class ReopenFails(AddOne):
        async def open(self, ctx: af.Context) -> None:
            await super().open(ctx)
            if self.opens > 1:
                raise OSError("device gone")

    clock = FakeClock()
    src = Numbers(count=10)
    policy = RestartPolicy(max_restarts=2, failures_before_restart=1)
    flow = af.Flow([src], [Collect()(ReopenFails(fail_on=(0,))(src))], restart=policy, clock=clock)
    await flow.run_async()
    assert await flow.wait(5) is af.Status.FAULT
    (cause,) = flow.exception.exceptions  # type: ignore[union-attr]
    assert (cause.node, cause.phase) == ("reopen_fails", "open")
    assert isinstance(cause.__cause__, OSError)
    assert flow.statistics().balanced


async def test_restarts_spread_over_the_window_are_allowed_forever() -> None:
    """OTP's multiple_restarts: intensity 1 per 1 s, a crash every 2.1 s survives."""

    class SlowClock(FakeClock):
        async def sleep(self, seconds: float) -> None:
            self.t += 2.1  # each backoff also lets 2.1 s pass
            await anyio.lowlevel.checkpoint()

    src = Numbers(count=6)
    policy = RestartPolicy(max_restarts=1, window_s=1.0)
    flow = af.Flow(
        [src], [Collect()(FatalAddOne(fail_on=(1, 3, 5))(src))], restart=policy, clock=SlowClock()
    )
    await flow.run_async()
    assert await flow.wait(5) is af.Status.STOP
    assert flow.statistics().nodes["fatal_add_one"].restarts == 3


async def test_open_failure_fails_the_flow_and_close_is_not_called() -> None:
    class BadOpen(Collect):
        async def open(self, ctx: af.Context) -> None:
            self.events.append("open")
            raise OSError("no camera")

    src = Numbers(count=3)
    sink = BadOpen()(src)
    flow = af.Flow([src], [sink])
    with pytest.raises(af.FlowFailed) as info:
        await flow.run_async()
    (cause,) = info.value.exceptions
    assert (cause.node, cause.phase) == ("bad_open", "open")
    assert sink.events == ["open"]  # no close after a failed open


async def test_sinks_open_before_sources_and_everything_closes_once() -> None:
    order: list[str] = []

    class Tracing(AddOne):
        async def open(self, ctx: af.Context) -> None:
            order.append(f"open {ctx.node}")

        async def close(self, ctx: af.Context) -> None:
            order.append(f"close {ctx.node}")

    class Source(Numbers):
        async def open(self, ctx: af.Context) -> None:
            order.append("open source")

    src = Source(count=2)
    a = Tracing().options(id="a")(src)
    b = Tracing().options(id="b")(a)
    sink = Collect()(b)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    await flow.wait(5)
    assert order[:3] == ["open b", "open a", "open source"]
    assert sorted(order[3:]) == ["close a", "close b"]
    assert sink.events == ["open", "close"]


async def test_close_failure_at_the_end_is_reported() -> None:
    class BadClose(Collect):
        async def close(self, ctx: af.Context) -> None:
            raise RuntimeError("disk full")

    src = Numbers(count=2)
    flow = af.Flow([src], [BadClose()(src)])
    await flow.run_async()
    assert await flow.wait(5) is af.Status.FAULT
    (cause,) = flow.exception.exceptions  # type: ignore[union-attr]
    assert (cause.node, cause.phase) == ("bad_close", "close")


async def test_source_failure_names_the_source() -> None:
    class Broken(Numbers):
        async def generate(self, ctx: af.Context):  # type: ignore[override]
            yield 1
            raise ConnectionError("stream lost")

    src = Broken()
    flow = af.Flow([src], [Collect()(src)])
    await flow.run_async()
    assert await flow.wait(5) is af.Status.FAULT
    (cause,) = flow.exception.exceptions  # type: ignore[union-attr]
    assert (cause.node, cause.phase) == ("broken", "source")
    assert isinstance(cause.__cause__, ConnectionError)
