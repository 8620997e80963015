"""ModelBox graph files: TOML/JSON holding a graphviz DOT ``graphconf``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from actorflow.errors import GraphSyntaxError, GraphValidationError
from actorflow.graph import Graph, PortRef, load_graph
from actorflow.graph._formats import to_dot, to_mermaid

SEED_TOML = """\
[driver]
dir="/usr/local/lib"
[graph]
graphconf = '''digraph demo {
  input[type=input]
  output[type=output]
  process[flowunit=process]

  input->process->output
}'''
format = "graphviz"
"""

FULL_TOML = """\
[driver]
dir = ["units", "more"]
[graph]
format = "graphviz"
graphconf = '''digraph full {
  node [shape=box]
  input[type=input, device=cpu]
  det[flowunit=detector, device=cuda, deviceid=1, batch_size=8, batch_timeout=0.01,
      queue_size=4, replicas=2, threshold=0.5, classes=80, labels="[\\"a\\", \\"b\\"]",
      enabled=true, model="models/x.onnx", color=red]
  draw[flowunit=draw]
  output[type=output]
  input -> det:image [policy=latest, queue_size=2]
  det:boxes -> draw:boxes
  input -> draw:image
  draw -> output [label="result"]
}'''
"""


def _strip(graph: Graph) -> Graph:
    """The graph without locations, base directory or source (for comparisons)."""
    return replace(
        graph,
        nodes=tuple(replace(n, location=None) for n in graph.nodes),
        edges=tuple(replace(e, location=None) for e in graph.edges),
        source="",
    )


def write(tmp_path: Path, text: str, name: str = "flow.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_seed_000_toml_loads(tmp_path: Path) -> None:
    graph = load_graph(write(tmp_path, SEED_TOML))
    assert graph.name == "demo"
    assert graph.inputs == ("input",)
    assert graph.outputs == ("output",)
    assert graph.node("process").unit == "process"
    assert [str(e) for e in graph.edges] == ["input -> process", "process -> output"]
    assert graph.driver_dirs == (Path("/usr/local/lib"),)


def test_node_attributes_and_params_are_typed(tmp_path: Path) -> None:
    graph = load_graph(write(tmp_path, FULL_TOML))
    det = graph.node("det")
    assert (det.device, det.deviceid, det.batch_size, det.queue_size, det.replicas) == (
        "cuda",
        1,
        8,
        4,
        2,
    )
    assert det.batch_timeout == pytest.approx(0.01)
    assert dict(det.params) == {
        "threshold": 0.5,
        "classes": 80,
        "labels": ["a", "b"],
        "enabled": True,
        "model": "models/x.onnx",
    }  # 'color' and the `node [shape=box]` default are drawing attributes, dropped
    assert graph.node("input").device == "cpu"


def test_edges_with_ports_and_attributes(tmp_path: Path) -> None:
    graph = load_graph(write(tmp_path, FULL_TOML))
    first = graph.edges[0]
    assert (first.src, first.dst) == (PortRef("input"), PortRef("det", "image"))
    assert (first.policy, first.queue_size) == ("latest", 2)
    assert str(graph.edges[1]) == "det:boxes -> draw:boxes"


def test_driver_dirs_are_relative_to_the_file(tmp_path: Path) -> None:
    graph = load_graph(write(tmp_path, FULL_TOML))
    assert graph.driver_dirs == (tmp_path / "units", tmp_path / "more")
    assert graph.base_dir == tmp_path.resolve()


def test_locations_point_into_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, FULL_TOML)
    graph = load_graph(path)
    det = graph.node("det").location
    assert det is not None
    assert (det.path, det.line, det.column) == (str(path), 8, 3)
    edge = graph.edges[1].location
    assert edge is not None
    assert (edge.line, edge.column) == (14, 3)


def test_json_form_with_string_graphconf(tmp_path: Path) -> None:
    doc = {
        "driver": {"dir": "units"},
        "graph": {
            "format": "graphviz",
            "graphconf": "digraph j {\n  input[type=input]\n  p[flowunit=scale]\n"
            "  output[type=output]\n  input -> p -> output\n}",
        },
    }
    path = write(tmp_path, json.dumps(doc, indent=2), "flow.json")
    graph = load_graph(path)
    assert graph.name == "j"
    assert graph.driver_dirs == (tmp_path / "units",)
    loc = graph.node("p").location
    assert loc is not None
    assert loc.line == 7  # the graphconf string's line in the file


def test_json_form_with_list_graphconf(tmp_path: Path) -> None:
    doc = {
        "graph": {
            "format": "graphviz",
            "graphconf": [
                "digraph l {",
                "input[type=input]",
                "output[type=output]",
                "input -> output",
                "}",
            ],
        }
    }
    graph = load_graph(write(tmp_path, json.dumps(doc), "flow.json"))
    assert [str(e) for e in graph.edges] == ["input -> output"]


def test_graph_from_text_and_format(tmp_path: Path) -> None:
    graph = load_graph(SEED_TOML, format="toml")
    assert graph.source == "<string>"
    assert graph.node("process").unit == "process"


def test_edge_chains_and_subgraph_targets() -> None:
    graph = load_graph(
        "digraph c { a[flowunit=x] b[flowunit=y] c[flowunit=z] a -> {b c} }", format="dot"
    )
    assert sorted(str(e) for e in graph.edges) == ["a -> b", "a -> c"]


def test_nodes_only_named_in_edges_are_not_invented() -> None:
    """`a -> b` with no `a [...]`/`b [...]`: an edge naming undeclared nodes (a typo,
    usually), reported once per name by validation, not turned into empty nodes."""
    graph = load_graph("digraph { a [flowunit=x] a -> b }")
    assert [n.id for n in graph.nodes] == ["a"]
    assert [str(e) for e in graph.edges] == ["a -> b"]


def test_subgraph_nodes_are_included() -> None:
    graph = load_graph("digraph { subgraph cluster_x { a[flowunit=x] } b[flowunit=y] a -> b }")
    assert graph.node("a").unit == "x"


def test_graph_name_falls_back_to_file_stem(tmp_path: Path) -> None:
    text = SEED_TOML.replace("digraph demo", "digraph")
    assert load_graph(write(tmp_path, text, "my_flow.toml")).name == "my_flow"


def test_name_argument_wins() -> None:
    assert load_graph(SEED_TOML, format="toml", name="other").name == "other"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("[graph\n", r"^<string>:1:\d+: invalid TOML", id="toml-syntax"),
        pytest.param(
            "[graph]\ngraphconf = '''digraph { a -> }'''\n",
            r"^<string>:2:28: graphconf is not valid DOT",
            id="dot-syntax",
        ),
        pytest.param(
            "[graph]\ngraphconf = 'graph { a -- b }'\n", r"must be a 'digraph'", id="undirected"
        ),
        pytest.param(
            "[graph]\nformat='graphviz'\n", r"graphconf must be the DOT text", id="no-graphconf"
        ),
        pytest.param(
            "[graph]\ngraphconf = 'digraph { a [name=x] }'\n",
            r"attribute 'name' is reserved",
            id="reserved-attr",
        ),
        pytest.param("title = 'x'\n", r"not a graph document", id="not-a-graph"),
    ],
)
def test_syntax_errors_name_the_place(text: str, message: str) -> None:
    with pytest.raises(GraphSyntaxError, match=message):
        load_graph(text, format="toml")


def test_json_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "graph": {\n    "graphconf": ,\n  }\n}', "bad.json")
    with pytest.raises(GraphSyntaxError, match=r"bad\.json:3:18: invalid JSON") as info:
        load_graph(path)
    assert (info.value.line, info.value.column) == (3, 18)


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = """\
[driver]
dir = 3
[graph]
format = "dot"
graphconf = '''digraph {
  a[flowunit=x, batch_size=many]
  a -> b [policy=latst, weight=2, colour=red]
}'''
[grpah]
"""
    with pytest.raises(GraphValidationError) as info:
        load_graph(write(tmp_path, text))
    problems = "\n".join(info.value.problems)
    path = tmp_path / "flow.toml"
    assert f"unknown section 'grpah' ({path}:9:1); did you mean 'graph'?" in problems
    assert "format must be 'graphviz', got 'dot'" in problems
    assert "[driver] dir must be a directory or a list" in problems
    assert f"edge a -> b ({path}:7:35): unknown attribute 'colour'" in problems
    assert "batch_size must be an integer, got 'many'" in problems
    assert "flow.toml:6:3" in problems  # node 'a' named with its place
    assert len(info.value.problems) == 5


def test_missing_file_is_a_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(GraphSyntaxError, match="graph file not found"):
        load_graph(tmp_path / "nope.toml")


def test_dot_round_trip(tmp_path: Path) -> None:
    graph = load_graph(write(tmp_path, FULL_TOML))
    again = load_graph(to_dot(graph), format="dot")
    assert _strip(replace(again, base_dir=graph.base_dir, driver_dirs=graph.driver_dirs)) == _strip(
        graph
    )


def test_dot_render_quotes_odd_ids_and_strings() -> None:
    graph = load_graph(
        {
            "name": "odd graph",
            "nodes": {"my-node": {"flowunit": "x", "text": 'say "hi"\\'}},
            "edges": [],
        }
    )
    text = to_dot(graph)
    assert '"my-node"' in text
    assert load_graph(text, format="dot").node("my-node").params["text"] == 'say "hi"\\'


def test_mermaid_render(tmp_path: Path) -> None:
    text = to_mermaid(load_graph(write(tmp_path, FULL_TOML)))
    assert text.startswith("flowchart LR\n")
    assert 'n_det["det<br/>detector"]' in text
    assert "n_det -->|boxes to boxes| n_draw" in text


@pytest.mark.parametrize("source", ["graphs/missing", "missing.toml", "./nope/flow.json"])
def test_a_missing_path_given_as_text_says_file_not_found(source: str) -> None:
    with pytest.raises(GraphSyntaxError, match="graph file not found"):
        load_graph(source)
