"""The dict form of a graph, which every file format compiles into.

::

    {
        "name": "demo",
        "nodes": {
            "input":  {"type": "input"},
            "double": {"flowunit": "scale", "factor": 2, "replicas": 2, "queue_size": 8},
            "output": {"type": "output"},
        },
        "edges": ["input -> double", {"from": "double:out", "to": "output", "policy": "block"}],
    }

Node attributes ``type``, ``flowunit`` (or ``unit``), ``replicas``, ``queue_size``,
``batch_size``, ``batch_timeout``, ``device`` and ``deviceid`` configure the runtime,
and so do the Ray placement attributes ``placement`` (``local`` or ``ray``),
``resources`` (a mapping, or ``"num_cpus=1,num_gpus=0.5,node_a=1"`` text as DOT
attributes are strings) and ``window``; every other attribute is a unit parameter.
Edges name ports as ``node:port`` (or ``node.port``); a bare ``node`` means its only
port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from actorflow.errors import GraphSyntaxError, GraphValidationError
from actorflow.graph._model import (
    DEFAULT_QUEUE_SIZE,
    DEFAULT_WINDOW,
    PLACEMENTS,
    EdgeSpec,
    Graph,
    Location,
    NodeKind,
    NodeSpec,
    Policy,
    PortRef,
)

RUNTIME_ATTRIBUTES = frozenset(
    {
        "type",
        "flowunit",
        "unit",
        "replicas",
        "queue_size",
        "batch_size",
        "batch_timeout",
        "device",
        "deviceid",
        "label",
        "comments",
        "placement",
        "resources",
        "window",
    }
)
"""Node attributes the runtime reads; all others go to the unit as parameters."""

_INT_ATTRS = ("replicas", "queue_size", "batch_size", "deviceid", "window")


def graph_from_dict(
    doc: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    source: str = "<dict>",
    locations: Mapping[str, Location] | None = None,
) -> Graph:
    """Build a ``Graph`` from the dict form (module docstring).

    ``locations`` maps node ids and edge texts to where a file declared them, so that
    validation messages can point there.

    Raises:
        GraphSyntaxError: the document's shape is wrong (not a mapping, bad edge text).
        GraphValidationError: attribute values are wrong; every problem is listed.
    """
    if not isinstance(doc, Mapping):
        msg = f"a graph must be a mapping with 'nodes' and 'edges', got {type(doc).__name__}"
        raise GraphSyntaxError(msg, path=source)
    locations = locations or {}
    problems: list[str] = []
    nodes = [
        _node(node_id, attrs, locations.get(node_id), problems)
        for node_id, attrs in _node_items(doc.get("nodes", {}), source)
    ]
    edges = [_edge(item, locations, source, problems) for item in _edge_items(doc, source)]
    if problems:
        raise GraphValidationError(problems, source=source)
    driver = doc.get("driver", {}) or {}
    dirs = driver.get("dir", []) if isinstance(driver, Mapping) else []
    base = base_dir or Path.cwd()
    return Graph(
        name=str(doc.get("name", "graph")),
        nodes=tuple(nodes),
        edges=tuple(e for e in edges if e is not None),
        base_dir=base,
        source=source,
        driver_dirs=tuple(base / d for d in ([dirs] if isinstance(dirs, str) else dirs)),
    )


def parse_port(text: str) -> PortRef:
    """Parse ``node``, ``node:port`` or ``node.port``."""
    text = text.strip()
    for sep in (":", "."):
        if sep in text:
            node, port = text.split(sep, 1)
            return PortRef(node.strip(), port.strip() or None)
    return PortRef(text)


def _node_items(nodes: object, source: str) -> list[tuple[str, Mapping[str, Any]]]:
    if isinstance(nodes, Mapping):
        pairs: list[tuple[str, Mapping[str, Any]]] = [
            (str(k), v if isinstance(v, Mapping) else {"flowunit": v}) for k, v in nodes.items()
        ]
        return pairs
    if isinstance(nodes, Sequence) and not isinstance(nodes, str):
        items: list[tuple[str, Mapping[str, Any]]] = []
        for entry in nodes:
            if not isinstance(entry, Mapping) or "id" not in entry:
                msg = f"each entry of 'nodes' needs an 'id', got {entry!r}"
                raise GraphSyntaxError(msg, path=source)
            items.append((str(entry["id"]), {k: v for k, v in entry.items() if k != "id"}))
        return items
    msg = f"'nodes' must be a mapping of node id to attributes, got {type(nodes).__name__}"
    raise GraphSyntaxError(msg, path=source)


def _node(
    node_id: str, attrs: Mapping[str, Any], location: Location | None, problems: list[str]
) -> NodeSpec:
    where = f"node {node_id!r}" + (f" ({location})" if location else "")
    kind = str(attrs.get("type", "unit"))
    if kind not in ("unit", "input", "output", "flowunit"):
        problems.append(f"{where}: type must be 'input' or 'output' (or left out), got {kind!r}")
        kind = "unit"
    values: dict[str, Any] = {}
    for attr in _INT_ATTRS:
        if attr in attrs:
            values[attr] = _as_int(attrs[attr], attr, where, problems)
    if "batch_timeout" in attrs:
        values["batch_timeout"] = _as_float(attrs["batch_timeout"], where, problems)
    params = {k: v for k, v in attrs.items() if k not in RUNTIME_ATTRIBUTES}
    placement = str(attrs.get("placement", "local"))
    if placement not in PLACEMENTS:
        problems.append(
            f"{where}: placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}"
        )
    resources = _resources(attrs.get("resources", {}), where, problems)
    return NodeSpec(
        id=node_id,
        unit=str(attrs.get("flowunit", attrs.get("unit", ""))),
        kind=cast("NodeKind", "unit" if kind == "flowunit" else kind),
        params=MappingProxyType(params),
        replicas=values.get("replicas", 1),
        queue_size=values.get("queue_size", DEFAULT_QUEUE_SIZE),
        batch_size=values.get("batch_size", 1),
        batch_timeout=values.get("batch_timeout", 0.0),
        device=str(attrs.get("device", "auto")),
        deviceid=values.get("deviceid", 0),
        location=location,
        placement=placement if placement in PLACEMENTS else "local",
        resources=MappingProxyType(resources),
        window=values.get("window", DEFAULT_WINDOW),
    )


def _resources(value: object, where: str, problems: list[str]) -> dict[str, float]:
    """``resources`` as a mapping of names to amounts (text ``"a=1,b=0.5"`` accepted)."""
    if isinstance(value, str):
        pairs: list[tuple[str, object]] = []
        for item in (p.strip() for p in value.split(",")):
            if item:
                name, sep, amount = item.partition("=")
                pairs.append((name.strip(), amount.strip() if sep else None))
        value = dict(pairs)
    if not isinstance(value, Mapping):
        problems.append(
            f"{where}: resources must map names to amounts, as in "
            f"'num_cpus=1,num_gpus=0.5', got {value!r}"
        )
        return {}
    out: dict[str, float] = {}
    for name, amount in value.items():
        try:
            if isinstance(amount, bool):
                raise ValueError
            number = float(cast("Any", amount))
            if not number >= 0:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"{where}: resource {name!r} must be a number >= 0, got {amount!r}")
            continue
        out[str(name)] = number
    return out


def _edge_items(doc: Mapping[str, Any], source: str) -> list[object]:
    edges = doc.get("edges", [])
    if isinstance(edges, str) or not isinstance(edges, Sequence):
        msg = f"'edges' must be a list, got {type(edges).__name__}"
        raise GraphSyntaxError(msg, path=source)
    return list(edges)


def _edge(
    item: object, locations: Mapping[str, Location], source: str, problems: list[str]
) -> EdgeSpec | None:
    if isinstance(item, str):
        parts = list(item.split("->"))
        if len(parts) != 2 or not all(p.strip() for p in parts):
            msg = f"edge {item!r} must read 'a:out -> b:in'"
            raise GraphSyntaxError(msg, path=source)
        return EdgeSpec(parse_port(parts[0]), parse_port(parts[1]), location=locations.get(item))
    if isinstance(item, Mapping) and "from" in item and "to" in item:
        text = f"{item['from']} -> {item['to']}"
        queue_size = item.get("queue_size")
        if queue_size is not None:
            queue_size = _as_int(queue_size, "queue_size", f"edge {text!r}", problems)
        return EdgeSpec(
            parse_port(str(item["from"])),
            parse_port(str(item["to"])),
            policy=cast(
                "Policy | None", None if item.get("policy") is None else str(item["policy"])
            ),
            queue_size=queue_size,
            location=locations.get(text),
        )
    msg = f"edge {item!r} must be 'a:out -> b:in' or {{'from': ..., 'to': ...}}"
    raise GraphSyntaxError(msg, path=source)


def _as_int(value: object, attr: str, where: str, problems: list[str]) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(cast("Any", value))
    except (TypeError, ValueError):
        problems.append(f"{where}: {attr} must be an integer, got {value!r}")
        return 1


def _as_float(value: object, where: str, problems: list[str]) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(cast("Any", value))
    except (TypeError, ValueError):
        problems.append(f"{where}: batch_timeout must be a number of seconds, got {value!r}")
        return 0.0
