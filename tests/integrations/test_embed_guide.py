"""The embed guide's handler answers as its table says: 429 when full, 400 for a bad body.

The handler is the code printed in docs/how-to/embed-in-aiohttp.md, taken from the page
(tests/test_docs.py runs the whole page; here its pieces are driven into overload).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import cv2
import pytest
import skimage.data
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actorflow.integrations.aiohttp import ADMISSION

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "how-to" / "embed-in-aiohttp.md"


def guide() -> dict[str, Any]:
    """The page's Python blocks, run up to (not including) its client."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)
    script = "\n".join(b for b in blocks if not b.startswith("async def main"))
    namespace: dict[str, Any] = {"__name__": "embed_guide"}
    cwd = Path.cwd()
    os.chdir(ROOT)  # the page names graphs/detect_faces.toml from the repository root
    try:
        exec(compile(script, str(PAGE), "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


async def test_the_guides_handler_answers_as_its_table_says() -> None:
    app: web.Application = guide()["app"]
    jpeg = cv2.imencode(".jpg", skimage.data.astronaut())[1].tobytes()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        admission = app[ADMISSION]
        admission.active = admission.max_sessions  # every session slot taken
        try:
            full = await client.post("/detect", data=jpeg)
            bad = await client.post("/detect", data=b"not an image")
        finally:
            admission.active = 0
        assert full.status == 429  # not a 500 with a traceback
        assert full.headers["Retry-After"] == "1"
        assert "sessions running" in await full.text()
        assert bad.status == 400  # decoding comes first: the body is the client's mistake
        fine = await client.post("/detect", data=jpeg)
        assert fine.status == 200
        assert len((await fine.json())["outputs"]["output"]) == 1
