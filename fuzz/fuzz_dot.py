"""Fuzz target: ``load_graph(text, format="dot")`` raises only the loader's errors.

Run: ``python fuzz/fuzz_dot.py fuzz/work/dot fuzz/seeds/dot -max_total_time=600 -timeout=5``
(or every target: ``fuzz/campaign.sh``; results in docs/fuzzing.md).
"""

from __future__ import annotations

import contextlib

import atheris

with atheris.instrument_imports(include=["actorflow"]):
    import actorflow.graph._formats  # noqa: F401 - imported lazily elsewhere; instrument it now
    from actorflow.graph import load_graph

from _common import loader_errors, run, text_of

ERRORS = loader_errors()


def test_one(data: bytes) -> None:
    """One input: parse it; only the loader's own errors may escape."""
    with contextlib.suppress(ERRORS):
        load_graph(text_of(data), format="dot")


if __name__ == "__main__":
    run(test_one)
