"""The newcomer's five mistakes: each gives exactly one error, with file:line and the fix.

A misspelt value type, node name, runtime attribute; a cycle; a broken TOML file. Each
is checked through ``actorflow validate`` (what a user runs) and ``Flow.build()``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actorflow import Flow, FlowUnit, GraphError, Input, UnitConfigError, flowunit, source
from actorflow.cli import main

UNITS = Path(__file__).resolve().parents[2] / "graphs" / "units"


def hello(tmp_path: Path, double: str, edges: str = "numbers -> double -> show") -> Path:
    path = tmp_path / "mistake.toml"
    path.write_text(
        f'[driver]\ndir = ["{UNITS}"]\n\n[graph]\nformat = "graphviz"\n'
        "graphconf = '''digraph hello {\n"
        "  numbers [flowunit=hello_count, count=3]\n"
        f"  double  [flowunit=hello_scale, {double}]\n"
        '  show    [flowunit=hello_print, prefix="value: "]\n'
        f"  {edges}\n"
        "}'''\n"
    )
    return path


def one_problem(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: 1 problem\n"), out
    return out.splitlines()[1]


def test_a_value_of_the_wrong_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hello(tmp_path, "factor=two")
    problem = one_problem(path, capsys)
    assert f"{path}:8:3" in problem
    assert "node 'double' (hello_scale)" in problem
    assert "parameter 'factor' expects float, got 'two' (str); write factor=2.0" in problem
    with pytest.raises(GraphError, match=r"mistake.toml:8:3\): parameter 'factor' expects float"):
        Flow(path).build()


def test_a_misspelt_node_in_an_edge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hello(tmp_path, "factor=2", "numbers -> doubel -> show")
    problem = one_problem(path, capsys)
    assert f"edge 'numbers -> doubel' ({path}:10:3)" in problem
    assert "refers to node 'doubel', which is not declared; did you mean 'double'?" in problem


def test_a_misspelt_runtime_attribute(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hello(tmp_path, "factor=2, queue_sise=4")
    problem = one_problem(path, capsys)
    assert f"({path}:8:3)" in problem
    assert "unknown parameter 'queue_sise'; did you mean 'queue_size'?" in problem


def test_a_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hello(tmp_path, "factor=2", "numbers -> double\n  double -> double\n  double -> show")
    problem = one_problem(path, capsys)
    assert "cycle: double -> double" in problem
    assert f"at {path}:11:3" in problem  # the edge `double -> double`
    assert "remove an edge" in problem


def test_a_broken_toml_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hello(tmp_path, "factor=2")
    text = path.read_text()
    path.write_text(text + 'name = "unterminated\n')
    problem = one_problem(path, capsys)
    assert f"{path}:12:" in problem  # the line of the mistake, not of the table
    assert "invalid TOML" in problem


def test_one_root_cause_is_reported_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown unit does not also make its neighbours' ports 'not connected'."""
    path = hello(tmp_path, "factor=2")
    path.write_text(path.read_text().replace("hello_print", "hello_prnt"))
    problem = one_problem(path, capsys)
    assert "unknown unit 'hello_prnt' for node 'show'" in problem
    assert "did you mean 'hello_print'?" in problem
    assert "..." not in problem  # every unit is listed
    assert "hello_scale" in problem


def test_a_unit_without_process_is_refused_at_build() -> None:
    @source(register=False)
    async def numbers():  # type: ignore[no-untyped-def]
        yield 1

    class Printer(FlowUnit):
        inp = Input("in")

    feed = numbers()
    flow = Flow([feed], [Printer()(feed)])
    with pytest.raises(GraphError, match=r"Printer defines no process\(\); define 'async def"):
        flow.build()


def test_a_python_builder_value_of_the_wrong_type_is_refused_at_once() -> None:
    @flowunit(register=False)
    async def scale(x: float, *, factor: float = 2.0) -> float:
        return x * factor

    with pytest.raises(UnitConfigError, match="parameter 'factor' expects float, got 'two'"):
        scale(factor="two")
    assert scale(factor=3).call is not None  # an int is a fine float
