"""`actorflow units`: every registered unit described; docs/reference/units.md never stale."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from actorflow.cli import main
from actorflow.cli._units import reference_markdown
from actorflow.unit import default_registry

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference" / "units.md"


def test_the_reference_page_is_generated_from_the_code() -> None:
    assert REFERENCE.read_text() == reference_markdown(), (
        "docs/reference/units.md is stale: run "
        "`.venv/bin/actorflow units --markdown > docs/reference/units.md`"
    )


BUILTINS = {
    ep.name for ep in entry_points(group="actorflow.flowunits") if ep.value.startswith("actorflow.")
}
"""The units actorflow itself declares in its entry-point group."""


def test_the_reference_covers_every_builtin_unit() -> None:
    page = REFERENCE.read_text()
    missing = [name for name in BUILTINS if f"\n## `{name}`\n" not in page]
    assert not missing


def test_the_list_covers_every_registered_unit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["units", "--json"]) == 0
    listed = {u["name"] for u in json.loads(capsys.readouterr().out)}
    assert listed == set(default_registry.names())
    assert set(BUILTINS) <= listed


def test_a_unit_is_described_with_ports_parameters_and_docs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["units", "resize", "image_decode"]) == 0
    out = capsys.readouterr().out
    assert "resize (unit, actorflow.flowunits.image.transform:Resize)" in out
    assert "inputs:  image: np.ndarray" in out
    assert "  width: int = required" in out
    assert "  interpolation: str = 'area'" in out
    assert "  max_bytes: int = 33554432  refuse larger inputs." in out  # from Args:


def test_an_unknown_name_lists_every_unit_and_a_near_miss(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["units", "resise"]) == 1
    err = capsys.readouterr().err
    assert "unknown unit 'resise'; did you mean 'resize'?" in err
    assert all(name in err for name in BUILTINS)
    assert "..." not in err


def test_driver_dir_units_are_listed_with_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["units", "--graph", str(ROOT / "graphs" / "hello.toml"), "hello_scale"]) == 0
    out = capsys.readouterr().out
    assert "inputs:  number: float" in out
    assert "  factor: float = 2.0" in out
