"""Instructions per message per hop, counted by valgrind's callgrind (repeatable under load).

Wall-clock hop figures on a shared 2-core machine move with the other jobs; instruction
counts do not. Each variant of ``benchmarks/hops.py`` runs in a fresh process under
``valgrind --tool=callgrind`` twice, with a small and a large message count, and the
difference of the two totals (every thread and forked process of the run, summed) is
divided by the extra messages and the five hops: start-up and teardown cancel out.

Instruction counts measure work, not waiting: a thread or process hand-off costs a
few thousand instructions but also a kernel wake-up and a context switch, which
callgrind does not see (and valgrind runs one thread at a time). Read them next to the
wall-clock figures, never instead of them.

    python benchmarks/callgrind_hops.py [--variants asyncio_queue actorflow_async ...]
        [--messages 8000] [--source DIR]

``--source DIR`` imports ``actorflow`` from another checkout (an older commit) to
compare before and after on the same machine. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOPS = 5
SLOW = {"actorflow_thread": 5, "mp_queue": 10, "anyio_stream": 4}
"""Variants run on 1/N of the messages (they are slower under valgrind)."""
SNIPPET = """
import asyncio, sys
sys.path.insert(0, {source!r})
sys.path.insert(0, {here!r})
import structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
import actorflow, hops
assert actorflow.__file__.startswith({source!r}), actorflow.__file__
asyncio.run(hops.VARIANTS[{variant!r}]({n}))
"""


def instructions(variant: str, n: int, source: Path) -> int:
    """Total instructions (Ir) of one run of ``variant`` on ``n`` messages."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        msg = "valgrind is not installed: apt-get install -y valgrind"
        raise SystemExit(msg)
    code = SNIPPET.format(source=str(source), here=str(HERE), variant=variant, n=n)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.%p",
                sys.executable,
                "-c",
                code,
            ],
            check=True,
            cwd=tmp,  # not the repository: ``--source`` decides which actorflow loads
            env={**os.environ, "PYTHONHASHSEED": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        total = 0
        for out in Path(tmp).glob("cg.*"):
            found = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
            if found:
                total += int(found.group(1))
        return total


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--variants",
        nargs="*",
        default=[
            "asyncio_queue",
            "actorflow_async",
            "actorflow_class",
            "actorflow_thread",
            "mp_queue",
        ],
    )
    parser.add_argument("--messages", type=int, default=8_000)
    parser.add_argument("--source", type=Path, default=HERE.parent)
    args = parser.parse_args()
    per_hop: dict[str, float] = {}
    for variant in args.variants:
        large = args.messages // SLOW.get(variant, 1)
        small = large // 4
        extra = instructions(variant, large, args.source) - instructions(
            variant, small, args.source
        )
        per_hop[variant] = extra / (large - small) / HOPS
    base = per_hop.get("asyncio_queue")
    return {
        "benchmark": "callgrind_hops",
        "source": str(args.source.resolve()),
        "messages": args.messages,
        "instructions_per_message_per_hop": {k: round(v) for k, v in per_hop.items()},
        "ratios_to_asyncio_queue": {
            k: round(v / base, 3) for k, v in per_hop.items() if base and k != "asyncio_queue"
        },
    }


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
