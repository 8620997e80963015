"""@flowunit and @source: units from functions, checked at decoration time."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import actorflow as af
from actorflow import UnitConfigError
from actorflow.testing import UnitRunner
from actorflow.unit import default_registry, instantiate

pytestmark = pytest.mark.anyio


async def test_async_function_unit_with_parameters() -> None:
    @af.flowunit(name="scale_test")
    async def scale(x: int, *, factor: int = 2) -> int:
        """Multiply by ``factor``."""
        return x * factor

    assert scale.__doc__ == "Multiply by ``factor``."
    assert default_registry.get("scale_test") is scale
    out = await UnitRunner(scale, factor=3).run({"in": [1, 2]})
    assert [p.data for p in out["out"]] == [3, 6]


async def test_returning_none_filters_the_packet() -> None:
    @af.flowunit(register=False)
    async def evens(x: int) -> int | None:
        return x if x % 2 == 0 else None

    out = await UnitRunner(evens()).run({"in": list(range(6))})
    assert [p.data for p in out["out"]] == [0, 2, 4]


async def test_several_inputs_and_outputs() -> None:
    @af.flowunit(inputs=["a", "b"], outputs=["sum", "diff"], register=False)
    def arith(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b, "diff": a - b}

    out = await UnitRunner(arith()).run({"a": [5, 7], "b": [1, 2]})
    assert [p.data for p in out["sum"]] == [6, 9]
    assert [p.data for p in out["diff"]] == [4, 5]


async def test_expand_emits_one_child_per_item() -> None:
    @af.flowunit(expand=True, register=False)
    async def letters(word: str) -> list[str]:
        return list(word)

    out = await UnitRunner(letters()).run({"in": ["ab", "c"]})
    assert [(p.seq, p.lineage, p.data) for p in out["out"]] == [
        (0, (0,), "a"),
        (0, (1,), "b"),
        (1, (0,), "c"),
    ]


def test_generators_are_refused_with_the_fix() -> None:
    with pytest.raises(TypeError, match="use @source for generators"):

        @af.flowunit
        async def gen(x: int):  # type: ignore[no-untyped-def]
            yield x


def test_source_needs_a_generator() -> None:
    with pytest.raises(TypeError, match=r"@source needs a generator function"):

        @af.source
        async def not_gen() -> int:
            return 1


def test_several_inputs_must_match_parameter_names() -> None:
    with pytest.raises(TypeError, match=r"must be the port names \['a', 'b'\], got \['x', 'y'\]"):

        @af.flowunit(inputs=["a", "b"], register=False)
        async def f(x: int, y: int) -> int:
            return x


def test_unknown_and_missing_parameters_are_named() -> None:
    @af.flowunit(register=False)
    async def f(x: int, *, threshold: float, mode: str = "fast") -> int:
        return x

    with pytest.raises(
        UnitConfigError,
        match=r"unknown parameter 'treshold'; did you mean "
        r"'threshold'\?.*missing required parameter "
        r"'threshold'",
    ):
        instantiate(f, {"treshold": 0.5}, node="det")


async def test_source_with_context_and_parameters() -> None:
    @af.source(register=False)
    async def ticks(ctx: af.Context, *, n: int = 3) -> Any:
        for i in range(n):
            yield (ctx.node, i)

    src = ticks(n=2)
    seen: list[Any] = []

    class Keep(af.FlowUnit):
        inp = af.Input("in")

        async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
            seen.append(packet.data)

    flow = af.Flow([src], [Keep()(src)])
    await flow.run_async()
    await flow.wait(5)
    assert seen == [("ticks", 0), ("ticks", 1)]


async def test_ctx_run_blocking_uses_the_node_thread() -> None:
    class Blocking(af.FlowUnit):
        inp = af.Input("in")
        out = af.Output("out")

        async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
            name = await ctx.run_blocking(lambda: threading.current_thread().name)
            await ctx.emit(self.out, packet.replace(name))

    out = await UnitRunner(Blocking()).run({"in": [1]})
    assert [p.data for p in out["out"]] == ["actorflow-unit-0"]


async def test_emit_on_an_unknown_port_names_the_ports() -> None:
    class Wrong(af.FlowUnit):
        inp = af.Input("in")
        out = af.Output("out")

        async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
            await ctx.emit("result", packet)

    runner = UnitRunner(Wrong())
    await runner.run({"in": [1]})
    (failure,) = runner.errors
    assert "has no output port 'result'; its outputs are: 'out'" in str(failure.error)


def test_one_port_may_be_named_by_a_plain_string() -> None:
    @af.source(outputs="frame", register=False)
    async def frames() -> Any:
        yield 1

    @af.flowunit(inputs="frame", outputs="boxes", register=False)
    async def detect(frame: Any) -> Any:
        return frame

    assert [p.name for p in frames.outputs] == ["frame"]
    assert ([p.name for p in detect.inputs], [p.name for p in detect.outputs]) == (
        ["frame"],
        ["boxes"],
    )
