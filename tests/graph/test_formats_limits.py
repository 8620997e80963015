"""Hostile and generated documents: only the loader's own errors ever escape."""

from __future__ import annotations

import contextlib
import itertools
import json
import string
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorflow.errors import CustomCodeDisabled, GraphSyntaxError, GraphValidationError
from actorflow.graph import Graph, load_graph
from actorflow.graph._formats import MAX_DOCUMENT_BYTES, to_dot

LOADER_ERRORS = (GraphSyntaxError, GraphValidationError, CustomCodeDisabled)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(b"#" * (MAX_DOCUMENT_BYTES + 1))
    with pytest.raises(GraphSyntaxError, match=r"over the limit of 1048576"):
        load_graph(path)


def test_oversized_text_is_refused() -> None:
    with pytest.raises(GraphSyntaxError, match=r"over the limit of 1048576"):
        load_graph("{" + " " * MAX_DOCUMENT_BYTES + "}", format="json")


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, "json", id="json-100k"),
        pytest.param('{"a":' * 70 + "1" + "}" * 70, "json", id="json-70"),
        pytest.param("x = " + "[" * 100_000 + "]" * 100_000, "toml", id="toml-100k"),
        pytest.param("digraph { " + "subgraph { " * 3000 + "}" * 3000 + " }", "dot", id="dot-3000"),
    ],
)
def test_deep_documents_hit_the_depth_limit(text: str, fmt: str) -> None:
    with pytest.raises(GraphSyntaxError, match=r"nesting depth is over the limit of 64"):
        load_graph(text, format=fmt)  # type: ignore[arg-type]


def test_not_utf8_is_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b"[graph]\n\xff\xfe")
    with pytest.raises(GraphSyntaxError, match=r"bin\.toml:2:1: not UTF-8"):
        load_graph(path)


def test_unknown_format_is_named() -> None:
    with pytest.raises(GraphSyntaxError, match=r"unknown graph format 'yaml'"):
        load_graph("a: b", format="yaml")  # type: ignore[arg-type]


# -- generated documents -------------------------------------------------------------------

