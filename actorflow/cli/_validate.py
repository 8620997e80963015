"""``actorflow validate FILE``: list every problem of a graph file, with its location."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from actorflow.cli._common import (
    add_file_arguments,
    add_import_argument,
    driver_notice,
    load_checked,
    problems_of,
)
from actorflow.errors import GraphError, GraphSyntaxError


def register(subparsers: Any) -> None:
    """Add the ``validate`` subcommand."""
    parser = subparsers.add_parser(
        "validate",
        help="check a graph file and list every problem",
        description="Load a graph file, import its driver directories (their Python "
        "modules run: a graph file with [driver] is code; --no-import skips them), check "
        "every node, port, edge and unit parameter, and print every problem found with "
        "its file:line:column. No flow runs. Exit code 1 when there are problems.",
    )
    add_file_arguments(parser)
    add_import_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Validate ``args.file``; print problems (exit 1) or a one-line summary (exit 0)."""
    out = Console(highlight=False, soft_wrap=True)
    try:
        graph = load_checked(
            args.file,
            allow_custom_code=args.allow_custom_code,
            import_drivers=not args.no_import,
        )
    except GraphError as exc:
        problems = problems_of(exc)
        if isinstance(exc, GraphSyntaxError):
            problems = [str(exc)]  # already names file:line:column
        noun = "problem" if len(problems) == 1 else "problems"
        out.print(f"[bold red]{args.file}: {len(problems)} {noun}[/]")
        for problem in problems:
            out.print(f"  - {problem}", markup=False)
        return 1
    kinds = {"input": 0, "output": 0, "unit": 0}
    for node in graph.nodes:
        kinds[node.kind] += 1
    out.print(
        f"[green]ok[/] {args.file}: graph {graph.name!r}, {kinds['unit']} units, "
        f"{len(graph.edges)} edges, {kinds['input']} inputs, {kinds['output']} outputs",
        markup=True,
    )
    notice = driver_notice(graph, imported=not args.no_import)
    if notice:
        out.print(f"  note: {notice}", markup=False)
    return 0
