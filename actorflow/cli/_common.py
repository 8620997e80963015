"""Helpers the subcommands share: loading a graph file and checking it completely."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from actorflow.errors import GraphError, GraphValidationError, UnitConfigError, UnitNotFoundError
from actorflow.graph import Graph, load_graph, validate
from actorflow.graph._validate import Contract
from actorflow.unit import default_registry, instantiate, load_driver_dirs


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


def load_checked(path: Path, *, allow_custom_code: bool, import_drivers: bool = True) -> Graph:
    """Load ``path``, import its driver dirs, validate it and construct every unit.

    Every problem found is listed in one ``GraphValidationError``: graph problems
    first, then each unit's parameter problems (constructors only: no I/O happens).
    With ``import_drivers=False`` the driver modules are not imported (they are code)
    and units nothing else defines are not reported as unknown, only left unchecked.

    Raises:
        GraphError: the file cannot be loaded, or has problems.
    """
    graph = load_graph(path, allow_custom_code=allow_custom_code or None)
    if graph.driver_dirs and import_drivers:
        load_driver_dirs(graph.driver_dirs, base_dir=graph.base_dir, source=graph.source)
    problems: list[str] = []
    checked: Graph | None = None
    catalog = _Unimported(graph) if graph.driver_dirs and not import_drivers else default_registry
    try:
        checked = validate(graph, catalog)
    except GraphValidationError as exc:
        problems.extend(exc.problems)
    for node in graph.nodes:
        if node.kind != "unit" or default_registry.contract(node.unit) is None:
            continue  # unknown units are reported by validate()
        where = f" ({node.location})" if node.location else ""
        try:
            instantiate(default_registry.get(node.unit), node.params, node=node.id)
        except (UnitConfigError, UnitNotFoundError) as exc:
            problems.append(f"{exc}{where}")
    if problems or checked is None:
        raise GraphValidationError(problems, source=graph.source)
    return checked


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
