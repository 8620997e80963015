"""The ``actorflow`` command line: run, validate, graph, help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from actorflow.cli import _main as cli_main
from actorflow.cli import configure_logging, main
from actorflow.graph import load_graph

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"

UNITS = """\
from collections.abc import AsyncIterator

import anyio

from actorflow.unit import Context, FlowUnit, Input, source


@source(name="cli_endless")
async def cli_endless() -> AsyncIterator[int]:
    n = 0
    while True:
        await anyio.sleep(0.001)
        n += 1
        yield n


class CliBroken(FlowUnit):
    name = "cli_broken"
    value = Input("value")

    async def open(self, ctx: Context) -> None:
        raise OSError("camera unplugged")

    async def process(self, ctx, packet) -> None:
        pass  # never reached: open fails


class CliSink(FlowUnit):
    name = "cli_sink"
    value = Input("value")

    def __init__(self, *, every: int = 1) -> None:
        if every < 1:
            from actorflow.errors import UnitConfigError

            raise UnitConfigError(f"every must be >= 1, got {every}")

    async def process(self, ctx, packet) -> None:
        pass
"""


@pytest.fixture
def graph_dir(tmp_path: Path) -> Path:
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "cli_units.py").write_text(UNITS)
    return tmp_path


def write_graph(directory: Path, name: str, dot: str) -> Path:
    path = directory / name
    path.write_text(f"[driver]\ndir = 'units'\n[graph]\ngraphconf = '''{dot}'''\n")
    return path


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "validate", "graph"):
        assert f"    {command} " in out
    assert "actorflow validate graphs/hello.toml" in out
    assert "exit codes" in out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: actorflow" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "actorflow", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("actorflow ")


def test_missing_subcommand_modules_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("_run", "_not_written_yet"))
    parser = cli_main.build_parser()
    assert "run" in parser.format_help()


def test_a_broken_subcommand_module_is_not_hidden(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Only the subcommand module itself may be missing; its own missing imports surface."""
    package = tmp_path / "fake_cli_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "_broken.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli_main, "__package__", "fake_cli_pkg")
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("_missing", "_broken"))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        cli_main.build_parser()
    monkeypatch.delitem(sys.modules, "fake_cli_pkg")


# -- validate ----------------------------------------------------------------------------


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(GRAPHS / "hello.toml")]) == 0
    out = capsys.readouterr().out
    assert "ok" in out
    assert "graph 'hello', 3 units, 2 edges" in out


def test_validate_prints_every_problem_with_its_location(
    graph_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_graph(
        graph_dir,
        "broken.toml",
        """digraph broken {
  s [flowunit=cli_endles]
  sink [flowunit=cli_sink, every=0]
  p [flowunit=hello_prnt]
  s -> sink:valeu [policy=lastest]
}""",
    )
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "problems" in out
    assert (
        f"unknown unit 'cli_endles' for node 's' ({path}:5:3); did you mean 'cli_endless'?" in out
    )
    assert "unknown unit 'hello_prnt'" in out
    assert "unknown policy 'lastest'" in out
    assert out.count("  - ") >= 3


def test_validate_reports_unit_parameter_problems(
    graph_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_graph(
        graph_dir,
        "params.toml",
        """digraph params {
  s [flowunit=cli_endless]
  a [flowunit=cli_sink, every=0]
  b [flowunit=cli_sink, evry=2]
  s -> a
  s -> b
}""",
    )
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "every must be >= 1, got 0" in out
    assert "unknown parameter 'evry'; did you mean 'every'?" in out
    assert f"({path}:7:3)" in out  # node b's place in the file


def test_validate_syntax_error_names_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "graph": {"graphconf": }\n}')
    assert main(["validate", str(path)]) == 1
    assert f"{path}:2:26: invalid JSON" in capsys.readouterr().out


def test_validate_refuses_dynamic_blocks_unless_allowed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACTORFLOW_ALLOW_CUSTOM_CODE", raising=False)
    path = str(GRAPHS / "workflow_block.json")
    assert main(["validate", path]) == 1
    assert "custom code is disabled" in capsys.readouterr().out
    assert main(["validate", path, "--allow-custom-code"]) == 0


# -- graph -------------------------------------------------------------------------------


def test_graph_dot_loads_back(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(GRAPHS / "hello.toml"), "--format", "dot"]) == 0
    text = capsys.readouterr().out
    again = load_graph(text, format="dot")  # type: ignore[arg-type]
    original = load_graph(GRAPHS / "hello.toml")
    assert [n.id for n in again.nodes] == [n.id for n in original.nodes]
    assert [dict(n.params) for n in again.nodes] == [dict(n.params) for n in original.nodes]


def test_graph_mermaid_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "g.mmd"
    assert (
        main(["graph", str(GRAPHS / "workflow_hello.json"), "--format", "mermaid", "-o", str(out)])
        == 0
    )
    text = out.read_text()
    assert text.startswith("flowchart LR")
    assert "n_scale -->|number to number| n_negate" in text


def test_graph_of_a_missing_file_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(tmp_path / "nope.toml")]) == 1
    assert "graph file not found" in capsys.readouterr().err


# -- run ---------------------------------------------------------------------------------


def test_run_prints_results_and_a_statistics_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(GRAPHS / "hello.toml")]) == 0
    out = capsys.readouterr().out
    assert "value: 0" in out
    assert "value: 38" in out
    assert "hello: stopped" in out
    for node in ("numbers", "double", "show"):
        assert node in out


def test_run_json_prints_statistics_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(GRAPHS / "hello.json"), "--json"]) == 0
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "STOP"
    assert summary["nodes"]["triple"]["processed"] == 5
    assert "Traceback" not in err  # log events: tests/cli/test_logging.py (a subprocess)


def test_run_timeout_stops_an_endless_source(graph_dir: Path) -> None:
    path = write_graph(
        graph_dir,
        "endless.toml",
        "digraph e { s [flowunit=cli_endless] k [flowunit=cli_sink] s -> k }",
    )
    assert main(["run", str(path), "--timeout", "0.2"]) == 3


def test_run_reports_a_failed_node(graph_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_graph(
        graph_dir,
        "broken.toml",
        "digraph b { s [flowunit=cli_endless] b [flowunit=cli_broken] s -> b }",
    )
    assert main(["run", str(path)]) == 1
    assert "camera unplugged" in capsys.readouterr().err


def test_run_refuses_a_session_fed_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(GRAPHS / "modelbox_hello.toml")]) == 1
    assert "fed through its input nodes ('input')" in capsys.readouterr().err


def test_run_invalid_graph_lists_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.toml"
    path.write_text("[graph]\ngraphconf = 'digraph { a -> b }'\n")
    assert main(["run", str(path)]) == 1
    assert "refers to node 'b', which is not declared" in capsys.readouterr().err


def test_configure_logging_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json=True)
    structlog.get_logger("actorflow.t").warning("thing_happened", count=2)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert (event["event"], event["count"], event["level"]) == ("thing_happened", 2, "warning")


def test_validate_lists_graph_and_parameter_problems_together(
    graph_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_graph(
        graph_dir,
        "both.toml",
        """digraph both {
  s [flowunit=cli_endless]
  a [flowunit=cli_sink, every=0]
  b [flowunit=no_such_unit_zz]
  s -> a
  s -> b
}""",
    )
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "unknown unit 'no_such_unit_zz'" in out
    assert "every must be >= 1, got 0" in out


def test_run_trace_writes_a_chrome_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace.json"
    assert main(["run", str(GRAPHS / "hello.toml"), "--trace", str(trace)]) == 0
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e["ph"] == "X" and e["name"] == "process" for e in events)
