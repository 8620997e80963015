"""Helpers the subcommands share: loading a graph file and checking it completely."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from actorflow.errors import GraphError, GraphValidationError, UnitConfigError, UnitNotFoundError
from actorflow.graph import RUNTIME_ATTRIBUTES, Graph, NodeSpec, load_graph, suggest, validate
from actorflow.graph._formats._common import typed_value
from actorflow.graph._validate import Contract
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


def add_import_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-import``: check a graph file without running its driver modules."""
    parser.add_argument(
        "--no-import",
        action="store_true",
        help="do not import the graph's [driver] dir modules (importing runs their code: "
        "a graph file with [driver] is code); units they would define are left unchecked",
    )


def unchecked_units(graph: Graph) -> list[str]:
    """Units the graph names that no installed or already imported module defines."""
    return sorted(
        {
            n.unit
            for n in graph.nodes
            if n.kind == "unit" and default_registry.contract(n.unit) is None
        }
    )


def driver_notice(graph: Graph, *, imported: bool) -> str | None:
    """What happened to the graph's driver modules, in one line (``None`` without any)."""
    if not graph.driver_dirs:
        return None
    dirs = ", ".join(str(d) for d in graph.driver_dirs)
    if imported:
        return (
            f"imported (ran) the Python modules of the driver dirs {dirs}: a graph file "
            "with [driver] is code; use --no-import for files you do not trust"
        )
    units = unchecked_units(graph)
    shown = f"; unchecked units: {', '.join(repr(u) for u in units)}" if units else ""
    return f"did not import the driver dirs {dirs} (--no-import){shown}"


def load_checked(
    path: Path,
    *,
    allow_custom_code: bool,
    overrides: Sequence[str] = (),
    input_path: str | None = None,
    import_drivers: bool = True,
) -> Graph:
    """Load ``path``, import its driver dirs, validate it and construct every unit.

    ``overrides`` (``node.param=value``) and ``input_path`` are applied before the
    checks, so a mistyped override is reported like a mistake in the file.
    Every problem found is listed in one ``GraphValidationError``: graph problems
    first, then each unit's parameter problems (constructors only: no I/O happens).
    With ``import_drivers=False`` the driver modules are not imported (they are code)
    and units nothing else defines are not reported as unknown, only left unchecked.

    Raises:
        GraphError: the file cannot be loaded, or has problems (overrides included).
    """
    graph = load_graph(path, allow_custom_code=allow_custom_code or None)
    if graph.driver_dirs and import_drivers:
        load_driver_dirs(graph.driver_dirs, base_dir=graph.base_dir, source=graph.source)
    graph = apply_overrides(graph, overrides, input_path)
    problems: list[str] = []
    checked: Graph | None = None
    unimported = graph.driver_dirs and not import_drivers
    catalog = _Unimported(graph) if unimported else BuilderCatalog(default_registry, graph)
    try:
        checked = validate(graph, catalog)
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


class _Unimported:
    """A unit catalog that stands in for units the unimported driver dirs may define.

    Such a unit gets the ports the graph's edges name (every input optional), so the
    rest of the graph is checked as if it existed; its own ports are not checked.
    """

    def __init__(self, graph: Graph) -> None:
        self._made: dict[str, Contract] = {}
        unknown = set(unchecked_units(graph))
        units = {n.id: n.unit for n in graph.nodes if n.unit in unknown}
        ports: dict[str, tuple[set[str], set[str]]] = {u: (set(), set()) for u in unknown}
        for edge in graph.edges:
            if edge.src.node in units:
                ports[units[edge.src.node]][1].add(edge.src.port or "out")
            if edge.dst.node in units:
                ports[units[edge.dst.node]][0].add(edge.dst.port or "in")
        for unit, (inputs, outputs) in ports.items():
            self._made[unit] = Contract(
                inputs=tuple(sorted(inputs)),
                outputs=tuple(sorted(outputs)),
                optional_inputs=frozenset(inputs),
            )

    def contract(self, name: str) -> Contract | None:
        return default_registry.contract(name) or self._made.get(name)

    def names(self) -> Iterable[str]:
        return default_registry.names()


def problems_of(exc: GraphError) -> list[str]:
    """Every problem an error lists (its message when it lists none)."""
    return list(exc.problems) if exc.problems else [str(exc)]
