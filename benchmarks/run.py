"""Run benchmark scripts and store each one's JSON in ``benchmarks/results/``.

Each script prints one JSON object whose figures are ratios against a baseline measured
in the same run. This runner stores it as ``benchmarks/results/<name>.json`` together
with the description of the machine it ran on (CPU model, cores, memory, versions), the
load average before and after (the machine may be shared), the commit and the command.
``benchmarks/render.py`` then writes the tables of ``docs/benchmarks.md`` from those files.

    python benchmarks/run.py [NAME ...] [--quick]

Names: see ``SCRIPTS`` (default: all). ``--quick`` runs fewer rounds and messages (a
smoke run; its figures are marked as such in the tables).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    # name: (full arguments, --quick arguments)
    "hops": (["--rounds", "15", "--messages", "60000"], ["--rounds", "2", "--messages", "20000"]),
    "callgrind_hops": ([], ["--messages", "2000"]),
    "hop_floor": (["--rounds", "7"], ["--rounds", "1", "--messages", "20000"]),
    "pipeline": (["--rounds", "5", "--frames", "150"], ["--rounds", "1", "--frames", "40"]),
    "backpressure": ([], []),
    "stop": ([], []),
    "serve": ([], ["--rounds", "1"]),
    "wrapper": ([], ["--rounds", "1"]),
    "face": ([], ["--rounds", "1"]),
    "dashboard": ([], ["--rounds", "1"]),
    "scaleout": ([], []),
}
PACKAGES = ("anyio", "numpy", "onnxruntime", "opencv-python", "aiohttp")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    memory_gib = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": versions,
    }


def commit() -> str | None:
    """The checkout's commit, with ``+dirty`` when it has uncommitted changes."""
    git = shutil.which("git")
    if git is None:
        return None
    head = subprocess.run(
        [git, "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    if head.returncode:
        return None
    dirty = subprocess.run(
        [git, "-C", str(HERE.parent), "status", "--porcelain", "actorflow", "benchmarks"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return head.stdout.strip() + ("+dirty" if dirty else "")


def run(name: str, quick: bool) -> dict[str, Any]:
    """Run one script; return the stored record."""
    full, short = SCRIPTS[name]
    command = [sys.executable, str(HERE / f"{name}.py"), *(short if quick else full)]
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    json_file = RESULTS / f".{name}.out.json"
    if name == "serve":  # prints a text report; its JSON goes to a file
        command += ["--json", str(json_file)]
    done = subprocess.run(command, capture_output=True, text=True)
    record: dict[str, Any] = {
        "benchmark": name,
        "command": " ".join(["python", f"benchmarks/{name}.py", *command[2:]]),
        "quick": quick,
        "started_utc": started.isoformat(timespec="seconds"),
        "seconds": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "commit": commit(),
        "machine": machine(),
    }
    if done.returncode:
        record["error"] = done.stderr.strip().splitlines()[-20:]
        return record
    if json_file.exists():
        record["result"] = json.loads(json_file.read_text())
        json_file.unlink()
    else:
        record["result"] = json.loads(done.stdout[done.stdout.find("{") :])
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(SCRIPTS)}")
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in SCRIPTS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(SCRIPTS)}")
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for name in args.names or list(SCRIPTS):
        record = run(name, args.quick)
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        status = "FAILED" if "error" in record else "ok"
        failed += "error" in record
        print(f"{name}: {status} in {record['seconds']} s -> {path.relative_to(HERE.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
