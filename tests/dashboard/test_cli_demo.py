"""``actorflow run GRAPH --dashboard`` and ``python -m actorflow.demo --dashboard``, as
subprocesses a user would start, watched over HTTP and ended with Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from actorflow.cli import main

UNITS = """\
from collections.abc import AsyncIterator

import anyio
import numpy as np

from actorflow.unit import source


@source(name="dash_cli_frames", outputs=["frame"])
async def dash_cli_frames() -> AsyncIterator[np.ndarray]:
    while True:
        await anyio.sleep(0.02)  # a camera's pace
        yield np.full((48, 64, 3), 90, np.uint8)
"""

GRAPH = """\
[driver]
dir = 'units'
[graph]
graphconf = '''digraph cam {
  cam  [flowunit=dash_cli_frames]
  live [flowunit=dashboard, title="camera"]
  cam:frame -> live:image
}'''
"""


@pytest.fixture
def camera_graph(tmp_path: Path) -> Path:
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "dash_cli_units.py").write_text(UNITS)
    (tmp_path / "cam.toml").write_text(GRAPH)
    return tmp_path / "cam.toml"


async def read_until(stream: asyncio.StreamReader, marker: str) -> str:
    seen = []
    while True:
        line = (await stream.readline()).decode()
        if not line:
            msg = f"process ended before printing {marker!r}: {''.join(seen)[-2000:]}"
            raise AssertionError(msg)
        seen.append(line)
        if marker in line:
            return line


@pytest.mark.anyio
@pytest.mark.usefixtures("no_leftover_tasks")
async def test_run_with_dashboard_serves_the_running_flow_until_ctrl_c(
    camera_graph: Path,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "actorflow",
        "run",
        str(camera_graph),
        "--dashboard",
        "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = await read_until(proc.stderr, "dashboard: ")
        url = line.split("dashboard: ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/dashboard")
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert response.status == 200
            async with http.ws_connect(url + "/ws") as ws:
                assert (await ws.receive_json())["graph"]["nodes"][1]["id"] == "live"
                while (await ws.receive()).type is not aiohttp.WSMsgType.BINARY:
                    pass
            async with http.get(url + "/stats") as response:
                stats = await response.json()
        assert stats["flow"]["state"] == "running"
        assert stats["streams"][0]["title"] == "camera"
        proc.send_signal(signal.SIGINT)
        out, _ = await proc.communicate()
        assert proc.returncode == 0
        assert b"cam: stopped" in out
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_a_busy_dashboard_port_fails_before_the_flow_starts(
    camera_graph: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["run", str(camera_graph), "--dashboard", f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert f"cannot serve the dashboard on 127.0.0.1:{port}" in err
    assert "--dashboard 0" in err


def test_a_bad_dashboard_address_is_a_usage_error(
    camera_graph: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(camera_graph), "--dashboard", "localhost:http"])
    assert exit_.value.code == 2
    assert "HOST:PORT" in capsys.readouterr().err


@pytest.mark.anyio
@pytest.mark.usefixtures("no_leftover_tasks")
@pytest.mark.slow
async def test_the_demo_prints_the_url_checks_faces_and_stays_up_until_ctrl_c(
    tmp_path: Path,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "actorflow.demo",
        "--dashboard",
        "127.0.0.1:0",
        "--frames",
        "8",
        "--out",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        url = (await read_until(proc.stdout, "dashboard: ")).split("dashboard: ")[1].strip()
        await read_until(proc.stdout, "demo OK")
        await read_until(proc.stdout, "press Ctrl-C to exit")
        async with aiohttp.ClientSession() as http, http.get(url + "/stats") as response:
            stats = await response.json()
        assert stats["flow"]["state"] == "stopped"
        assert stats["flow"]["balanced"]
        stream = stats["streams"][0]
        assert (stream["status"], stream["published"]) == ("ended", 8)
        proc.send_signal(signal.SIGINT)
        await proc.wait()
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
