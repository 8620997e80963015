"""Seed 004 parity: graphs/face_webhook.json posts one message per frame; the WS variant
delivers the same messages through websocket_sink. Real MTCNN networks, real servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from actorflow.graph import load_graph
from actorflow.runtime import Flow

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("no_leftover_tasks")]

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"


def frames() -> list[np.ndarray]:
    from skimage import data as skimage_data  # the dev extra installs it: no skip

    face = np.ascontiguousarray(skimage_data.astronaut()[:, :, ::-1])  # RGB -> BGR
    blank = np.full((240, 320, 3), 127, np.uint8)
    return [face, blank, face]


def configured(name: str, tmp_path: Path, **params: Any) -> Path:
    """The graph file with the delivery step's parameters pointed at the test server."""
    doc = json.loads((GRAPHS / name).read_text(encoding="utf-8"))
    for step in doc["steps"]:
        if step["name"] in params:
            step.update(params[step["name"]])
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


async def run(path: Path, images: list[np.ndarray]) -> list[Any]:
    flow = Flow(load_graph(path, allow_custom_code=True))
    async with flow:
        session = flow.session()
        for image in images:
            await session.send("image", image)
        await session.close()
        results = [r async for r in session]
    return results


async def test_face_webhook_posts_one_message_per_frame(tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/hook"
        path = configured("face_webhook.json", tmp_path, Face_recognition_handler={"url": url})
        results = await run(path, frames())
    finally:
        await runner.cleanup()
    assert [m["message"] for m in received] == [
        "识别到人员:face",
        "未检测到人员",
        "识别到人员:face",
    ]
    by_port: dict[str, list[Any]] = {}
    for r in results:
        assert r.error is None, r.error
        by_port.setdefault(r.port, []).append(r.data)
    assert by_port["status_code"] == [200, 200, 200]
    assert by_port["message"] == [m["message"] for m in received]
    assert len(by_port["face_detection_1"][0]) >= 1  # the astronaut's face
    assert by_port["label_visualization_1_1"][0].shape == frames()[0].shape


async def test_websocket_variant_delivers_the_same_messages(tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            received.append(json.loads(msg.data))
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        path = configured(
            "face_webhook_ws.json", tmp_path, deliver={"url": f"ws://127.0.0.1:{port}/ws"}
        )
        results = await run(path, frames())
    finally:
        await runner.cleanup()
    assert [m["message"] for m in received] == [
        "识别到人员:face",
        "未检测到人员",
        "识别到人员:face",
    ]
    assert all(isinstance(m["timestamp"], int) for m in received)
    messages = [r.data for r in results if r.port == "message"]
    assert messages == [m["message"] for m in received]
    assert not (tmp_path.parent / "out" / "face_webhook_ws.dead.jsonl").exists()
