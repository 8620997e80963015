"""Graph loaders in linear time: load time at 1k, 4k and 10k nodes, as JSON.

Each form is a chain ``input -> n0 -> ... -> output`` of N nodes in all (N - 2
``resize`` nodes with three attributes each; N steps for the workflow): a ModelBox
TOML holding a DOT ``graphconf``, the same DOT text alone, the dict form as JSON, and
a workflow JSON. Reported per form and size:
the median wall and CPU time of ``--rounds`` runs (``load_graph`` on the text:
parsing, positions, compiling, validation of the values) and the CPU time per node,
which stays flat when the loader is linear (10k over 1k close to 10). For comparison,
in the same run: pydot's parser (the one actorflow used before) on the 1k-node DOT
text only, since at 10k it takes tens of seconds.

Goal (issue 10): a 10,000-node DOT graph loads in under 1 s; time per node flat.

Run: ``python benchmarks/loaders.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

from actorflow.errors import GraphError
from actorflow.graph import load_graph

SIZES = (1000, 4000, 10_000)


def dot_text(n: int) -> str:
    lines = ["digraph chain {", "  input [type=input]", "  output [type=output]"]
    lines += [f"  n{i} [flowunit=resize, width=224, height=224]" for i in range(n - 2)]
    lines.append("  " + " -> ".join(["input", *(f"n{i}" for i in range(n - 2)), "output"]))
    return "\n".join([*lines, "}"])


def toml_text(n: int) -> str:
    return f"[graph]\nformat = \"graphviz\"\ngraphconf = '''{dot_text(n)}'''\n"


def dict_text(n: int) -> str:
    nodes: dict[str, Any] = {"input": {"type": "input"}, "output": {"type": "output"}}
    units = range(n - 2)
    nodes.update({f"n{i}": {"flowunit": "resize", "width": 224, "height": 224} for i in units})
    chain = ["input", *(f"n{i}" for i in units), "output"]
    edges = [f"{a} -> {b}" for a, b in itertools.pairwise(chain)]
    return json.dumps({"name": "chain", "nodes": nodes, "edges": edges})


def workflow_text(n: int) -> str:
    steps = [
        {
            "type": "core/resize@v1",
            "name": f"s{i}",
            "image": "$inputs.image" if i == 0 else f"$steps.s{i - 1}.image",
            "width": 4,
        }
        for i in range(n - 2)
    ]
    return json.dumps(
        {
            "version": "1.0",
            "inputs": [{"type": "WorkflowImage", "name": "image"}],
            "steps": steps,
            "outputs": [{"type": "JsonField", "name": "o", "selector": f"$steps.s{n - 3}.image"}],
        },
        separators=(",", ":"),
    )


FORMS: dict[str, tuple[Callable[[int], str], str]] = {
    "modelbox_toml": (toml_text, "toml"),
    "dot": (dot_text, "dot"),
    "dict_json": (dict_text, "json"),
    "workflow_json": (workflow_text, "json"),
}


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, float, str]:
    """Median wall and CPU seconds of ``rounds`` calls (CPU time is what a busy machine
    distorts least), and whether the document loaded."""
    walls, cpus, outcome = [], [], "loaded"
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            fn()
        except GraphError as exc:
            outcome = f"refused: {str(exc)[:80]}"
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus), outcome


def pydot_seconds(n: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pydot.dot_parser import GraphParser

    text = dot_text(n)
    started = time.perf_counter()
    GraphParser.parser.parse_string(text, parse_all=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for form, (make, fmt) in FORMS.items():
        rows = {}
        for n in SIZES:
            text = make(n)
            seconds, cpu, outcome = timed(
                lambda t=text, f=fmt: load_graph(t, format=f), args.rounds
            )
            rows[str(n)] = {
                "bytes": len(text.encode()),
                "seconds": round(seconds, 4),
                "cpu_seconds": round(cpu, 4),
                "cpu_us_per_node": round(1e6 * cpu / n, 1),
                "outcome": outcome,
            }
        first, last = rows[str(SIZES[0])], rows[str(SIZES[-1])]
        rows["cpu_growth_10k_over_1k"] = round(last["cpu_seconds"] / first["cpu_seconds"], 1)
        results[form] = rows
    pydot = pydot_seconds(SIZES[0])  # wall time, like the "seconds" it is compared with
    doc = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rounds": args.rounds,
        "results": results,
        "pydot_parse_1k_seconds": round(pydot, 3),
        "pydot_over_actorflow_dot_1k": round(pydot / results["dot"]["1000"]["seconds"], 1),
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
