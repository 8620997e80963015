"""Graph validation: every problem listed at once, each naming the thing and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from actorflow import FlowUnit, GraphCycleError, GraphValidationError, Input, Output
from actorflow.graph import graph_from_dict, validate
from actorflow.unit import Context, Packet, Registry


class Resize(FlowUnit):
    frame = Input("frame")
    out = Output("frame")

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit(self.out, packet)


class Blend(FlowUnit):
    image = Input("image")
    mask = Input("mask")
    hint = Input("hint", optional=True)
    out = Output("out")
    extra = Output("extra")

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit(self.out, packet)


def registry() -> Registry:
    reg = Registry()
    reg.register(Resize, "resize")
    reg.register(Blend, "blend")
    return reg


def check(doc: dict[str, Any]) -> Any:
    return validate(graph_from_dict(doc, source="g.toml"), registry())


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param(
            {
                "nodes": {"a": {"unit": "resize"}, "b": {"unit": "resize"}},
                "edges": ["a -> b", "b -> a"],
            },
            r"cycle: a -> b -> a|cycle: b -> a -> b",
            id="cycle",
        ),
        pytest.param(
            {"nodes": {"a": {"unit": "resise"}}, "edges": []},
            r"unknown unit 'resise' for node 'a'; did you mean 'resize'\?",
            id="unknown-unit",
        ),
        pytest.param(
            {"nodes": {"i": {"type": "input"}, "a": {"unit": "resize"}}, "edges": ["i -> a:image"]},
            r"node 'a' \(resize\) has no input port 'image'; its inputs are: 'frame'",
            id="bad-port",
        ),
        pytest.param(
            {"nodes": {"i": {"type": "input"}, "a": {"unit": "resize"}}, "edges": ["i -> b"]},
            r"edge 'i -> b' refers to node 'b', which is not declared",
            id="dangling-edge",
        ),
        pytest.param(
            {"nodes": {"i": {"type": "input"}, "b": {"unit": "blend"}}, "edges": ["i -> b:image"]},
            r"node 'b' \(blend\): input port 'mask' is not connected",
            id="unconnected",
        ),
        pytest.param(
            {
                "nodes": {"i": {"type": "input"}, "b": {"unit": "blend"}, "o": {"type": "output"}},
                "edges": ["i -> b:image", "i -> b:mask", "b -> o"],
            },
            r"has several output ports \('out', 'extra'\); name one, as in 'b:out'",
            id="ambiguous-port",
        ),
        pytest.param(
            {
                "nodes": {"i": {"type": "input"}, "a": {"unit": "resize"}},
                "edges": [{"from": "i", "to": "a", "policy": "drop_olds"}],
            },
            r"unknown policy 'drop_olds'; did you mean 'drop_oldest'\?",
            id="policy",
        ),
        pytest.param(
            {
                "nodes": {"i": {"type": "input"}, "a": {"unit": "resize", "replicas": 0}},
                "edges": ["i -> a"],
            },
            r"node 'a': replicas must be an integer >= 1, got 0",
            id="replicas",
        ),
        pytest.param(
            {"nodes": {"o": {"type": "output"}}, "edges": []},
            r"output node 'o' has no incoming edge",
            id="lonely-output",
        ),
    ],
)
def test_invalid_graphs_are_rejected_with_a_clear_message(
    doc: dict[str, Any], message: str
) -> None:
    with pytest.raises(GraphValidationError, match=message):
        check(doc)


def test_every_problem_is_listed_at_once() -> None:
    doc = {
        "nodes": {"i": {"type": "input"}, "a": {"unit": "resise"}, "b": {"unit": "blend"}},
        "edges": ["i -> b:image", "i -> zz"],
    }
    with pytest.raises(GraphValidationError) as info:
        check(doc)
    assert len(info.value.problems) == 3
    assert str(info.value).startswith("g.toml: invalid graph (3 problems):")


def test_a_cycle_error_is_a_value_error_naming_the_cycle() -> None:
    doc = {
        "nodes": {"a": {"unit": "resize"}, "b": {"unit": "resize"}, "c": {"unit": "resize"}},
        "edges": ["a -> b", "b -> c", "c -> a"],
    }
    with pytest.raises(ValueError, match="cycle") as info:
        check(doc)
    assert isinstance(info.value, GraphCycleError)
    assert set(info.value.cycle) == {"a", "b", "c"}
    assert info.value.cycle[0] == info.value.cycle[-1]


def test_valid_graph_comes_back_in_topological_order_with_ports_resolved() -> None:
    doc = {
        "nodes": {"o": {"type": "output"}, "a": {"unit": "resize"}, "i": {"type": "input"}},
        "edges": ["a -> o", "i -> a"],
    }
    graph = check(doc)
    assert [n.id for n in graph.nodes] == ["i", "a", "o"]
    assert [str(e) for e in graph.edges] == ["a:frame -> o:in", "i:out -> a:frame"]


def test_attribute_values_from_text_formats_are_converted() -> None:
    graph = graph_from_dict(
        {
            "nodes": {
                "a": {
                    "unit": "resize",
                    "batch_size": "8",
                    "queue_size": 4.0,
                    "batch_timeout": "0.01",
                }
            },
            "edges": [],
        }
    )
    node = graph.node("a")
    assert (node.batch_size, node.queue_size, node.batch_timeout) == (8, 4, 0.01)


def test_bad_attribute_values_are_listed() -> None:
    with pytest.raises(GraphValidationError) as info:
        graph_from_dict(
            {
                "nodes": {"a": {"unit": "resize", "batch_size": "eight", "batch_timeout": "soon"}},
                "edges": [],
            }
        )
    assert info.value.problems == (
        "node 'a': batch_size must be an integer, got 'eight'",
        "node 'a': batch_timeout must be a number of seconds, got 'soon'",
    )
