"""The unit registry: names, built-ins, entry points, near-miss suggestions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import actorflow as af
from actorflow import UnitNotFoundError
from actorflow.unit import ENTRY_POINT_GROUP, Registry


def test_class_with_a_name_registers_itself() -> None:
    class Sharpen(af.FlowUnit):
        name = "sharpen_test"
        inp = af.Input("in")

    assert af.unit.default_registry.get("sharpen_test") is Sharpen
    contract = af.unit.default_registry.contract("sharpen_test")
    assert contract is not None
    assert (contract.inputs, contract.outputs) == (("in",), ())


def test_unknown_name_suggests_a_near_miss() -> None:
    reg = Registry()

    class Resize(af.FlowUnit):
        inp = af.Input("in")

    reg.register(Resize, "resize_test")
    with pytest.raises(
        UnitNotFoundError,
        match=r"unknown unit 'resize_tset'; did you mean "
        r"'resize_test'\?",
    ):
        reg.get("resize_tset")


def test_entry_point_group_registers_installed_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package declaring ``[project.entry-points."actorflow.flowunits"]`` is found."""
    (tmp_path / "acme_units.py").write_text(
        "import actorflow as af\n\nclass Blur(af.FlowUnit):\n    inp = af.Input('in')\n"
    )
    dist = tmp_path / "acme_units-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-units\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nface_blur = acme_units:Blur\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry()
    assert "face_blur" in reg.names()
    assert reg.get("face_blur").__name__ == "Blur"
    monkeypatch.delitem(sys.modules, "acme_units", raising=False)


def test_a_broken_entry_point_says_what_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "broken-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nghost = no_such_mod:Ghost\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        UnitNotFoundError,
        match=r"unit 'ghost' is declared as "
        r"'no_such_mod:Ghost', which cannot be imported",
    ):
        Registry().get("ghost")
