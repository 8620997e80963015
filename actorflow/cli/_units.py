"""``actorflow units [NAME ...]``: every registered unit, with ports, parameters and docs.

``actorflow units --markdown`` prints ``docs/reference/units.md`` (the built-in units);
a test fails when the file differs from what this prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from actorflow.errors import GraphError, UnitNotFoundError
from actorflow.graph import load_graph, suggest
from actorflow.unit import default_registry, load_driver_dirs
from actorflow.unit._describe import UnitDoc, describe_all, markdown, text

REFERENCE_TITLE = "Built-in units"
REFERENCE_INTRO = """\
Every unit that ships with actorflow, with its ports, its parameters (graph files set
them as node attributes: `resize [flowunit=resize, width=224, height=224]`) and what it
does. Generated from the code by `actorflow units --markdown`; a test fails when this
page is out of date. `actorflow units NAME` prints one unit, and `actorflow units
--graph FILE` adds the units of a graph's driver directories.

Node attributes that every unit takes (`replicas`, `queue_size`, `batch_size`,
`batch_timeout`, `device`, `deviceid`) are described in the
[graph format reference](graph-format.md)."""


def register(subparsers: Any) -> None:
    """Add the ``units`` subcommand."""
    parser = subparsers.add_parser(
        "units",
        help="list the registered units, or describe some",
        description="List every registered unit: built-ins, units of installed packages "
        "(entry-point group actorflow.flowunits) and, with --graph or --dir, the units of "
        "driver directories. With NAME, describe that unit: ports, parameters "
        "(type, default, meaning) and docstring.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="units to describe")
    parser.add_argument(
        "--graph",
        type=Path,
        metavar="FILE",
        help="also load the driver directories of this graph file",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also load the unit modules of this driver directory (repeatable)",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the descriptions as JSON")
    out.add_argument(
        "--markdown",
        action="store_true",
        help="print the reference page of the built-in units (docs/reference/units.md)",
    )
    parser.set_defaults(handler=run)


def reference_markdown() -> str:
    """``docs/reference/units.md``: every unit shipped with actorflow."""
    return markdown(builtin_units(), title=REFERENCE_TITLE, intro=REFERENCE_INTRO)


def builtin_units() -> list[UnitDoc]:
    """Descriptions of the units defined inside the ``actorflow`` package."""
    names = default_registry.installed_names()
    units = describe_all(default_registry, names)
    return [u for u in units if u.defined_in.startswith("actorflow.")]


def run(args: argparse.Namespace) -> int:
    """List or describe units; exit 1 for an unknown name or a graph that cannot load."""
    try:
        _load_extra(args)
    except GraphError as exc:
        print(f"actorflow units: {exc}", file=sys.stderr)
        return 1
    if args.markdown:
        sys.stdout.write(reference_markdown())
        return 0
    known = sorted(default_registry.names())
    unknown = [n for n in args.names if n not in known]
    for name in unknown:
        print(
            f"actorflow units: unknown unit {name!r}{suggest(name, known)} "
            f"(installed units: {', '.join(known)})",
            file=sys.stderr,
        )
    if unknown:
        return 1
    try:
        units = describe_all(default_registry, args.names or None)
    except UnitNotFoundError as exc:  # a declared unit whose module cannot be imported
        print(f"actorflow units: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([asdict(u) for u in units], indent=2))
    elif args.names:
        print("\n\n".join(text(u) for u in units))
    else:
        width = max(len(u.name) for u in units)
        for u in units:
            ports = (
                ", ".join(p.name for p in u.inputs) + " -> " + ", ".join(p.name for p in u.outputs)
            )
            print(f"{u.name:<{width}}  {u.kind:<6}  {ports:<28}  {u.summary}")
    return 0


def _load_extra(args: argparse.Namespace) -> None:
    if args.graph is not None:
        graph = load_graph(args.graph)
        if graph.driver_dirs:
            load_driver_dirs(graph.driver_dirs, base_dir=graph.base_dir, source=graph.source)
    for directory in args.dir:
        load_driver_dirs([directory.resolve()], base_dir=Path.cwd(), source="--dir")
