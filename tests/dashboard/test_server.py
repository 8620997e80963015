"""The dashboard's HTTP side on real aiohttp servers on 127.0.0.1: page, WebSocket, MJPEG."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from support.frames import Frames

import actorflow as af
from actorflow.dashboard import mount, serve_dashboard
from actorflow.flowunits.dashboard.hub import FrameHub
from actorflow.flowunits.dashboard.sink import DashboardSink
from actorflow.serve import build_app

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


@pytest.fixture
async def live(hub_name: str) -> AsyncIterator[tuple[af.Flow, Frames, str]]:
    """A running frames -> dashboard flow and the URL of its dashboard."""
    src = Frames(pace=0.02)
    sink = DashboardSink(hub=hub_name, title="camera one", max_fps=0).options(id="tiles")(src)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    try:
        async with serve_dashboard(flow, port=0, hub_name=hub_name, interval=0.05) as url:
            yield flow, src, url
    finally:
        src.stop.set()
        await flow.wait(10)


def split(message: bytes) -> tuple[dict[str, Any], np.ndarray]:
    size = int.from_bytes(message[:4], "big")
    header = json.loads(message[4 : 4 + size])
    image = cv2.imdecode(np.frombuffer(message[4 + size :], np.uint8), cv2.IMREAD_COLOR)
    return header, image


async def test_the_websocket_says_hello_then_sends_stats_and_frames(
    live: tuple[af.Flow, Frames, str],
) -> None:
    flow, _, url = live
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws") as ws:
        hello = await ws.receive_json()
        assert hello["type"] == "hello"
        assert hello["version"] == 1
        assert hello["flow"] == flow.name
        layers = {n["id"]: n["layer"] for n in hello["graph"]["nodes"]}
        assert layers == {"frames": 0, "tiles": 1}
        assert hello["graph"]["edges"][0]["src"] == "frames"
        seen_stats = seen_frame = None
        while seen_stats is None or seen_frame is None:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                doc = json.loads(msg.data)
                assert doc["type"] == "stats"
                if any(n["id"] == "tiles" and n["processed"] for n in doc["nodes"]):
                    seen_stats = doc
            else:
                seen_frame = split(msg.data)
    header, image = seen_frame
    assert header["stream"] == "tiles/1"
    assert image.shape == (header["h"], header["w"], 3) == (240, 320, 3)
    assert image.std() > 10  # a picture, not a blank
    node = next(n for n in seen_stats["nodes"] if n["id"] == "tiles")
    for key in ("in_rate", "out_rate", "busy_pct", "p50_ms", "p95_ms", "mailbox_size"):
        assert key in node
    assert node["p50_ms"] <= node["p95_ms"]
    assert seen_stats["flow"]["state"] == "running"
    stream = seen_stats["streams"][0]
    assert stream["title"] == "camera one"
    assert stream["mjpeg"] == "/dashboard/mjpeg/tiles/1"
    edge = seen_stats["edges"][0]
    assert (edge["policy"], edge["dropped"]) == ("block", 0)


async def test_subscribe_picks_streams_and_bad_messages_get_an_error(
    live: tuple[af.Flow, Frames, str], frame_hub: FrameHub
) -> None:
    _, _, url = live
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/ws") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        await ws.send_json({"type": "subscribe", "streams": []})
        await ws.send_str("not json")
        while True:  # the reply to the bad message comes after the subscribe was applied
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "error":
                break
        assert json.loads(msg.data)["error"].startswith("not JSON; send")
        for bad in ({"type": "subscribe", "streams": "tiles/1"}, {"type": "hi"}, [1]):
            await ws.send_json(bad)
            while (msg := await ws.receive()).type is not aiohttp.WSMsgType.TEXT or (
                json.loads(msg.data)["type"] != "error"
            ):
                pass
        assert not frame_hub.watched("tiles/1")  # bad messages change nothing
        assert not frame_hub.watched("tiles/1")
        await ws.send_json({"type": "subscribe", "streams": ["tiles/1"]})
        while (msg := await ws.receive()).type is not aiohttp.WSMsgType.BINARY:
            pass
        assert split(msg.data)[0]["stream"] == "tiles/1"
        assert frame_hub.watched("tiles/1")


async def test_an_mjpeg_client_receives_jpeg_parts(live: tuple[af.Flow, Frames, str]) -> None:
    _, _, url = live
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/streams") as response:
            streams = await response.json()
        while not streams:  # the first frame creates the stream: wait for it over the ws
            async with http.ws_connect(url + "/ws") as ws:
                while (await ws.receive()).type is not aiohttp.WSMsgType.BINARY:
                    pass
            async with http.get(url + "/streams") as response:
                streams = await response.json()
        base = url.removesuffix("/dashboard")
        async with http.get(base + streams[0]["mjpeg"]) as response:
            assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
            for _ in range(2):
                assert await response.content.readline() == b"--frame\r\n"
                headers = {}
                while (line := await response.content.readline()) != b"\r\n":
                    key, _, value = line.decode().partition(":")
                    headers[key.lower()] = value.strip()
                assert headers["content-type"] == "image/jpeg"
                jpeg = await response.content.readexactly(int(headers["content-length"]))
                assert await response.content.readexactly(2) == b"\r\n"
                image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                assert image.shape == (240, 320, 3)
        async with http.get(base + "/dashboard/mjpeg/nope/1") as response:
            assert response.status == 404
            assert "tiles/1" in await response.text()


async def test_page_and_static_files_are_served_from_the_package(
    live: tuple[af.Flow, Frames, str],
) -> None:
    _, _, url = live
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
        assert '<base href="/dashboard/">' in page
        assert "static/dashboard.js" in page
        assert "cdn" not in page.lower()
        async with http.get(url + "/static/dashboard.js") as response:
            assert response.content_type == "text/javascript"
            assert "WebSocket" in await response.text()
        for name in ("../_app.py", "index.htm", "%2e%2e%2f_app.py"):
            async with http.get(url + "/static/" + name) as response:
                assert response.status == 404
        async with http.get(url + "/stats") as response:
            doc = await response.json()
        assert doc["type"] == "stats"
        assert [n["id"] for n in doc["graph"]["nodes"]] == ["frames", "tiles"]


async def test_mounted_in_an_embedding_app_under_another_prefix(hub_name: str) -> None:
    src = Frames(count=3)
    sink = DashboardSink(hub=hub_name)(src)
    flow = af.Flow([src], [sink])
    app = web.Application()
    mount(app, flow, prefix="/ops/live/", hub_name=hub_name)
    await flow.run_async()
    await flow.wait(10)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        page = await (await client.get("/ops/live")).text()
        assert '<base href="/ops/live/">' in page
        doc = await (await client.get("/ops/live/stats")).json()
        assert doc["flow"]["state"] == "stopped"
        assert doc["flow"]["balanced"]
        assert doc["streams"][0]["status"] == "ended"
        assert doc["streams"][0]["mjpeg"] == "/ops/live/mjpeg/dashboard/1"


async def test_actorflow_serve_has_the_dashboard_and_its_metrics() -> None:
    graph = {
        "nodes": {"in": {"type": "input"}, "out": {"type": "output"}},
        "edges": ["in -> out"],
    }
    app = build_app(af.Flow(graph))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/dashboard")).status == 200
        async with client.ws_connect("/dashboard/ws") as ws:
            assert (await ws.receive_json())["type"] == "hello"
            text = await (await client.get("/metrics")).text()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert families["actorflow_dashboard_viewers"].samples[0].value == 1
        assert "actorflow_dashboard_viewer_dropped" in families


async def test_shutdown_closes_viewers_with_going_away(hub_name: str) -> None:
    src = Frames(pace=0.02)
    sink = DashboardSink(hub=hub_name)(src)
    flow = af.Flow([src], [sink])
    app = web.Application()
    mount(app, flow, hub_name=hub_name)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await flow.run_async()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"http://127.0.0.1:{port}/dashboard/ws") as ws:
                assert (await ws.receive_json())["type"] == "hello"
                cleanup = asyncio.ensure_future(runner.cleanup())
                while (msg := await ws.receive()).type in (
                    aiohttp.WSMsgType.TEXT,
                    aiohttp.WSMsgType.BINARY,
                ):
                    pass
                assert msg.type is aiohttp.WSMsgType.CLOSE
                assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
            await cleanup
    finally:
        src.stop.set()
        await flow.wait(10)
