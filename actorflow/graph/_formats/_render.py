"""Render a ``Graph`` as DOT (a ModelBox ``graphconf`` that loads back) or Mermaid."""

from __future__ import annotations

import json
import re
from typing import Any

from actorflow.graph._model import DEFAULT_QUEUE_SIZE, DEFAULT_WINDOW, Graph, NodeSpec

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RUNTIME_DEFAULTS: dict[str, Any] = {
    "replicas": 1,
    "queue_size": DEFAULT_QUEUE_SIZE,
    "batch_size": 1,
    "batch_timeout": 0.0,
    "device": "auto",
    "deviceid": 0,
    "placement": "local",
    "window": DEFAULT_WINDOW,
}


def to_dot(graph: Graph) -> str:
    """The graph as a DOT ``digraph``, with every node attribute and parameter.

    The text loads back with ``load_graph(text, format="dot")`` (or as the
    ``graphconf`` of a ModelBox file) into an equal graph, except that parameter
    strings which read as numbers or booleans come back typed (DOT has no types).
    Driver directories travel as the graph attribute ``actorflow_driver_dir`` (a JSON
    list of absolute paths), which a bare DOT file's loader reads.
    """
    import pydot  # only rendering needs it

    dot = pydot.Dot(_dot_id(graph.name or "graph"), graph_type="digraph")
    if graph.driver_dirs:  # absolute, so that the text loads back from anywhere
        dirs = [str(d.resolve()) for d in graph.driver_dirs]
        dot.set("actorflow_driver_dir", dot_value(json.dumps(dirs)))
    for node in graph.nodes:
        dot_node = pydot.Node(_dot_id(node.id))
        for key, value in _node_attrs(node).items():
            dot_node.set(key, value)  # set(): a parameter may be called 'name'
        dot.add_node(dot_node)
    for edge in graph.edges:
        attrs: dict[str, Any] = {}
        if edge.policy is not None:
            attrs["policy"] = edge.policy
        if edge.queue_size is not None:
            attrs["queue_size"] = str(edge.queue_size)
        dot.add_edge(
            pydot.Edge(
                _end(edge.src.node, edge.src.port), _end(edge.dst.node, edge.dst.port), **attrs
            )
        )
    text: str = dot.to_string()
    return text


def to_mermaid(graph: Graph) -> str:
    """The graph as a Mermaid ``flowchart LR`` (inputs and outputs drawn as stadiums)."""
    lines = ["flowchart LR"]
    for node in graph.nodes:
        ident = _mermaid_id(node.id)
        if node.kind == "unit":
            lines.append(f'    {ident}["{_mermaid_text(node.id)}<br/>{node.unit}"]')
        else:
            lines.append(f'    {ident}(["{_mermaid_text(node.id)} ({node.kind})"])')
    for edge in graph.edges:
        label = "|".join(p for p in (edge.src.port, edge.dst.port) if p)
        arrow = f"-->|{_mermaid_text(label.replace('|', ' to '))}|" if label else "-->"
        lines.append(f"    {_mermaid_id(edge.src.node)} {arrow} {_mermaid_id(edge.dst.node)}")
    return "\n".join(lines) + "\n"


def dot_value(value: Any) -> str:
    """A parameter as DOT text: bare numbers and booleans, quoted strings, JSON lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = value if isinstance(value, str) else json.dumps(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node_attrs(node: NodeSpec) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if node.kind != "unit":
        attrs["type"] = node.kind
    if node.unit:
        attrs["flowunit"] = dot_value(node.unit)
    for key, default in _RUNTIME_DEFAULTS.items():
        value = getattr(node, key)
        if value != default:
            attrs[key] = dot_value(value)
    if node.resources:
        attrs["resources"] = dot_value(",".join(f"{k}={v!r}" for k, v in node.resources.items()))
    for key, value in node.params.items():
        attrs[key] = dot_value(value)
    return attrs


def _dot_id(name: str) -> str:
    return name if _PLAIN.match(name) else dot_value(name)


def _end(node: str, port: str | None) -> str:
    return _dot_id(node) + (f":{_dot_id(port)}" if port else "")


def _mermaid_id(name: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")
