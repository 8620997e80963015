"""Quiet by default: the library logs through ``logging``; the CLI shows warnings unless asked.

Each CLI check runs ``actorflow`` in a subprocess, as a user would, so that nothing of
the test process's own logging set-up leaks in.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

ROOT = Path(__file__).resolve().parents[2]
HELLO = str(ROOT / "graphs" / "hello.toml")
CLI = [sys.executable, "-m", "actorflow"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env
    )


def test_run_prints_only_output_progress_and_statistics() -> None:
    out = cli("run", HELLO)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    values = [line for line in lines if line.startswith("value: ")]
    assert values == [f"value: {2 * i}" for i in range(20)]
    table = lines[len(values) :]
    assert "hello: stopped after" in table[0]
    assert all(not line.startswith("20") for line in lines)  # no timestamped log line
    for event in ("node_opened", "flow_started", "flow_stopped", "driver_module_loaded"):
        assert event not in out.stdout + out.stderr
    assert "20/20 items" in out.stderr  # the progress bar


def test_verbose_adds_the_debug_events_on_stderr_only() -> None:
    out = cli("run", HELLO, "-v")
    assert out.returncode == 0, out.stderr
    for event in ("node_opened", "flow_started", "flow_stopped"):
        assert event in out.stderr
        assert event not in out.stdout
    assert "pydot" not in out.stderr  # other libraries stay at warnings


def test_log_format_json_gives_one_object_per_line() -> None:
    out = cli("run", HELLO, "--log-level", "info", "--log-format", "json")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    names = {e["event"] for e in events}
    assert {"flow_started", "flow_stopped"} <= names
    assert "node_opened" not in names  # a debug event, below --log-level info
    started = next(e for e in events if e["event"] == "flow_started")
    assert (started["flow"], started["level"], started["logger"]) == (
        "hello",
        "info",
        "actorflow.flow",
    )


def test_run_json_statistics_survive_a_closed_stdout() -> None:
    """`actorflow run --json | head -1`: no traceback, no failed packets, exit 0 or 141."""
    out = subprocess.run(
        ["bash", "-c", f"'{sys.executable}' -m actorflow run '{HELLO}' --json | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert out.stdout == "value: 0\n"
    assert "Traceback" not in out.stderr
    assert "packet_failed" not in out.stderr
    assert "BrokenPipe" not in out.stderr


def test_a_unit_printing_into_a_closed_pipe_stops_the_flow_quietly(tmp_path: Path) -> None:
    """A source of a million items printing into `head -3`: stops early, exit 141."""
    units = ROOT / "graphs" / "units"
    graph = tmp_path / "long.toml"
    graph.write_text(
        f'[driver]\ndir = ["{units}"]\n[graph]\nformat = "graphviz"\n'
        "graphconf = 'digraph { n [flowunit=hello_count, count=1000000];"
        " s [flowunit=hello_print]; n -> s }'\n"
    )
    script = (
        f"'{sys.executable}' -m actorflow run '{graph}' | head -3;"
        ' echo "rc=${PIPESTATUS[0]}" >&2'
    )
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.stdout.splitlines() == ["0", "1", "2"]
    assert "rc=141" in out.stderr
    assert "Traceback" not in out.stderr
    assert "node_restarted" not in out.stderr


def test_the_library_alone_writes_nothing_to_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    """No logging configured: a flow's debug and info events are not printed."""
    code = (
        "import asyncio, actorflow as af\n"
        f"flow = af.Flow({HELLO!r})\n"
        "async def main():\n"
        "    await flow.run_async(); await flow.wait()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"value: {2 * i}" for i in range(20)]
    assert out.stderr == ""


def test_events_reach_the_applications_logging_config() -> None:
    """A host application's `logging` handlers receive actorflow's events, fields attached."""
    code = (
        "import asyncio, logging, sys, actorflow as af\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout,"
        " format='%(name)s|%(levelname)s|%(message)s')\n"
        f"flow = af.Flow({HELLO!r})\n"
        "async def main():\n"
        "    await flow.run_async(); await flow.wait()\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert "actorflow.flow|INFO|flow_started flow='hello' nodes=3" in out.stdout
    assert any(
        line.startswith("actorflow.") and "|DEBUG|node_opened" in line
        for line in out.stdout.splitlines()
    )


def test_level_filtering_happens_before_rendering(caplog: pytest.LogCaptureFixture) -> None:
    """Below the logger's level an event is dropped; at it, its fields travel on the record."""
    logger = structlog.get_logger("actorflow.test_logging")
    with caplog.at_level(logging.ERROR, logger="actorflow.test_logging"):
        logger.warning("hidden_event", x=1)
        logger.error("shown_event", x=2)
    records = [r for r in caplog.records if r.name == "actorflow.test_logging"]
    assert [r.getMessage() for r in records] == ["shown_event x=2"]
    assert records[0].structlog == {"event": "shown_event", "x": 2}


def test_other_structlog_loggers_keep_structlog_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An application using structlog unconfigured still sees its own events printed."""
    code = "import structlog, actorflow\nstructlog.get_logger('myapp').info('app_event', n=1)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)  # structlog's default colours
    assert "app_event" in plain
    assert "n=1" in plain
