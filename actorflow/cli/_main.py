"""The argument parser: one subcommand module per verb, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence
from types import ModuleType

from actorflow._version import __version__
from actorflow.cli import configure_logging

SUBCOMMANDS = ("_run", "_validate", "_graph", "_serve", "_create", "_gallery")
"""Subcommand modules, in ``--help`` order; one that is not installed yet is skipped."""

DESCRIPTION = """\
actorflow runs AI inference flow graphs: each node of a graph is an async actor,
edges are bounded queues, and models run on their own threads.

A graph file is one of:
  * a ModelBox file: TOML or JSON with [graph] graphconf = '''digraph { ... }'''
  * a workflow JSON: {"inputs", "steps", "outputs"} with $inputs.x / $steps.s.field
  * the dict form:   {"nodes": {...}, "edges": [...]} as TOML or JSON

Start here:
  actorflow validate graphs/hello.toml      check a graph, listing every problem
  actorflow run graphs/hello.toml           run it; progress, then per-node statistics
  actorflow graph graphs/hello.toml --format mermaid
"""

EPILOG = """\
exit codes: 0 success, 1 the graph is invalid or the run failed, 2 bad command line,
3 the run hit --timeout and was stopped.
Docs: docs/how-to/graph-files.md, docs/reference/cli.md, docs/reference/graph-format.md
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``actorflow`` parser, with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="actorflow",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"actorflow {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in _subcommand_modules():
        module.register(subparsers)
    return parser


def run_cli(argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run the chosen subcommand."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    # Warnings and errors to stderr, so that stdout carries only the command's output;
    # `run` reconfigures this for its --json and --verbose options.
    configure_logging(json=False, level=logging.WARNING)
    if handler is None:
        parser.print_help()
        return 2
    code: int = handler(args)
    return code


def _subcommand_modules() -> list[ModuleType]:
    modules = []
    for name in SUBCOMMANDS:
        qualified = f"{__package__}.{name}"
        try:
            modules.append(importlib.import_module(qualified))
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise  # the module exists but something it imports is missing: say so
    return modules
