"""The curated public API: ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import actorflow


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in vars(actorflow) if not name.startswith("_")} | {"__version__"}
    public -= {"annotations", "errors", "graph", "runtime", "unit"}  # __future__ + subpackages
    assert actorflow.__all__ == sorted(actorflow.__all__, key=str.casefold)
    assert set(actorflow.__all__) == public


def test_version_is_a_string() -> None:
    assert isinstance(actorflow.__version__, str)
    assert actorflow.__version__.count(".") == 2
