"""The ``actorflow serve`` application, on real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
import cv2
import jsonschema
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from actorflow.integrations.aiohttp import ADMISSION
from actorflow.runtime import Flow
from actorflow.serve import STATE, build_app
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


class Gate:
    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()


GATE = Gate()


@pytest.fixture(autouse=True)
def fresh_gate() -> None:
    global GATE  # the unit reads the module-level gate
    GATE = Gate()


class Shape(FlowUnit):
    """Describes an image."""

    name: ClassVar[str] = "test_serve_shape"
    image: ClassVar[Input[Any]] = Input("image", np.ndarray)
    info: ClassVar[Output[Any]] = Output("info", dict)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        array = packet.data
        await ctx.emit(
            self.info, packet.replace({"shape": list(array.shape), "sum": int(array.sum())})
        )


class Tag(FlowUnit):
    """Multiplies by ten; waits on ``GATE`` first."""

    name: ClassVar[str] = "test_serve_tag"
    x: ClassVar[Input[Any]] = Input("x", int)
    y: ClassVar[Output[Any]] = Output("y", int)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        GATE.entered.set()
        await GATE.release.wait()
        await ctx.emit(self.y, packet.replace(packet.data * 10))


IMAGE_GRAPH = {
    "name": "shapes",
    "nodes": {
        "image": {"type": "input"},
        "shape": {"flowunit": "test_serve_shape"},
        "info": {"type": "output"},
    },
    "edges": ["image -> shape:image", "shape:info -> info"],
}
TAG_GRAPH = {
    "name": "tags",
    "nodes": {
        "x": {"type": "input"},
        "tag": {"flowunit": "test_serve_tag", "queue_size": 512},
        "y": {"type": "output"},
    },
    "edges": ["x -> tag:x", "tag:y -> y"],
}


def png(h: int = 4, w: int = 6, value: int = 1) -> bytes:
    ok, buf = cv2.imencode(".png", np.full((h, w, 3), value, np.uint8))
    assert ok
    return bytes(buf)


def client(app: web.Application) -> TestClient[Any, Any]:
    return TestClient(TestServer(app, host="127.0.0.1"))


async def test_infer_json_with_base64_image() -> None:
    async with client(build_app(Flow(IMAGE_GRAPH))) as c:
        body = {"inputs": {"image": base64.b64encode(png()).decode()}}
        resp = await c.post("/v1/infer", json=body)
        assert resp.status == 200
        assert await resp.json() == {
            "outputs": {"info": [{"shape": [4, 6, 3], "sum": 72}]},
            "errors": [],
        }


async def test_infer_several_items_in_one_request() -> None:
    async with client(build_app(Flow(TAG_GRAPH))) as c:
        resp = await c.post("/v1/infer", json={"inputs": [{"x": 1}, {"x": 2}, {"x": 3}]})
        assert await resp.json() == {"outputs": {"y": [10, 20, 30]}, "errors": []}


async def test_infer_multipart_upload() -> None:
    async with client(build_app(Flow(IMAGE_GRAPH))) as c:
        form = aiohttp.FormData()
        form.add_field("image", png(2, 3, 2), filename="a.png", content_type="image/png")
        resp = await c.post("/v1/infer", data=form)
        assert resp.status == 200
        assert (await resp.json())["outputs"]["info"] == [{"shape": [2, 3, 3], "sum": 36}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"nodes": {}, "edges": []}, "inline graph", id="dict-graph"),
        pytest.param(
            {"version": "1.0", "steps": [], "inputs": {"x": 1}}, "inline graph", id="workflow"
        ),
        pytest.param({"inputs": {"nope": 1}}, "unknown input port 'nope'", id="bad-port"),
        pytest.param({"x": 1}, "expected", id="no-inputs"),
    ],
)
async def test_bad_bodies_are_400(body: dict[str, Any], message: str) -> None:
    async with client(build_app(Flow(TAG_GRAPH))) as c:
        resp = await c.post("/v1/infer", json=body)
        assert resp.status == 400
        assert message in (await resp.json())["error"]


async def test_oversized_json_body_is_413() -> None:
    async with client(build_app(Flow(TAG_GRAPH), max_body=1024)) as c:
        resp = await c.post("/v1/infer", json={"inputs": {"x": 1}, "pad": "a" * 4096})
        assert resp.status == 413


async def test_oversized_chunked_multipart_is_413() -> None:
    """Without a Content-Length the parts are counted as they stream in."""
    boundary = "xyzzy"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '
        'filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(8):
            yield b"\0" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    async with client(build_app(Flow(IMAGE_GRAPH), max_body=4096)) as c:
        resp = await c.post(
            "/v1/infer",
            data=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert resp.status == 413


async def test_admission_rejects_past_max_sessions_with_retry_after() -> None:
    GATE.release.clear()
    app = build_app(Flow(TAG_GRAPH), max_sessions=4, retry_after=2)
    async with client(app) as c:
        tasks = [
            asyncio.ensure_future(c.post("/v1/infer", json={"inputs": {"x": i}})) for i in range(20)
        ]
        done: set[asyncio.Future[Any]] = set()
        pending = set(tasks)
        while len(done) < 16:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            done |= finished
        rejected = [t.result() for t in done]
        assert {r.status for r in rejected} == {429}
        assert {r.headers["Retry-After"] for r in rejected} == {"2"}
        assert app[ADMISSION].active == 4
        GATE.release.set()
        admitted = await asyncio.gather(*pending)
        for r in admitted:
            body = await r.json()
            assert r.status == 200
            assert len(body["outputs"]["y"]) == 1
        for r in rejected:
            r.release()


async def test_hundred_concurrent_http_clients_each_get_their_own_results() -> None:
    flow = Flow(TAG_GRAPH)
    async with client(build_app(flow, max_sessions=128)) as c:

        async def one(i: int) -> Any:
            resp = await c.post("/v1/infer", json={"inputs": [{"x": i}, {"x": -i}]})
            assert resp.status == 200
            return await resp.json()

        answers = await asyncio.gather(*(one(i) for i in range(100)))
    assert [a["outputs"]["y"] for a in answers] == [[10 * i, -10 * i] for i in range(100)]
    assert all(s.balanced for s in flow.statistics().sessions.values())


async def test_stream_websocket_frames_in_results_out() -> None:
    async with client(build_app(Flow(TAG_GRAPH))) as c:
        async with c.ws_connect("/v1/stream") as ws:
            for i in range(3):
                await ws.send_json({"inputs": {"x": i}})
            await ws.send_str("not json")
            await ws.send_json({"end": True})
            got = [await ws.receive_json() for _ in range(5)]
            closing = await ws.receive()
    assert got[0] == {"error": got[0]["error"], "reason": "json", "status": 400}
    assert got[0]["error"].startswith("frame is not valid JSON")
    assert got[1:] == [{"port": "y", "seq": i, "lineage": [], "data": 10 * i} for i in range(3)] + [
        {"end": True}
    ]
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_stream_binary_frames_go_to_the_only_input() -> None:
    async with client(build_app(Flow(IMAGE_GRAPH))) as c:
        async with c.ws_connect("/v1/stream") as ws:
            await ws.send_bytes(png(3, 5, 1))
            result = await ws.receive_json()
            await ws.send_json({"end": True})
            assert await ws.receive_json() == {"end": True}
    assert result["data"] == {"shape": [3, 5, 3], "sum": 45}


async def test_stream_client_disconnect_aborts_the_session() -> None:
    GATE.release.clear()
    flow = Flow(TAG_GRAPH)
    async with client(build_app(flow)) as c:
        ws = await c.ws_connect("/v1/stream")
        for i in range(3):
            await ws.send_json({"inputs": {"x": i}})
        await GATE.entered.wait()
        await ws.close()
        async with asyncio.timeout(5):
            while 1 not in flow._sup.aborted:  # noqa: ASYNC110 - the runtime offers no event
                await asyncio.sleep(0.01)
        GATE.release.set()
    (session,) = flow.statistics().sessions.values()
    assert session.sent == 3
    assert session.cancelled == 3
    assert session.balanced


async def test_schema_is_valid_json_schema_and_describes_real_traffic() -> None:
    async with client(build_app(Flow(IMAGE_GRAPH))) as c:
        doc = await (await c.get("/v1/schema")).json()
        request = {"inputs": {"image": base64.b64encode(png()).decode()}}
        response = await (await c.post("/v1/infer", json=request)).json()
    assert doc["openapi"].startswith("3.1")
    schemas = doc["components"]["schemas"]
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(request, schemas["InferRequest"])
    jsonschema.validate(response, schemas["InferResponse"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"inputs": {"nope": 1}}, schemas["InferRequest"])
    image = schemas["InferRequest"]["properties"]["inputs"]["oneOf"][0]["properties"]["image"]
    assert image["anyOf"][0]["contentEncoding"] == "base64"
    tensor = {"inputs": {"image": {"base64": "AAAA", "dtype": "uint8", "shape": [1, 1, 3]}}}
    jsonschema.validate(tensor, schemas["InferRequest"])


async def test_metrics_parse_and_count_per_node() -> None:
    async with client(build_app(Flow(TAG_GRAPH))) as c:
        for i in range(5):
            await (await c.post("/v1/infer", json={"inputs": {"x": i}})).json()
        text = await (await c.get("/metrics")).text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    received = {
        s.labels["node"]: s.value
        for s in families["actorflow_node_received"].samples
        if s.name.endswith("_total")
    }
    assert received == {"tag": 5.0}
    assert {s.labels["node"] for s in families["actorflow_node_mailbox_size"].samples} == {"tag"}
    counts = [
        s.value
        for s in families["actorflow_request_seconds"].samples
        if s.name.endswith("_count") and s.labels["endpoint"] == "/v1/infer"
    ]
    assert counts == [5.0]
    assert families["actorflow_sessions"].samples[0].value == 5.0
    delivered = [
        s.value
        for s in families["actorflow_session_items"].samples
        if s.labels.get("outcome") == "delivered" and s.name.endswith("_total")
    ]
    assert delivered == [5.0]


async def test_health_and_readiness() -> None:
    app = build_app(Flow(TAG_GRAPH))
    async with client(app) as c:
        assert (await c.get("/healthz")).status == 200
        assert (await c.get("/readyz")).status == 200
        app[STATE].draining = True
        resp = await c.get("/readyz")
        assert resp.status == 503
        resp = await c.post("/v1/infer", json={"inputs": {"x": 1}})
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "1"
        assert (await resp.json())["reason"] == "shutting_down"


async def test_graceful_shutdown_finishes_requests_in_flight() -> None:
    GATE.release.clear()
    flow = Flow(TAG_GRAPH)
    app = build_app(flow)
    shutting_down = asyncio.Event()

    async def on_shutdown(app: web.Application) -> None:
        shutting_down.set()

    app.on_shutdown.append(on_shutdown)
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        request = asyncio.ensure_future(
            http.post(f"http://127.0.0.1:{port}/v1/infer", json={"inputs": {"x": 7}})
        )
        await GATE.entered.wait()
        cleanup = asyncio.ensure_future(runner.cleanup())
        await shutting_down.wait()
        GATE.release.set()
        resp = await request
        assert resp.status == 200
        assert await resp.json() == {"outputs": {"y": [70]}, "errors": []}
        await cleanup
    assert flow.state == "stopped"


async def test_shutdown_is_bounded_when_a_request_never_finishes() -> None:
    GATE.release.clear()
    flow = Flow(TAG_GRAPH, stop_grace=0.2)
    runner = web.AppRunner(build_app(flow), shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        request = asyncio.ensure_future(
            http.post(f"http://127.0.0.1:{port}/v1/infer", json={"inputs": {"x": 7}})
        )
        await GATE.entered.wait()
        async with asyncio.timeout(10):
            await runner.cleanup()
        with pytest.raises(aiohttp.ClientError):
            await request
    assert flow.state == "stopped"
    assert flow.statistics().sessions[1].cancelled == 1


async def test_stream_frame_past_the_body_limit_closes_with_1009() -> None:
    async with client(build_app(Flow(TAG_GRAPH), max_body=1024)) as c:
        async with c.ws_connect("/v1/stream") as ws:
            await ws.send_str(json.dumps({"inputs": {"x": 1}, "pad": "a" * 4096}))
            msg = await ws.receive()
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_shutdown_closes_streams_with_going_away() -> None:
    runner = web.AppRunner(build_app(Flow(TAG_GRAPH)), shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://127.0.0.1:{port}/v1/stream") as ws:
            await ws.send_json({"inputs": {"x": 4}})
            assert (await ws.receive_json())["data"] == 40
            cleanup = asyncio.ensure_future(runner.cleanup())
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.CLOSE
            assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
        await cleanup
