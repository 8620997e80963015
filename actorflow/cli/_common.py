"""Helpers the subcommands share: loading a graph file and checking it completely."""

from __future__ import annotations

import argparse
from pathlib import Path

from actorflow.errors import GraphError, GraphValidationError, UnitConfigError, UnitNotFoundError
from actorflow.graph import Graph, load_graph, validate
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


def load_checked(path: Path, *, allow_custom_code: bool) -> Graph:
    """Load ``path``, import its driver dirs, validate it and construct every unit.

    Every problem found is listed in one ``GraphValidationError``: graph problems
    first, then each unit's parameter problems (constructors only: no I/O happens).

    Raises:
        GraphError: the file cannot be loaded, or has problems.
    """
    graph = load_graph(path, allow_custom_code=allow_custom_code or None)
    if graph.driver_dirs:
        load_driver_dirs(graph.driver_dirs, base_dir=graph.base_dir, source=graph.source)
    problems: list[str] = []
    checked: Graph | None = None
    try:
        checked = validate(graph, default_registry)
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


def problems_of(exc: GraphError) -> list[str]:
    """Every problem an error lists (its message when it lists none)."""
    return list(exc.problems) if exc.problems else [str(exc)]
