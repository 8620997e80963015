"""``actorflow create``: the generated project's own test passes as generated."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from actorflow.cli._create import create_project, register


def test_generated_project_test_passes(tmp_path: Path) -> None:
    root = create_project("demo", tmp_path)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "README.md",
        "graph.toml",
        "pyproject.toml",
        "tests/test_wrapper.py",
        "wrapper.py",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_generated_wrapper_debug_run(tmp_path: Path) -> None:
    root = create_project("my-service", tmp_path)
    result = subprocess.run(
        [sys.executable, "wrapper.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "== my_service: local debug run" in result.stdout
    assert "\\\n" in (root / "README.md").read_text(encoding="utf-8")


def test_cli_command_creates_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="actorflow")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["create", "-n", "demo", "--dir", str(tmp_path)])
    assert args.func(args) == 0
    assert (tmp_path / "demo" / "wrapper.py").is_file()
    assert "next: cd " in capsys.readouterr().out
    assert args.func(args) == 2  # the folder is no longer empty
    assert "already exists and is not empty" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["", "1abc", "a b", "../up", "x" * 65])
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="invalid project name"):
        create_project(name, tmp_path)
