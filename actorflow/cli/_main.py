"""The argument parser: one subcommand module per verb, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from actorflow._version import __version__
from actorflow.cli import LOG_FORMATS, configure_logging

SUBCOMMANDS = ("_run", "_validate", "_graph", "_units", "_serve", "_create", "_gallery")
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
    for command in subparsers.choices.values():
        add_logging_arguments(command)
    return parser


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    """``-v``, ``--log-level`` and ``--log-format``, which every subcommand accepts."""
    group = parser.add_argument_group(
        "logging (to standard error; warnings and errors only by default)"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show every log event, debug included (node_opened, flow_stopped, ...)",
    )
    group.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default=None,
        help="the lowest level of log events shown (default: warning; -v: debug)",
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=None,
        help="console lines (default) or one JSON object per event",
    )


def _log_level(args: argparse.Namespace) -> int:
    if args.log_level is not None:
        return int(getattr(logging, args.log_level.upper()))
    return logging.DEBUG if args.verbose else logging.WARNING


def _log_json(args: argparse.Namespace) -> bool:
    if args.log_format is not None:
        return bool(args.log_format == "json")
    return bool(getattr(args, "json", False))  # `run --json`, `serve --json`


def run_cli(argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run the chosen subcommand."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    # Log records go to stderr, so that stdout carries only the command's output.
    configure_logging(json=_log_json(args), level=_log_level(args))
    try:
        code: int = handler(args)
        sys.stdout.flush()
    except BrokenPipeError:
        return _stdout_closed()
    return code


def _stdout_closed() -> int:
    """The reader of stdout went away (``| head``): stop quietly, as Unix tools do.

    Python would report the unflushed output at exit; pointing stdout at /dev/null
    first makes that final flush harmless.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_STDOUT_CLOSED


EXIT_STDOUT_CLOSED = 141
"""128 + SIGPIPE: what a Unix tool killed by a closed pipe returns."""


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
