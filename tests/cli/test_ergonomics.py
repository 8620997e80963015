"""`run --set/--input`, `graph --format svg|png`, DOT that loads back, Status by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actorflow import Flow, Status
from actorflow.cli import main

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "graphs" / "hello.toml"

LINES_UNIT = '''
from collections.abc import AsyncIterator
from pathlib import Path

from actorflow.unit import source


@source(name="erg_lines")
async def erg_lines(*, path: str, limit: int = 100) -> AsyncIterator[str]:
    """Yield the lines of a text file."""
    for line in Path(path).read_text().splitlines()[:limit]:
        yield line
'''


def test_set_overrides_parameters_typed_by_the_annotations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["run", str(HELLO), "--set", "numbers.count=3", "--set", "double.factor=0.5"]
    assert main([*args, "--set", "show.prefix=7:"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == ["7:0.0", "7:0.5", "7:1.0"]  # prefix stays text


def test_set_runtime_attributes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(HELLO), "--set", "double.queue_size=2", "--json"]) == 0
    assert '"mailbox_size": 2' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("double.factor=two", "parameter 'factor' expects float, got 'two' (str)"),
        ("dubble.factor=2", "no node 'dubble'; did you mean 'double'?"),
        ("double.factr=2", "unknown parameter 'factr'; did you mean 'factor'?"),
        ("double=2", "write NODE.PARAM=VALUE"),
    ],
)
def test_a_wrong_override_is_one_clear_error(
    override: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(HELLO), "--set", override]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_input_sets_the_one_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    units = tmp_path / "units"
    units.mkdir()
    (units / "erg_units.py").write_text(LINES_UNIT)
    graph = tmp_path / "lines.toml"
    graph.write_text(
        '[driver]\ndir = ["units"]\n[graph]\nformat = "graphviz"\n'
        "graphconf = '''digraph { src [flowunit=erg_lines, path=\"missing.txt\"]\n"
        "  show [flowunit=hello_print]\n  src -> show }'''\n"
    )
    graph.write_text(
        graph.read_text().replace(
            'dir = ["units"]', f'dir = ["units", "{ROOT / "graphs" / "units"}"]'
        )
    )
    text = tmp_path / "elsewhere" / "words.txt"
    text.parent.mkdir()
    text.write_text("alpha\nbeta\n")
    cwd = Path.cwd()
    os.chdir(text.parent)  # --input is relative to where the user is, not to the graph
    try:
        assert main(["run", str(graph), "--input", "words.txt"]) == 0
    finally:
        os.chdir(cwd)
    assert capsys.readouterr().out.splitlines()[:2] == ["alpha", "beta"]


def test_input_needs_one_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(HELLO), "--input", "x.avi"]) == 1
    assert "takes none of the parameters uri, path" in capsys.readouterr().err


@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_graph_draws_svg_and_png(fmt: str, magic: bytes, tmp_path: Path) -> None:
    out = tmp_path / f"hello.{fmt}"
    assert main(["graph", str(HELLO), "--format", fmt, "-o", str(out)]) == 0
    assert magic in out.read_bytes()[:400]


def test_graph_without_graphviz_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["graph", str(HELLO), "--format", "svg"]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().err


@pytest.mark.anyio
async def test_dot_output_loads_back_with_its_driver_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written elsewhere, the DOT still finds graphs/units/ and runs the same graph."""
    dot = tmp_path / "copy.dot"
    assert main(["graph", str(HELLO), "-o", str(dot)]) == 0
    flow = Flow(dot)
    await flow.run_async()
    assert await flow.wait(10) is Status.STOP
    assert flow.statistics().nodes["show"].processed == 20


def test_status_prints_by_name() -> None:
    assert str(Status.STOP) == "Status.STOP"
    assert f"{Status.TIMEOUT}" == "Status.TIMEOUT"
    assert f"{Status.STOP:d}" == "24"
    assert Status.STOP == 24  # still ModelBox's code
