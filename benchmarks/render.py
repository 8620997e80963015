"""Write the generated tables of ``docs/benchmarks.md`` from ``benchmarks/results/*.json``.

Every table is rendered from one stored run (``benchmarks/run.py``): each figure next to
the baseline measured in the same run, as a ratio, medians over interleaved rounds,
under a line naming the machine, the load average, the date, the commit and the
command. A table sits between ``<!-- generated:NAME -->`` and ``<!-- end:NAME -->``;
everything outside those markers is left alone.

    python benchmarks/render.py [--check]

``--check`` changes nothing and exits 1 when the page is out of date with the results
(``tests/test_benchmarks_render.py`` runs it).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAGE = HERE.parent / "docs" / "benchmarks.md"
SECTION = re.compile(r"(<!-- generated:(\w+) -->\n)(.*?)(<!-- end:\2 -->)", re.DOTALL)

HOP_LABELS = {
    "asyncio_queue": "`asyncio.Queue(32)` chain",
    "actorflow_async": "actorflow, async `@flowunit`",
    "actorflow_class": "actorflow, `FlowUnit` class",
    "actorflow_thread": "actorflow, plain `def` `@flowunit` (worker threads)",
    "actorflow_thread_replicas": "actorflow, plain `def` `@flowunit`, two replicas per stage",
    "mp_queue": "`multiprocessing.JoinableQueue(32)`, one process per stage",
    "anyio_stream": "anyio memory object streams",
    "deque_chain": "floor: deques alone (nothing but the hand-off)",
    "function_floor": "floor: `await fn(data)` + a new `Packet` per hop",
    "function_floor_reused": "floor: `await fn(data)`, the input packet reused",
    "class_floor": "floor: `await unit.process(ctx, p)` awaiting `ctx.emit(port, p)`",
}


def header(record: dict[str, Any]) -> list[str]:
    """The line that says where and how the figures were measured."""
    m = record["machine"]
    load = record["load_average_before"]
    quick = " **Quick smoke run: too few rounds to read.**" if record.get("quick") else ""
    return [
        f"Measured {record['started_utc'].replace('T', ' ')[:16]} UTC on {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gib']} GiB, {m['python']}; load average "
        f"{load[0]:.1f} when it started (other jobs share the machine), commit "
        f"`{record['commit']}`: `{record['command']}`.{quick}",
        "",
    ]


def hops(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    medians = result["us_per_message_per_hop_median"]
    rounds = result["us_per_message_per_hop_rounds"]
    baselines = {
        "actorflow_async": "asyncio_queue",
        "actorflow_class": "asyncio_queue",
        "anyio_stream": "asyncio_queue",
        "actorflow_thread": "mp_queue",
        "actorflow_thread_replicas": "mp_queue",
    }
    lines = [
        f"{result['rounds']} interleaved rounds, medians, µs per message per hop "
        f"({result['hops']} hand-offs, mailboxes of {result['queue_size']}):",
        "",
        "| chain | µs per hop (median) | rounds | x its baseline | median of round ratios |",
        "|---|---:|---:|---:|---:|",
    ]
    paired = result.get("ratios_paired_median", {})
    for name, value in medians.items():
        base = baselines.get(name)
        ratio = f"{value / medians[base]:.2f} x {base}" if base in medians else "baseline"
        by_round = paired.get(f"{name}_to_{base}")
        by_round_text = f"{by_round:.2f}" if by_round is not None else "-"
        spread = f"{min(rounds[name]):.2f}-{max(rounds[name]):.2f}"
        lines.append(
            f"| {HOP_LABELS.get(name, name)} | {value:.2f} | {spread} | {ratio} | {by_round_text} |"
        )
    latency = result.get("single_item_latency_median")
    if latency:
        lines += [
            "",
            f"One item alone through a one-node flow with a plain `def` unit (send, then "
            f"wait for its result): {latency['one_item_through_thread_unit_us']:.0f} µs "
            f"median, against {latency['raw_executor_round_trip_us']:.0f} µs for a bare "
            "`run_in_executor` round trip on one thread.",
        ]
    return lines


def callgrind_hops(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    counts = result["instructions_per_message_per_hop"]
    ratios = result["ratios_to_asyncio_queue"]
    lines = [
        "Instructions per message per hop, counted by callgrind (the same on a busy "
        "machine; kernel wake-ups and waiting are not counted):",
        "",
        "| chain | instructions per hop | x asyncio.Queue |",
        "|---|---:|---:|",
    ]
    for name, value in counts.items():
        ratio = f"{ratios[name]:.2f}" if name in ratios else "1"
        lines.append(f"| {HOP_LABELS.get(name, name)} | {value:,} | {ratio} |")
    return lines


def hop_floor(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    medians, ratios = result["medians_us"], result["ratios_to_asyncio_queue"]
    lines = [
        f"{result['rounds']} interleaved rounds, medians, µs per message per hop; hand-written "
        "chains of the same shape with no statistics, ledger, markers or failure handling:",
        "",
        "| chain | µs per hop (median) | x asyncio.Queue |",
        "|---|---:|---:|",
    ]
    for name, value in medians.items():
        lines.append(f"| {HOP_LABELS.get(name, name)} | {value:.3f} | {ratios[name]:.2f} |")
    return lines


def pipeline(record: dict[str, Any]) -> list[str]:
    result = record["result"]
    budget = result.get("core_budget")
    bound = " | x two-core bound" if budget else ""
    lines = [
        f"{result['frames']} frames per round, {result['rounds']} interleaved rounds, "
        "medians, frames per second; each configuration against raw onnxruntime with the "
        "same threads (batch 1, and stacked batches where the configuration batches):",
        "",
        "| configuration | raw ORT | raw ORT, batched | sequential | actorflow "
        f"| x raw ORT | x raw ORT batched | x sequential{bound} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if budget else ""),
    ]
    for name, c in result["configs"].items():
        fps = c["fps_median"]
        batched = fps.get("raw_ort_batched")
        vs_batched = c.get("actorflow_vs_raw_ort_batched")
        vs_bound = f" {c['actorflow_vs_bound']:.2f} |" if budget else ""
        lines.append(
            f"| {c.get('label', name)} | {fps['raw_ort']:.0f} | "
            f"{f'{batched:.0f}' if batched else '—'} | {fps['sequential']:.0f} | "
            f"{fps['actorflow']:.0f} | {c['actorflow_vs_raw_ort']:.2f} | "
            f"{f'{vs_batched:.2f}' if vs_batched else '—'} | "
            f"{c['actorflow_vs_sequential']:.2f} |{vs_bound}"
        )
    if budget:
        ms = budget["core_ms_per_frame"]
        lines += [
            "",
            f"Core time per frame, same run: preprocessing {ms['preprocess']:.2f} ms, "
            f"postprocessing {ms['postprocess']:.3f} ms, inference "
            f"{ms['infer_1t_batch1']:.2f} ms (1 thread, batch 1) or "
            f"{ms['infer_2t_batch']:.2f} ms (2 threads, stacked batches). At the cheaper "
            f"inference a whole frame costs {budget['pipeline_core_ms_per_frame']:.2f} ms, "
            f"so {budget['cores']} cores give any pipeline at most "
            f"{budget['bound_fps']:.0f} frames/s (the two-core bound): "
            f"{budget['bound_vs_raw_ort_batched']:.2f} x raw ORT at intra-op 2 in stacked "
            "batches, which preprocesses nothing.",
        ]
    after = record.get("load_average_after")
    if after:
        lines += ["", f"Load average when the run ended: {after[0]:.1f}."]
    used = [
        x for c in result["configs"].values() for x in c.get("other_processes_cores_rounds", [])
    ]
    if used:
        lines[-1] += (
            f" Each measurement started once other processes were quiet (waited "
            f"{result.get('waited_for_quiet_s', 0):.0f} s in all); during the "
            f"measurements they used {sorted(used)[len(used) // 2]:.2f} cores (median), "
            f"{max(used):.2f} at most."
        )
    return lines


RENDERERS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "hops": hops,
    "callgrind_hops": callgrind_hops,
    "hop_floor": hop_floor,
    "pipeline": pipeline,
}


def section(name: str) -> str:
    """The generated text of one section."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return f"Not measured yet: run `make bench` (or `python benchmarks/run.py {name}`).\n"
    record = json.loads(path.read_text())
    if "error" in record:
        return f"The last run failed: `{record['command']}`.\n"
    return "\n".join([*header(record), *RENDERERS[name](record)]) + "\n"


def render(page: str) -> str:
    """``page`` with every generated section rewritten."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in RENDERERS:
            return match.group(0)
        return f"{match.group(1)}{section(name)}{match.group(4)}"

    return SECTION.sub(replace, page)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = parser.parse_args()
    old = PAGE.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print(f"{PAGE} is out of date: run python benchmarks/render.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
