"""The page in Debian's headless chromium over a running face-detection flow: pixels, not 200s.

The flow is the demo's MTCNN graph on a real MJPG video of the astronaut written with
OpenCV, with a ``dashboard`` sink after the box and label drawing. ``make test``
installs ``chromium`` where missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from support.browser import Browser
from support.frames import BOX_BGR

import actorflow as af
from actorflow.dashboard import serve_dashboard
from actorflow.demo.face_detect import write_input_video
from actorflow.flowunits.mtcnn.graph import face_detect_graph
from actorflow.graph import load_graph

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("no_leftover_tasks")]

READY = (
    "document.querySelectorAll('.tile img').length === 1"
    " && document.querySelector('.tile img').naturalWidth > 0"
    " && document.querySelectorAll('.card').length === %d"
    " && document.querySelectorAll('.gnode').length === %d"
    " && document.getElementById('flow-state').textContent !== '—'"
)
RECT = "(() => { const r = document.querySelector(%r).getBoundingClientRect();"
RECT += " return [r.left, r.top, r.width, r.height].map(Math.round); })()"


@pytest.fixture
async def face_flow(tmp_path: Path, hub_name: str) -> AsyncIterator[af.Flow]:
    write_input_video(tmp_path / "astronaut.avi", 40, 10)
    doc = face_detect_graph(
        video=str(tmp_path / "astronaut.avi"),
        annotated=str(tmp_path / "annotated.avi"),
        boxes=str(tmp_path / "faces.jsonl"),
        device="cpu",
    )
    doc["nodes"]["video"]["fps"] = 10
    doc["nodes"]["live"] = {"flowunit": "dashboard", "hub": hub_name, "title": "astronaut"}
    doc["edges"].append("label:image -> live:image")
    flow = af.Flow(load_graph(doc))
    await flow.run_async()
    try:
        yield flow
    finally:
        await flow.stop()
        await flow.wait(30)


def region(shot: np.ndarray, rect: list[int]) -> np.ndarray:
    x, y, w, h = rect
    assert w > 50, rect
    assert h > 30, rect
    return shot[y : y + h, x : x + w]


async def test_the_page_shows_a_video_tile_with_the_box_and_every_node_card(
    face_flow: af.Flow, hub_name: str
) -> None:
    graph = face_flow.graph
    assert graph is not None
    units = sum(1 for n in graph.nodes if n.kind == "unit")
    async with serve_dashboard(face_flow, port=0, hub_name=hub_name) as url:
        async with Browser(1400, 1000) as browser:
            await browser.goto(url)
            await browser.wait_for(READY % (units, len(graph.nodes)))
            png = await browser.screenshot()
            tile = await browser.evaluate(RECT % ".tile img")
            card = await browser.evaluate(RECT % ".card")
            names: Any = await browser.evaluate(
                "[...document.querySelectorAll('.card b')].map(b => b.textContent)"
            )
            errors = [c for c in browser.console if "exceptionDetails" in c]
    shot = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert not errors, errors
    assert {n.id for n in graph.nodes if n.kind == "unit"} <= set(names)
    video = region(shot, tile)
    assert video.std() > 25, "the video tile is blank"
    near_box = np.all(np.abs(video.astype(int) - np.array(BOX_BGR)) < 45, axis=2)
    assert near_box.sum() > 100, "no box drawn in the box colour inside the tile"
    card_pixels = region(shot, card)
    background = shot[5, shot.shape[1] // 2]
    differs = np.any(np.abs(card_pixels.astype(int) - background.astype(int)) > 30, axis=2)
    assert differs.mean() > 0.02, "the node card shows nothing"
