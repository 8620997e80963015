"""Driver directories: only the listed directories, no escapes, private module names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from actorflow.errors import GraphValidationError
from actorflow.graph import load_graph
from actorflow.unit import default_registry, load_driver_dirs

UNIT = """\
from actorflow.unit import flowunit

@flowunit(name={name!r})
async def unit(x):
    return x
"""


def make_driver(directory: Path, module: str, unit_name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{module}.py"
    path.write_text(UNIT.format(name=unit_name))
    return path


def test_modules_in_listed_dirs_register_their_units(tmp_path: Path) -> None:
    make_driver(tmp_path / "units", "alpha", "drv_alpha")
    make_driver(tmp_path / "units" / "nested", "beta", "drv_beta")
    load_driver_dirs([tmp_path / "units"], base_dir=tmp_path, source="g.toml")
    assert default_registry.contract("drv_alpha") is not None
    assert default_registry.contract("drv_beta") is None  # not recursive


def test_graph_file_driver_dir_is_relative_to_the_file(tmp_path: Path) -> None:
    make_driver(tmp_path / "units", "gamma", "drv_gamma")
    path = tmp_path / "flow.toml"
    path.write_text(
        "[driver]\ndir = 'units'\n[graph]\ngraphconf = '''digraph {\n"
        "  input[type=input] g[flowunit=drv_gamma] output[type=output]\n"
        "  input -> g -> output\n}'''\n"
    )
    graph = load_graph(path)
    load_driver_dirs(graph.driver_dirs, base_dir=graph.base_dir, source=graph.source)
    assert default_registry.contract("drv_gamma") is not None


def test_driver_module_does_not_shadow_real_packages(tmp_path: Path) -> None:
    make_driver(tmp_path / "units", "json", "drv_json")
    load_driver_dirs([tmp_path / "units"], base_dir=tmp_path, source="g.toml")
    import json

    assert hasattr(json, "dumps")
    assert sys.modules["json"] is json
    assert any(
        name.startswith("_actorflow_driver_") and name.endswith("_json") for name in sys.modules
    )


def test_loading_twice_keeps_module_state(tmp_path: Path) -> None:
    path = make_driver(tmp_path / "units", "counter", "drv_counter")
    path.write_text(
        path.read_text() + "\nimport builtins\n"
        "builtins._drv_counter_loads = getattr(builtins, '_drv_counter_loads', 0) + 1\n"
    )
    for _ in range(2):
        load_driver_dirs([tmp_path / "units"], base_dir=tmp_path, source="g.toml")
    import builtins

    assert builtins._drv_counter_loads == 1  # type: ignore[attr-defined]


def test_missing_dir_names_where_it_was_resolved_from(tmp_path: Path) -> None:
    with pytest.raises(
        GraphValidationError,
        match=r"driver dir 'nope' does not exist \(resolved from .* to .*nope\)",
    ):
        load_driver_dirs([tmp_path / "nope"], base_dir=tmp_path, source="g.toml")


def test_dot_dot_escape_is_refused(tmp_path: Path) -> None:
    make_driver(tmp_path / "outside", "evil", "drv_evil_dotdot")
    base = tmp_path / "graphs"
    base.mkdir()
    with pytest.raises(GraphValidationError, match=r"contains '\.\.'"):
        load_driver_dirs([base / ".." / "outside"], base_dir=base, source="g.toml")
    assert default_registry.contract("drv_evil_dotdot") is None


def test_symlinked_dir_leading_out_is_refused(tmp_path: Path) -> None:
    make_driver(tmp_path / "outside", "evil", "drv_evil_link")
    base = tmp_path / "graphs"
    base.mkdir()
    (base / "units").symlink_to(tmp_path / "outside")
    with pytest.raises(GraphValidationError, match=r"outside the graph's directory"):
        load_driver_dirs([base / "units"], base_dir=base, source="g.toml")
    assert default_registry.contract("drv_evil_link") is None


def test_absolute_dir_written_by_the_user_is_allowed(tmp_path: Path) -> None:
    make_driver(tmp_path / "system", "sysunit", "drv_system")
    base = tmp_path / "graphs"
    base.mkdir()
    load_driver_dirs([(tmp_path / "system").resolve()], base_dir=base, source="g.toml")
    assert default_registry.contract("drv_system") is not None


def test_module_symlink_out_of_the_dir_is_refused(tmp_path: Path) -> None:
    target = make_driver(tmp_path / "elsewhere", "payload", "drv_payload")
    units = tmp_path / "units"
    make_driver(units, "fine", "drv_fine_not_loaded")
    (units / "linked.py").symlink_to(target)
    with pytest.raises(GraphValidationError, match=r"linked\.py' is a symlink to .*payload\.py"):
        load_driver_dirs([units], base_dir=tmp_path, source="g.toml")
    assert default_registry.contract("drv_payload") is None
    assert default_registry.contract("drv_fine_not_loaded") is None  # nothing imported


@pytest.mark.parametrize("stem", ["Bad", "two-words", "1st", "caf\u00e9"])
def test_invalid_module_names_are_refused(tmp_path: Path, stem: str) -> None:
    units = tmp_path / "units"
    units.mkdir()
    (units / f"{stem}.py").write_text("raise SystemExit('must not run')\n")
    with pytest.raises(GraphValidationError, match=r"invalid module name"):
        load_driver_dirs([units], base_dir=tmp_path, source="g.toml")


def test_import_error_names_the_module(tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    (units / "broken.py").write_text("1 / 0\n")
    with pytest.raises(
        GraphValidationError, match=r"broken\.py' failed to import: ZeroDivisionError"
    ):
        load_driver_dirs([units], base_dir=tmp_path, source="g.toml")


def test_every_problem_is_listed(tmp_path: Path) -> None:
    with pytest.raises(GraphValidationError) as info:
        load_driver_dirs([tmp_path / "a", tmp_path / "b"], base_dir=tmp_path, source="g.toml")
    assert len(info.value.problems) == 2