IDENT = st.text(string.ascii_lowercase, min_size=1, max_size=6).map(lambda s: "n" + s)
PARAM_NAME = st.sampled_from(["factor", "size", "mode", "labels", "scale", "flag"])
PARAM_VALUE = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e3, 1e3, allow_nan=False).filter(lambda f: not f.is_integer()),
    st.booleans(),
    st.text(string.ascii_letters + " _-/.", min_size=1, max_size=12).filter(
        lambda s: (
            s.strip().lower() not in ("true", "false")
            and s == s.strip()
            and not any(c.isdigit() for c in s)
            and s not in (".", "-")
        )
    ),
    st.lists(st.integers(0, 9), max_size=3),
)


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid dict-form graph: an input, a chain of units, an output."""
    ids = draw(st.lists(IDENT, min_size=1, max_size=6, unique=True))
    nodes: dict[str, Any] = {"src": {"type": "input"}, "sink": {"type": "output"}}
    for node_id in ids:
        attrs = {"flowunit": draw(IDENT)}
        attrs.update(draw(st.dictionaries(PARAM_NAME, PARAM_VALUE, max_size=3)))
        if draw(st.booleans()):
            attrs["batch_size"] = draw(st.integers(1, 16))
        if draw(st.booleans()):
            attrs["device"] = draw(st.sampled_from(["cpu", "cuda", "auto"]))
        nodes[node_id] = attrs
    chain = ["src", *ids, "sink"]
    edges: list[Any] = []
    for a, b in itertools.pairwise(chain):
        policy = draw(st.sampled_from(["block", "latest", "drop_oldest"]))
        edges.append({"from": a, "to": b, "policy": policy})
    return {"name": "gen", "nodes": nodes, "edges": edges}


def _strip(graph: Graph) -> Graph:
    return replace(
        graph,
        nodes=tuple(replace(n, location=None) for n in graph.nodes),
        edges=tuple(replace(e, location=None) for e in graph.edges),
        source="",
    )


def _modelbox_text(graph: Graph) -> str:
    return "[graph]\nformat = \"graphviz\"\ngraphconf = '''" + to_dot(graph) + "'''\n"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_round_trip_dict_to_dot_to_graph(doc: dict[str, Any]) -> None:
    """load -> render DOT -> load (as DOT and as a ModelBox TOML) gives the same graph."""
    graph = load_graph(doc)
    via_dot = load_graph(to_dot(graph), format="dot")
    via_toml = load_graph(_modelbox_text(graph), format="toml")
    for again in (via_dot, via_toml):
        assert _strip(replace(again, base_dir=graph.base_dir)) == _strip(graph)


def _mutations(text: str) -> st.SearchStrategy[str]:
    cut = st.integers(0, len(text))
    return st.one_of(
        cut.map(lambda i: text[:i]),
        st.tuples(cut, st.sampled_from(list("{}[]\"'=,;:->\n\\#$"))).map(
            lambda t: text[: t[0]] + t[1] + text[t[0] :]
        ),
        st.tuples(cut, cut).map(lambda t: text[: min(t)] + text[max(t) :]),
        st.tuples(cut, st.text(max_size=8)).map(lambda t: text[: t[0]] + t[1] + text[t[0] :]),
    )


def _json_mutations(doc: dict[str, Any]) -> st.SearchStrategy[str]:
    junk = st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=5),
        st.lists(st.integers()),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )

    def replace_key(args: tuple[str, Any]) -> str:
        key, value = args
        return json.dumps({**doc, key: value})

    keys = st.sampled_from([*doc.keys(), "graph", "driver", "steps", "nodes", "edges"])
    return st.tuples(keys, junk).map(replace_key)


WORKFLOW = {
    "version": "1.0",
    "inputs": [{"type": "WorkflowImage", "name": "image"}],
    "steps": [{"type": "core/resize@v1", "name": "r", "image": "$inputs.image", "width": 4}],
    "outputs": [{"type": "JsonField", "name": "o", "selector": "$steps.r.image"}],
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_documents_raise_only_loader_errors(data: st.DataObject) -> None:
    graph = load_graph(data.draw(graphs()))
    sources = [
        ("toml", _modelbox_text(graph)),
        ("dot", to_dot(graph)),
        ("json", json.dumps(WORKFLOW)),
    ]
    fmt, text = data.draw(st.sampled_from(sources))
    mutated = data.draw(_mutations(text))
    with contextlib.suppress(*LOADER_ERRORS):
        load_graph(mutated, format=fmt)  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_wrong_shapes_raise_only_loader_errors(data: st.DataObject) -> None:
    base = data.draw(
        st.sampled_from(
            [
                WORKFLOW,
                {
                    "graph": {"format": "graphviz", "graphconf": "digraph { a -> b }"},
                    "driver": {"dir": "x"},
                },
                {"nodes": {"a": {"flowunit": "x"}}, "edges": []},
            ]
        )
    )
    text = data.draw(_json_mutations(base))
    with contextlib.suppress(LOADER_ERRORS):
        load_graph(text, format="json")


# -- named errors for what used to escape as raw exceptions --------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a" * 300, id="long-line-not-a-path"),
        pytest.param("a\0b.toml", id="nul-byte"),
        pytest.param("x/" * 3000, id="long-path-like"),
    ],
)
def test_odd_text_is_a_syntax_error_not_an_os_error(text: str) -> None:
    with pytest.raises(GraphSyntaxError):
        load_graph(text)


def test_a_nul_in_a_path_is_a_syntax_error() -> None:
    with pytest.raises(GraphSyntaxError, match="NUL byte"):
        load_graph(Path("a\0b.toml"))


def test_a_json_integer_of_5000_digits_is_a_syntax_error() -> None:
    text = '{"nodes": {"a": {"flowunit": "x", "k": ' + "7" * 5000 + '}}, "edges": []}'
    with pytest.raises(GraphSyntaxError, match="invalid JSON"):
        load_graph(text, format="json")


@pytest.mark.parametrize(
    ("driver", "message"),
    [
        pytest.param({"dir": 1}, r"driver must be \{'dir'", id="int"),
        pytest.param({"dir": None}, r"driver must be \{'dir'", id="none"),
        pytest.param({"dir": [1]}, r"driver must be \{'dir'", id="list-of-int"),
        pytest.param("units", r"driver must be \{'dir'", id="bare-string"),
        pytest.param({"dir": "a\0b"}, "not a usable path", id="nul"),
        pytest.param({"dir": "a" * 5000}, "not a usable path", id="too-long"),
    ],
)
def test_wrong_driver_dirs_are_validation_errors(driver: object, message: str) -> None:
    doc = {"nodes": {"i": {"type": "input"}}, "edges": [], "driver": driver}
    with pytest.raises(GraphValidationError, match=message):
        load_graph(doc)


def test_an_unreadable_driver_dir_is_named_at_build(tmp_path: Path) -> None:
    from actorflow.unit import load_driver_dirs

    with pytest.raises(GraphValidationError, match="cannot be read"):
        load_driver_dirs([tmp_path / ("a" * 300)], base_dir=tmp_path, source="g.toml")


def test_a_dot_graph_past_max_nodes_is_refused_while_parsing() -> None:
    from actorflow.graph._formats._common import MAX_NODES

    text = "digraph {" + ";".join(f"n{i}" for i in range(MAX_NODES + 5)) + "}"
    with pytest.raises(GraphSyntaxError, match=f"over {MAX_NODES} nodes, the limit") as info:
        load_graph(text, format="dot")
    assert info.value.column == text.index(f"n{MAX_NODES};") + 1


def test_a_node_declared_twice_in_a_subgraph_is_named() -> None:
    text = "digraph { a [flowunit=x] subgraph s { a [flowunit=y] } }"
    with pytest.raises(GraphSyntaxError, match=r"node 'a' is declared twice.*first declared at"):
        load_graph(text, format="dot")


_JUNK = [None, 1, 1.5, True, "s", [1], {"a": 1}, [{"x": 1}], -1]
_PATHS = [
    ("name",),
    ("nodes",),
    ("edges",),
    ("driver",),
    ("driver", "dir"),
    ("nodes", "i"),
    ("nodes", "r"),
    ("nodes", "r", "flowunit"),
    ("nodes", "r", "type"),
    ("nodes", "r", "replicas"),
    ("nodes", "r", "batch_size"),
    ("nodes", "r", "batch_timeout"),
    ("nodes", "r", "device"),
    ("nodes", "r", "deviceid"),
    ("nodes", "r", "queue_size"),
    ("nodes", "r", "width"),
    ("edges", 0),
]


@pytest.mark.parametrize("path", _PATHS, ids=lambda p: ".".join(map(str, p)))
def test_wrong_typed_fields_of_a_dict_flow_are_named_errors(path: tuple[Any, ...]) -> None:
    """Flow(dict).build() with each field replaced by each wrong type: only named errors."""
    import copy

    from actorflow.errors import UnitConfigError, UnitNotFoundError
    from actorflow.runtime import Flow

    base = {
        "name": "g",
        "nodes": {
            "i": {"type": "input"},
            "r": {"flowunit": "resize", "width": 4, "height": 4},
            "o": {"type": "output"},
        },
        "edges": ["i -> r", "r -> o"],
        "driver": {"dir": []},
    }
    for junk in _JUNK:
        doc = copy.deepcopy(base)
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = junk
        with contextlib.suppress(*LOADER_ERRORS, UnitConfigError, UnitNotFoundError):
            Flow(doc).build()
