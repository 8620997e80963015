"""The benchmark tables of ``docs/benchmarks.md`` are rendered from stored results.

``benchmarks/run.py`` stores each script's JSON in ``benchmarks/results/`` with the
machine; ``benchmarks/render.py`` writes the tables. These tests keep the page in step
with the stored results and check that every figure is a ratio against the baseline of
the same run. No benchmark runs here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "benchmark": "hops",
        "command": "python benchmarks/hops.py --rounds 3",
        "quick": False,
        "started_utc": "2026-11-28T23:50:00+00:00",
        "load_average_before": [3.0, 2.0, 1.0],
        "commit": "abc1234",
        "machine": {"cpu": "Test CPU", "cores": 2, "memory_gib": 8.0, "python": "CPython 3.11"},
        "result": result,
    }


def test_the_page_is_up_to_date_with_the_stored_results() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "render.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_hop_ratios_are_taken_against_the_baseline_of_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render = load("render")
    monkeypatch.setattr(render, "RESULTS", tmp_path)
    result = {
        "rounds": 3,
        "hops": 5,
        "queue_size": 32,
        "us_per_message_per_hop_median": {
            "asyncio_queue": 2.0,
            "actorflow_async": 1.0,
            "actorflow_thread": 6.0,
            "mp_queue": 12.0,
        },
        "us_per_message_per_hop_rounds": {
            "asyncio_queue": [2.0, 1.9, 2.5],
            "actorflow_async": [1.0, 0.9, 1.2],
            "actorflow_thread": [6.0, 5.0, 7.0],
            "mp_queue": [12.0, 11.0, 13.0],
        },
    }
    (tmp_path / "hops.json").write_text(json.dumps(record(result)))
    page = "before\n<!-- generated:hops -->\nold table\n<!-- end:hops -->\nafter\n"
    out = render.render(page)
    assert out.startswith("before\n<!-- generated:hops -->\n")
    assert out.endswith("<!-- end:hops -->\nafter\n")
    assert "old table" not in out
    assert "| 0.50 x asyncio_queue |" in out
    assert "| 0.50 x mp_queue |" in out
    assert "| 0.90-1.20 |" in out  # the spread of the rounds next to the median
    assert "Test CPU, 2 cores" in out
    assert "load average 3.0" in out
    assert "`python benchmarks/hops.py --rounds 3`" in out


def test_a_missing_or_failed_run_says_so_instead_of_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render = load("render")
    monkeypatch.setattr(render, "RESULTS", tmp_path)
    page = "<!-- generated:pipeline -->\n<!-- end:pipeline -->\n"
    assert "Not measured yet" in render.render(page)
    failed = {**record({}), "error": ["Traceback ..."]}
    (tmp_path / "pipeline.json").write_text(json.dumps(failed))
    assert "The last run failed" in render.render(page)


def test_unknown_sections_are_left_alone() -> None:
    render = load("render")
    page = "<!-- generated:nothing -->\nkeep\n<!-- end:nothing -->\n"
    assert render.render(page) == page


def test_runner_describes_the_machine() -> None:
    machine = load("run").machine()
    assert machine["cores"] >= 1
    assert machine["python"].startswith("CPython 3.")
    assert set(machine["packages"]) >= {"anyio", "numpy", "onnxruntime"}


def test_pipeline_figures_and_the_core_budget_come_from_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    render = load("render")
    monkeypatch.setattr(render, "RESULTS", tmp_path)
    result = {
        "frames": 150,
        "rounds": 5,
        "configs": {
            "intra2_batched": {
                "label": "intra-op 2, batching",
                "fps_median": {
                    "raw_ort": 800.0,
                    "raw_ort_batched": 850.0,
                    "sequential": 350.0,
                    "actorflow": 425.0,
                },
                "actorflow_vs_raw_ort": 0.531,
                "actorflow_vs_raw_ort_batched": 0.5,
                "actorflow_vs_sequential": 1.214,
                "actorflow_vs_bound": 0.85,
            }
        },
        "core_budget": {
            "cores": 2,
            "core_ms_per_frame": {
                "preprocess": 1.5,
                "postprocess": 0.001,
                "infer_1t_batch1": 2.5,
                "infer_2t_batch": 2.7,
            },
            "pipeline_core_ms_per_frame": 4.0,
            "bound_fps": 500.0,
            "raw_ort_batched_intra2_fps": 850.0,
            "bound_vs_raw_ort_batched": 0.588,
        },
    }
    stored = {**record(result), "benchmark": "pipeline", "load_average_after": [2.5, 2.0, 1.0]}
    (tmp_path / "pipeline.json").write_text(json.dumps(stored))
    out = render.render("<!-- generated:pipeline -->\n<!-- end:pipeline -->\n")
    assert "| x two-core bound |" in out
    assert "| 425 | 0.53 | 0.50 | 1.21 | 0.85 |" in out
    assert "at most 500 frames/s" in out
    assert "0.59 x raw ORT at intra-op 2" in out
    assert "Load average when the run ended: 2.5." in out


def test_the_core_budget_counts_every_stage_at_the_cheaper_inference() -> None:
    pipeline = load("pipeline")
    ms = {"preprocess": 1.5, "postprocess": 0.5, "infer_1t_batch1": 2.5, "infer_2t_batch": 3.0}
    budget = pipeline.budget(ms, 800.0)
    cores = budget["cores"]
    assert budget["pipeline_core_ms_per_frame"] == 4.5  # 1.5 + 0.5 + min(2.5, 3.0)
    assert budget["bound_fps"] == round(cores * 1000 / 4.5, 1)
    assert budget["bound_vs_raw_ort_batched"] == round(cores * 1000 / 4.5 / 800.0, 3)
