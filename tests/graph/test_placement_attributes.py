"""Ray placement attributes (``placement``, ``replicas``, ``resources``, ``window``) in
every graph form, with errors that name the node and the fix. No Ray needed here."""

from __future__ import annotations

import json
from typing import Any

import pytest

import actorflow as af
from actorflow.errors import GraphValidationError
from actorflow.graph import load_graph
from actorflow.graph._formats import to_dot
from actorflow.runtime._builder import graph_from_units

TOML = """\
[graph]
format = "graphviz"
graphconf = '''digraph remote {
  input[type=input]
  det[flowunit=detector, placement=ray, replicas=4, window=3,
      resources="num_cpus=0.5, num_gpus=0.25, node_a=1", threshold=0.5]
  output[type=output]
  input -> det -> output
}'''
"""


def _det(graph: af.Graph) -> Any:
    return graph.node("det")


def test_dot_in_toml_reads_every_placement_attribute() -> None:
    det = _det(load_graph(TOML, format="toml"))
    assert (det.placement, det.replicas, det.window) == ("ray", 4, 3)
    assert dict(det.resources) == {"num_cpus": 0.5, "num_gpus": 0.25, "node_a": 1.0}
    assert dict(det.params) == {"threshold": 0.5}  # placement attributes are not parameters


def test_json_and_dict_forms_take_a_resources_mapping() -> None:
    doc = {
        "nodes": {
            "input": {"type": "input"},
            "det": {"flowunit": "detector", "placement": "ray", "resources": {"num_gpus": 1}},
            "output": {"type": "output"},
        },
        "edges": ["input -> det", "det -> output"],
    }
    for graph in (load_graph(doc), load_graph(json.dumps(doc), format="json")):
        det = _det(graph)
        assert (det.placement, det.replicas, det.window) == ("ray", 1, af.graph.DEFAULT_WINDOW)
        assert dict(det.resources) == {"num_gpus": 1.0}


def test_workflow_steps_carry_placement() -> None:
    doc = {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {
                "type": "detector",
                "name": "det",
                "image": "$inputs.image",
                "window": 9,  # a block parameter, not the credit window
                "placement": {"type": "ray", "replicas": 2, "resources": {"num_cpus": 1}},
            }
        ],
        "outputs": [{"type": "JsonField", "name": "out", "selector": "$steps.det.boxes"}],
    }
    det = _det(load_graph(json.dumps(doc), format="json"))
    assert (det.placement, det.replicas, det.window) == ("ray", 2, af.graph.DEFAULT_WINDOW)
    assert dict(det.resources) == {"num_cpus": 1.0}
    assert dict(det.params) == {"window": 9}


def test_builder_options_set_placement() -> None:
    class Source(af.SourceUnit):
        out = af.Output("out")

    class Heavy(af.FlowUnit):
        inp = af.Input("in")

    heavy = Heavy().options(placement="ray", replicas=2, resources={"num_gpus": 0.5}, window=4)
    source = Source()
    heavy(source)
    node = next(n for n in graph_from_units([source], [heavy]).nodes if n.instance is heavy)
    assert (node.placement, node.replicas, node.window) == ("ray", 2, 4)
    assert dict(node.resources) == {"num_gpus": 0.5}


def test_dot_rendering_round_trips_placement() -> None:
    graph = load_graph(TOML, format="toml")
    again = load_graph(
        f"[graph]\nformat='graphviz'\ngraphconf='''{to_dot(graph)}'''", format="toml"
    )
    before, after = _det(graph), _det(again)
    assert (after.placement, after.window, dict(after.resources)) == (
        before.placement,
        before.window,
        dict(before.resources),
    )


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"placement": "gpu"}, "node 'det'.*placement must be one of local, ray, got 'gpu'"),
        ({"resources": "num_cpus=lots"}, "node 'det'.*resource 'num_cpus' must be a number"),
        ({"resources": {"num_gpus": -1}}, "node 'det'.*resource 'num_gpus' must be a number >= 0"),
        ({"resources": [1, 2]}, "node 'det'.*resources must map names to amounts"),
        ({"window": "x"}, "node 'det'.*window must be an integer"),
    ],
)
def test_bad_placement_attributes_are_named(attrs: dict[str, Any], message: str) -> None:
    doc = {"nodes": {"det": {"flowunit": "detector", **attrs}}, "edges": []}
    with pytest.raises(GraphValidationError, match=message):
        load_graph(doc)


def test_a_zero_window_is_refused_at_validation() -> None:
    @af.flowunit(register=False)
    async def heavy(x: int) -> int:
        return x

    flow = af.Flow(
        {
            "nodes": {"i": {"type": "input"}, "h": {"unit": "heavy", "window": 0}},
            "edges": ["i -> h"],
        },
        registry=_registry(heavy),
    )
    window = r"node 'h'.*window must be an integer from 1 to 1024"
    with pytest.raises(GraphValidationError, match=window):
        flow.build()


def test_workflow_placement_with_an_unknown_key_is_named() -> None:
    doc = {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {"type": "detector", "name": "det", "image": "$inputs.image", "placement": {"gpus": 1}}
        ],
        "outputs": [],
    }
    with pytest.raises(
        GraphValidationError, match=r"step 'det'.*placement must be 'ray' or an object"
    ):
        load_graph(json.dumps(doc), format="json")


def _registry(*units: type[af.FlowUnit]) -> af.unit.Registry:
    registry = af.unit.Registry()
    for cls in units:
        registry.register(cls)
    return registry
