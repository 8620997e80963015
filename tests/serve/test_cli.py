"""``actorflow serve``: argument parsing and what FILE turns into (no port is bound)."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import web

from actorflow.cli._main import build_parser, run_cli
from actorflow.cli._serve import parse_size
from actorflow.serve import STATE, load_app

GRAPH = {
    "name": "hook",
    "nodes": {
        "x": {"type": "input"},
        "post": {"flowunit": "http_sink", "url": "http://127.0.0.1:9/hook"},
    },
    "edges": ["x -> post"],
}


def test_defaults_bind_loopback_only() -> None:
    args = build_parser().parse_args(["serve", "g.json"])
    assert (args.host, args.port, args.max_body) == ("127.0.0.1", 8080, 8 * 1024**2)
    assert args.allow_custom_code is False


@pytest.mark.parametrize(
    ("text", "size"), [("512", 512), ("64k", 65536), ("8M", 8 * 1024**2), ("1GiB", 1024**3)]
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_bad_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["serve", "g.json", "--max-body", "lots"])
    assert info.value.code == 2
    assert "invalid size 'lots'" in capsys.readouterr().err


def test_graph_file_becomes_an_app(tmp_path: Path) -> None:
    path = tmp_path / "hook.json"
    path.write_text(json.dumps(GRAPH))
    app = load_app(path, max_body=1000)
    assert isinstance(app, web.Application)
    assert app[STATE].max_body == 1000
    assert app[STATE].flow.state == "built"


def test_unloadable_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"nodes": {"a": {"flowunit": "no_such_unit"}}, "edges": []}))
    assert run_cli(["serve", str(path)]) == 1
    assert "no_such_unit" in capsys.readouterr().err


def test_python_file_is_served_as_a_wrapper(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import actorflow.wrapper

    calls: list[tuple[Path, dict[str, Any]]] = []

    def fake_build_app(path: Path, **opts: Any) -> web.Application:
        calls.append((path, opts))
        return web.Application()

    monkeypatch.setattr(actorflow.wrapper, "build_app", fake_build_app)
    app = load_app(tmp_path / "wrapper.py", max_body=2048)
    assert isinstance(app, web.Application)
    assert calls == [
        (
            tmp_path / "wrapper.py",
            {"max_body": 2048, "max_sessions": 64, "allow_custom_code": False, "limits": None},
        )
    ]


@pytest.mark.slow
def test_serve_runs_answers_and_stops_on_sigint(tmp_path: Path) -> None:
    """The real command: binds 127.0.0.1, serves, and exits 0 on Ctrl-C."""
    graph = {
        "name": "rgb",
        "nodes": {
            "image": {"type": "input"},
            "rgb": {"flowunit": "color_convert"},
            "out": {"type": "output"},
        },
        "edges": ["image -> rgb:image", "rgb:image -> out"],
    }
    path = tmp_path / "echo.json"
    path.write_text(json.dumps(graph))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, png = cv2.imencode(".png", np.array([[[0, 0, 255]]], np.uint8))  # one BGR red pixel
    red_pixel = bytes(png)
    code = "import sys; from actorflow.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", str(path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # wait for the port: the child imports and starts the flow first
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/infer",
            data=json.dumps({"inputs": {"image": base64.b64encode(red_pixel).decode()}}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as r:
            assert json.loads(r.read()) == {"outputs": {"out": [[[[255, 0, 0]]]]}, "errors": []}
    finally:
        proc.send_signal(signal.SIGINT)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output


def test_actorflow_serve_exits_non_zero_when_it_gives_up(tmp_path: Path) -> None:
    """The real CLI in a subprocess: a flow that cannot be kept running ends the server
    with status 3, so an orchestrator restarts it."""
    units = tmp_path / "units"
    units.mkdir()
    (units / "broken.py").write_text(
        "from actorflow.unit import FlowUnit, Input, Output\n"
        "class Broken(FlowUnit):\n"
        "    name = 'test_isolation_broken_open'\n"
        "    x = Input('x')\n"
        "    y = Output('y')\n"
        "    opened = 0\n"
        "    async def open(self, ctx):\n"
        "        type(self).opened += 1\n"
        "        if type(self).opened > 1:\n"
        "            raise OSError('camera unplugged')\n"
        "    async def process(self, ctx, packet):\n"
        "        raise OSError('camera unplugged')\n"
        "    fatal_errors = (OSError,)\n"
    )
    graph = tmp_path / "g.toml"
    graph.write_text(
        '[driver]\ndir = "units"\n[graph]\nformat = "graphviz"\n'
        "graphconf = '''digraph g { x [type=input]\n b [flowunit=test_isolation_broken_open]\n"
        " y [type=output]\n x -> b -> y }'''\n"
    )
    script = (
        "import threading, urllib.request, json, time\n"
        "from actorflow.cli import main\n"
        "def poke():\n"
        "    for _ in range(600):\n"
        "        try:\n"
        "            req = urllib.request.Request('http://127.0.0.1:PORT/v1/infer',"
        " data=json.dumps({'inputs': {'x': 1}}).encode(),"
        " headers={'Content-Type': 'application/json'})\n"
        "            urllib.request.urlopen(req, timeout=5)\n"
        "            return\n"
        "        except Exception as exc:\n"
        "            if 'HTTP Error' in str(exc): return\n"
        "            time.sleep(0.05)\n"
        "threading.Thread(target=poke, daemon=True).start()\n"
        f"raise SystemExit(main(['serve', {str(graph)!r}, '--port', 'PORT']))\n"
    )
    port = _free_port()
    result = subprocess.run(
        [sys.executable, "-c", script.replace("PORT", str(port))],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard only
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    assert result.returncode == 3, result.stderr[-2000:]
    assert "given up" in result.stderr
    assert "camera unplugged" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
