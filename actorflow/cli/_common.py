"""Helpers the subcommands share: loading a graph file and checking it completely."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from actorflow.errors import GraphError, GraphValidationError, UnitConfigError, UnitNotFoundError
from actorflow.graph import RUNTIME_ATTRIBUTES, Graph, NodeSpec, load_graph, suggest, validate
from actorflow.graph._formats._common import typed_value
from actorflow.runtime._builder import BuilderCatalog
from actorflow.unit import default_registry, instantiate, load_driver_dirs
from actorflow.unit._params import declared_params


def add_file_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``FILE`` argument and ``--allow-custom-code``, common to every subcommand."""
    parser.add_argument(
        "file",
        metavar="FILE",
        type=Path,
        help="graph file: .toml or .json (ModelBox, workflow or dict form)",
    )
    parser.add_argument(
        "--allow-custom-code",
        action="store_true",
        help="let workflow dynamic blocks run their Python code (only for files you trust; "
        "also ACTORFLOW_ALLOW_CUSTOM_CODE=1)",
    )


INPUT_PARAMS = ("uri", "path", "file", "source")
"""Parameters of a source that ``--input`` sets (the first one the source declares)."""


def add_override_arguments(parser: argparse.ArgumentParser) -> None:
    """``--set NODE.PARAM=VALUE`` (repeatable) and ``--input PATH``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NODE.PARAM=VALUE",
        help="override a node's parameter or attribute (repeatable); the value is read "
        "as in DOT (number, true/false, JSON list, else text) and checked against the "
        "unit's annotations: --set double.factor=3 --set numbers.count=5",
    )
    parser.add_argument(
        "--input",
        default=None,
        metavar="PATH",
        help="what the graph's one source reads: a file or directory (relative to the "
        "current directory), a stream URL (rtsp://...) or a camera index (0); sets the "
        f"first of the source's parameters {', '.join(INPUT_PARAMS)}",
    )


def load_checked(
    path: Path,
    *,
    allow_custom_code: bool,
    overrides: Sequence[str] = (),
    input_path: str | None = None,
) -> Graph:
    """Load ``path``, import its driver dirs, validate it and construct every unit.

    ``overrides`` (``node.param=value``) and ``input_path`` are applied before the
    checks, so a mistyped override is reported like a mistake in the file.
    Every problem found is listed in one ``GraphValidationError``: graph problems
    first, then each unit's parameter problems (constructors only: no I/O happens).

    Raises:
        GraphError: the file cannot be loaded, or has problems (overrides included).
    """
    graph = load_graph(path, allow_custom_code=allow_custom_code or None)
    if graph.driver_dirs:
        load_driver_dirs(graph.driver_dirs, base_dir=graph.base_dir, source=graph.source)
    graph = apply_overrides(graph, overrides, input_path)
    problems: list[str] = []
    checked: Graph | None = None
    try:
        checked = validate(graph, BuilderCatalog(default_registry, graph))
    except GraphValidationError as exc:
        problems.extend(exc.problems)
    for node in graph.nodes:
        contract = default_registry.contract(node.unit) if node.kind == "unit" else None
        if contract is None or (contract.check and contract.check(node.params)):
            continue  # unknown units and declared-parameter problems: reported by validate()
        where = f" ({node.location})" if node.location else ""
        try:
            instantiate(default_registry.get(node.unit), node.params, node=node.id)
        except (UnitConfigError, UnitNotFoundError) as exc:
            problems.append(f"{exc}{where}")
    if problems or checked is None:
        raise GraphValidationError(problems, source=graph.source)
    return checked


def apply_overrides(graph: Graph, overrides: Sequence[str], input_path: str | None) -> Graph:
    """``graph`` with ``--set`` and ``--input`` applied.

    Raises:
        GraphValidationError: an override names no node, has no ``=``, or ``--input``
            cannot tell which source it is for; every problem listed.
    """
    problems: list[str] = []
    changes: dict[str, dict[str, Any]] = {}
    ids = [n.id for n in graph.nodes]
    for text in overrides:
        target, eq, raw = text.partition("=")
        node_id, dot, key = target.partition(".")
        if not (eq and dot and node_id and key):
            problems.append(f"--set {text!r}: write NODE.PARAM=VALUE, as in double.factor=3")
        elif node_id not in ids:
            problems.append(
                f"--set {text!r}: no node {node_id!r}{suggest(node_id, ids)} "
                f"(nodes: {', '.join(ids)})"
            )
        else:
            changes.setdefault(node_id, {})[key] = _typed(graph, node_id, key, raw)
    if input_path is not None:
        _set_input(graph, input_path, changes, problems)
    if problems:
        raise GraphValidationError(problems, source=graph.source)
    nodes = tuple(_changed(n, changes.get(n.id, {})) for n in graph.nodes)
    return dataclasses.replace(graph, nodes=nodes)


def _typed(graph: Graph, node_id: str, key: str, raw: str) -> Any:
    """The value as DOT reads it, except that a ``str`` parameter keeps the text."""
    node = graph.node(node_id)
    if node.kind == "unit" and key not in RUNTIME_ATTRIBUTES:
        try:
            declared, _ = declared_params(default_registry.get(node.unit))
        except UnitNotFoundError:
            declared = []
        annotation = next((p.annotation for p in declared if p.name == key), None)
        if annotation is str:
            return raw
    return typed_value(raw)


def _set_input(
    graph: Graph, input_path: str, changes: dict[str, dict[str, Any]], problems: list[str]
) -> None:
    fed = {e.dst.node for e in graph.edges}
    sources = [n for n in graph.nodes if n.kind == "unit" and n.id not in fed]
    if len(sources) != 1:
        listed = ", ".join(n.id for n in sources) or "none"
        problems.append(
            f"--input: the graph has {len(sources)} sources ({listed}); --input needs exactly "
            "one. Set each with --set NODE.uri=PATH instead"
        )
        return
    node = sources[0]
    try:
        declared, _ = declared_params(default_registry.get(node.unit))
    except UnitNotFoundError:
        declared = []
    names = [p.name for p in declared]
    key = next((k for k in INPUT_PARAMS if k in names), None)
    if key is None:
        problems.append(
            f"--input: source {node.id!r} ({node.unit}) takes none of the parameters "
            f"{', '.join(INPUT_PARAMS)}; set its input with --set {node.id}.PARAM=VALUE"
        )
        return
    changes.setdefault(node.id, {})[key] = _input_value(input_path)


def _input_value(text: str) -> str | int:
    """A camera index as an int, a URL as is, a path made absolute (the shell's cwd)."""
    if text.isdigit():
        return int(text)
    if "://" in text:
        return text
    return str(Path(text).resolve())


def _changed(node: NodeSpec, values: Mapping[str, Any]) -> NodeSpec:
    if not values:
        return node
    fields = {k: v for k, v in values.items() if k in _NODE_FIELDS}
    params = {k: v for k, v in values.items() if k not in _NODE_FIELDS}
    return node.with_(params={**node.params, **params}, **fields)


_NODE_FIELDS = ("replicas", "queue_size", "batch_size", "batch_timeout", "device", "deviceid")


def problems_of(exc: GraphError) -> list[str]:
    """Every problem an error lists (its message when it lists none)."""
    return list(exc.problems) if exc.problems else [str(exc)]
