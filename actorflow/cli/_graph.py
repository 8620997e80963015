"""``actorflow graph FILE --format dot|mermaid``: render a graph file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from actorflow.cli._common import (
    add_file_arguments,
    add_import_argument,
    load_checked,
    problems_of,
)
from actorflow.errors import GraphError, GraphValidationError
from actorflow.graph import Graph, load_graph
from actorflow.graph._formats import to_dot, to_mermaid


def register(subparsers: Any) -> None:
    """Add the ``graph`` subcommand."""
    parser = subparsers.add_parser(
        "graph",
        help="render a graph file as DOT or Mermaid",
        description="Print the graph as graphviz DOT (a ModelBox graphconf that loads back) "
        "or as a Mermaid flowchart. Ports are resolved when the graph validates; "
        "a graph with problems is drawn as written. Validating imports the driver "
        "directories' modules (they run: a graph file with [driver] is code); "
        "--no-import draws the file as written without importing anything.",
    )
    add_file_arguments(parser)
    add_import_argument(parser)
    parser.add_argument(
        "--format", choices=("dot", "mermaid"), default="dot", help="output format (default: dot)"
    )
    parser.add_argument(
        "-o", "--output", metavar="PATH", help="write to PATH instead of standard output"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Render ``args.file``; exit 1 when it cannot be loaded at all."""
    try:
        graph = _graph(args)
    except GraphError as exc:
        for problem in problems_of(exc):
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 1
    text = to_dot(graph) if args.format == "dot" else to_mermaid(graph)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _graph(args: argparse.Namespace) -> Graph:
    if args.no_import:
        return load_graph(args.file, allow_custom_code=args.allow_custom_code or None)
    try:
        return load_checked(args.file, allow_custom_code=args.allow_custom_code)
    except GraphValidationError:
        return load_graph(args.file, allow_custom_code=args.allow_custom_code or None)
