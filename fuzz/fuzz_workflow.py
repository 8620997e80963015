"""Fuzz target: workflow JSON documents, loaded and validated against the installed units.

``load_graph`` then ``validate`` (unit look-up, ports, parameters' existence) raise
only the loader's errors; dynamic blocks stay refused (custom code is off).

Run: ``python fuzz/fuzz_workflow.py fuzz/work/workflow fuzz/seeds/workflow``
``-max_total_time=600 -timeout=5``
(or every target: ``fuzz/campaign.sh``; results in docs/fuzzing.md).
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports(include=["actorflow"]):
    import actorflow.compat.workflow
    import actorflow.flowunits
    import actorflow.graph._formats  # noqa: F401 - imported lazily elsewhere; instrument it now
    from actorflow.graph import load_graph, validate
    from actorflow.unit import default_registry

from _common import loader_errors, run, text_of

ERRORS = loader_errors()


def test_one(data: bytes) -> None:
    """One input: load it as JSON and validate it; only loader errors may escape."""
    try:
        graph = load_graph(text_of(data), format="json", allow_custom_code=False)
        validate(graph, default_registry)
    except ERRORS:
        pass


if __name__ == "__main__":
    run(test_one)
