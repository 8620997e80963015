"""The curated public API: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import types

import actorflow


def test_all_is_sorted_and_complete() -> None:
    public = {
        name
        for name, value in vars(actorflow).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    } | {"__version__"}
    public.discard("annotations")  # the __future__ feature
    assert actorflow.__all__ == sorted(actorflow.__all__, key=str.casefold)
    assert set(actorflow.__all__) == public


def test_version_is_a_string() -> None:
    assert isinstance(actorflow.__version__, str)
    assert actorflow.__version__.count(".") == 2
