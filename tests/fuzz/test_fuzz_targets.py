"""The fuzz targets of ``fuzz/`` in short Hypothesis form, so that ``make test`` runs them.

Each takes the target's seeds (``fuzz/seeds/<target>/``) and mutates their bytes
(insert, delete, replace, splice, truncate) or draws bytes from nothing, then asserts
what the atheris target asserts: only the door's own errors escape.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorflow.errors import GraphError, UnitConfigError, UnitNotFoundError
from actorflow.graph import load_graph, validate
from actorflow.serve._codec import decode_image, decode_json
from actorflow.serve._errors import BadRequest, loads
from actorflow.unit import default_registry

SEEDS = Path(__file__).resolve().parents[2] / "fuzz" / "seeds"
LOADER_ERRORS = (GraphError, UnitConfigError, UnitNotFoundError)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def seeds(target: str) -> list[bytes]:
    return [path.read_bytes() for path in sorted((SEEDS / target).iterdir())]


@st.composite
def mutated(draw: st.DrawFn, target: str) -> bytes:
    """A seed of ``target`` with a few random edits, or random bytes."""
    pool = seeds(target)
    data = bytearray(draw(st.sampled_from(pool)) if draw(st.integers(0, 9)) else draw(st.binary()))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "splice", "truncate"]))
        if edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif edit == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "splice":
            other = draw(st.sampled_from(pool))
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start : start + draw(st.integers(1, 64))]
        else:
            del data[at:]
    return bytes(data)


def text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


@pytest.mark.parametrize("fmt", ["dot", "toml", "json"])
@SETTINGS
@given(data=st.data())
def test_loaders_raise_only_their_own_errors(fmt: str, data: st.DataObject) -> None:
    document = data.draw(mutated(fmt))
    with contextlib.suppress(*LOADER_ERRORS):
        load_graph(text(document), format=fmt)  # type: ignore[arg-type]


@SETTINGS
@given(mutated("workflow"))
def test_workflows_load_and_validate_with_only_loader_errors(document: bytes) -> None:
    with contextlib.suppress(*LOADER_ERRORS):
        graph = load_graph(text(document), format="json", allow_custom_code=False)
        validate(graph, default_registry)


@SETTINGS
@given(mutated("codec"))
def test_the_request_codec_raises_only_bad_request(body: bytes) -> None:
    kinds = {"image": "image", "raw": "bytes", "x": "json"}
    with contextlib.suppress(BadRequest):
        decode_json(loads(body, 64), kinds)
    with contextlib.suppress(BadRequest):
        decode_image(body, where="binary frame")
