"""Fuzz target: the serve request codec (JSON bodies, WebSocket frames, binary frames).

A body goes through ``loads`` (depth limit) and ``decode_json`` for a graph with an
image, a bytes and a JSON port; the same bytes go through ``decode_image`` as a binary
frame. Only ``BadRequest`` may escape.

Run: ``python fuzz/fuzz_codec.py fuzz/work/codec fuzz/seeds/codec -max_total_time=600 -timeout=5``
(or every target: ``fuzz/campaign.sh``; results in docs/fuzzing.md).
"""

from __future__ import annotations

import contextlib

import atheris

with atheris.instrument_imports(include=["actorflow"]):
    import actorflow.serve._images  # noqa: F401 - imported lazily elsewhere; instrument it now
    from actorflow.serve._codec import decode_image, decode_json
    from actorflow.serve._errors import BadRequest, loads

from _common import run

KINDS = {"image": "image", "raw": "bytes", "x": "json"}


def test_one(data: bytes) -> None:
    """One input: decode it as a request body and as an image frame."""
    with contextlib.suppress(BadRequest):
        decode_json(loads(data, 64), KINDS)
    with contextlib.suppress(BadRequest):
        decode_image(data, where="binary frame")


if __name__ == "__main__":
    run(test_one)
