"""The parameter check: what fits an annotation, what does not, and what it cannot judge."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest

from actorflow.unit import Context, FlowUnit, Input, Packet, param_problems
from actorflow.unit._params import abstract_problem, fits


@pytest.mark.parametrize(
    ("value", "annotation", "verdict"),
    [
        (2, float, True),
        (2.5, float, True),
        ("two", float, False),
        (True, float, False),  # a bool is not a number here
        (True, int, False),
        (3, int, True),
        (3.0, int, False),
        (True, bool, True),
        (1, bool, False),
        ("x", str, True),
        (7, str, True),  # DOT reads "7" as a number; a str parameter takes it
        ("a.onnx", Path, True),
        (3, Path, False),
        ("cpu", Literal["auto", "cpu", "cuda"], True),
        ("gpu", Literal["auto", "cpu", "cuda"], False),
        (None, int | None, True),
        ("x", int | None, False),
        (0, str | int, True),
        ([1, 2], list[int], True),
        ([1, "a"], list[int], False),
        ((1, 2), Sequence[int], True),
        ("ab", list[str], False),
        ({"a": 1}, Mapping[str, int], True),
        ([1], dict[str, int], False),
        ("anything", Any, None),
        (object(), object, None),
    ],
)
def test_fits(value: Any, annotation: Any, verdict: bool | None) -> None:
    assert fits(value, annotation) is verdict


class Scale(FlowUnit):
    name = ""
    inp = Input("in")

    def __init__(self, *, factor: float = 2.0, mode: Literal["a", "b"] = "a", size: int) -> None:
        self.factor = factor

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit("out", packet)


def test_every_problem_names_the_parameter_and_the_fix() -> None:
    problems = param_problems(Scale, {"factor": "two", "mode": "c", "sise": 3})
    assert problems == [
        "unknown parameter 'sise'; did you mean 'size'? (accepted: factor, mode, size)",
        "parameter 'factor' expects float, got 'two' (str); write factor=2.0",
        "parameter 'mode' expects 'a' | 'b', got 'c' (str); write mode='a'",
        "missing required parameter 'size'",
    ]
    assert param_problems(Scale, {"factor": 3, "size": 1}) == []


def test_a_runtime_attribute_misspelt_is_suggested() -> None:
    (problem,) = param_problems(Scale, {"size": 1, "batch_sise": 8})
    assert "did you mean 'batch_size'?" in problem


def test_unresolvable_annotations_are_not_checked() -> None:
    class Odd(FlowUnit):
        def __init__(self, *, thing: NoSuchType = None) -> None:  # type: ignore[name-defined]  # noqa: F821
            pass

    assert param_problems(Odd, {"thing": 42}) == []


def test_abstract_units_are_named() -> None:
    class Nothing(FlowUnit):
        pass

    class Batches(FlowUnit):
        async def process_batch(self, ctx: Context, packets: list[Packet[Any]]) -> None:
            pass

    assert "Nothing defines no process()" in (abstract_problem(Nothing) or "")
    assert abstract_problem(Batches) is None
    assert abstract_problem(Scale) is None
