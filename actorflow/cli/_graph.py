"""``actorflow graph FILE --format dot|mermaid|svg|png``: render a graph file.

SVG and PNG are drawn by graphviz's ``dot`` program (Debian package ``graphviz``, which
``make`` installs where it can).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from actorflow.cli._common import add_file_arguments, load_checked, problems_of
from actorflow.errors import GraphError, GraphValidationError
from actorflow.graph import Graph, load_graph
from actorflow.graph._formats import to_dot, to_mermaid


def register(subparsers: Any) -> None:
    """Add the ``graph`` subcommand."""
    parser = subparsers.add_parser(
        "graph",
        help="render a graph file as DOT, Mermaid, SVG or PNG",
        description="Print the graph as graphviz DOT (a ModelBox graphconf that loads back, "
        "driver directories included) or as a Mermaid flowchart, or draw it as SVG or PNG "
        "with graphviz's dot program. Ports are resolved when the graph validates; "
        "a graph with problems is drawn as written.",
    )
    add_file_arguments(parser)
    parser.add_argument(
        "--format",
        choices=("dot", "mermaid", "svg", "png"),
        default="dot",
        help="output format (default: dot; svg and png need graphviz)",
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
    if args.format in ("svg", "png"):
        try:
            image = draw(to_dot(graph), args.format)
        except DrawError as exc:
            print(f"actorflow graph: {exc}", file=sys.stderr)
            return 1
        if args.output:
            Path(args.output).write_bytes(image)
        else:
            sys.stdout.buffer.write(image)
        return 0
    text = to_dot(graph) if args.format == "dot" else to_mermaid(graph)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


class DrawError(RuntimeError):
    """graphviz is missing or could not draw the graph; the message says what to do."""


def draw(dot_text: str, fmt: str) -> bytes:
    """Render DOT text as ``svg`` or ``png`` bytes with graphviz's ``dot`` program.

    Raises:
        DrawError: ``dot`` is not installed, or it failed (its message included).
    """
    program = shutil.which("dot")
    if program is None:
        msg = (
            f"drawing {fmt.upper()} needs graphviz's 'dot' program: install it "
            "(apt-get install graphviz; 'make' does it where it can), or use --format dot "
            "and draw it elsewhere"
        )
        raise DrawError(msg)
    done = subprocess.run(
        [program, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=60, check=False
    )
    if done.returncode != 0:
        msg = f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}"
        raise DrawError(msg)
    return done.stdout


def _graph(args: argparse.Namespace) -> Graph:
    try:
        return load_checked(args.file, allow_custom_code=args.allow_custom_code)
    except GraphValidationError:
        return load_graph(args.file, allow_custom_code=args.allow_custom_code or None)
