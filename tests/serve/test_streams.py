"""``/v1/streams`` on a real aiohttp server: cameras added and removed over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from actorflow.runtime import Flow
from actorflow.serve import build_app

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]

GRAPH: dict[str, Any] = {
    "nodes": {
        "frames": {"type": "input"},
        "small": {"flowunit": "resize", "width": 8, "height": 8},
        "out": {"type": "output"},
    },
    "edges": ["frames -> small:image", "small:image -> out"],
}


def video(path: Path, frames: int) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i, np.uint8))
    writer.release()
    return str(path)


async def test_streams_are_added_listed_and_removed_over_http(tmp_path: Path) -> None:
    flow = Flow(GRAPH)
    path = video(tmp_path / "cam.avi", 40)
    async with TestClient(TestServer(build_app(flow, streams=True), host="127.0.0.1")) as c:
        added = await c.post(
            "/v1/streams", json={"source": "video_source", "params": {"uri": path}, "id": "a"}
        )
        assert added.status == 201, await added.text()
        assert (await added.json())["id"] == "a"
        stream = flow._sup.streams.get("a") if flow._sup else None
        assert stream is not None
        await stream.ended.wait()
        listed = (await (await c.get("/v1/streams")).json())["streams"]
        assert [(s["stream"], s["status"], s["items"], s["results"]) for s in listed] == [
            ("a", "ended", 40, 40)
        ]
        endless = await c.post(
            "/v1/streams",
            json={"source": "video_source", "params": {"uri": path, "max_frames": 0}},
        )
        new_id = (await endless.json())["id"]
        removed = await c.delete(f"/v1/streams/{new_id}?drain=false")
        assert removed.status == 200
        assert (await removed.json())["status"] in ("removed", "ended")
    assert flow.statistics().balanced


async def test_stream_mistakes_are_json_errors(tmp_path: Path) -> None:
    path = video(tmp_path / "cam.avi", 5)
    flow = Flow(GRAPH)
    async with TestClient(TestServer(build_app(flow, streams=True), host="127.0.0.1")) as c:
        cases = [
            ({"source": "video_sorce"}, 400, "did you mean 'video_source'"),
            ({"source": "resize"}, 400, "not a source"),
            ({"source": "video_source", "params": {"url": path}}, 400, "unknown parameter"),
            ({"source": "video_source", "params": []}, 400, "must be an object"),
            ([1, 2], 400, "the body must be"),
        ]
        for body, status, text in cases:
            response = await c.post("/v1/streams", json=body)
            assert response.status == status, body
            doc = await response.json()
            assert text in doc["error"], doc
        camera = {"uri": "rtsp://127.0.0.1:9/none", "max_reconnects": -1, "timeout": 0.5}
        body = {"source": "video_source", "params": camera, "id": "x"}
        ok = await c.post("/v1/streams", json=body)
        assert ok.status == 201
        assert (await ok.json())["status"] == "connecting"  # a camera that never answers
        again = await c.post("/v1/streams", json=body)
        assert again.status == 409, await again.text()
        assert "'x' is already running" in (await again.json())["error"]
        assert (await c.delete("/v1/streams/x")).status == 200
        missing = await c.delete("/v1/streams/nope")
        assert missing.status == 404
        assert "no stream 'nope'" in (await missing.json())["error"]


async def test_streams_routes_exist_only_when_asked_for() -> None:
    async with TestClient(TestServer(build_app(Flow(GRAPH)), host="127.0.0.1")) as c:
        response = await c.post("/v1/streams", json={"source": "video_source"})
        assert response.status in (404, 405)


async def test_streams_show_on_metrics(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    flow = Flow(GRAPH)
    path = video(tmp_path / "cam.avi", 12)
    async with TestClient(TestServer(build_app(flow, streams=True), host="127.0.0.1")) as c:
        body = {"source": "video_source", "params": {"uri": path}, "id": "door"}
        assert (await c.post("/v1/streams", json=body)).status == 201
        stream = flow._sup.streams.get("door") if flow._sup else None
        assert stream is not None
        await stream.ended.wait()
        text = await (await c.get("/metrics")).text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = (("source", "video_source"), ("stream", "door"))
    assert samples[("actorflow_stream_items_total", labels)] == 12
    assert samples[("actorflow_stream_results_total", labels)] == 12
    status = (("source", "video_source"), ("status", "ended"), ("stream", "door"))
    assert samples[("actorflow_stream_status", status)] == 1
    live = (("source", "video_source"), ("status", "live"), ("stream", "door"))
    assert samples[("actorflow_stream_status", live)] == 0
