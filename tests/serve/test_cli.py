"""``actorflow serve``: argument parsing and what FILE turns into (no port is bound)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
            {"max_body": 2048, "max_sessions": 64, "allow_custom_code": False},
        )
    ]
