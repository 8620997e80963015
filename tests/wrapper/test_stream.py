"""Session hooks over WebSocket (``GET /v1/stream``) and ``actorflow serve`` dispatch."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer

from actorflow.serve import Limits, load_app
from actorflow.wrapper import (
    DataListCls,
    IntegerParamField,
    Response,
    ResponseData,
    SessionCreateResponse,
    StringBodyField,
    WrapperBase,
    build_app,
)

pytestmark = pytest.mark.anyio


class Chunks(WrapperBase):
    """Collects text chunks per session; ``limit`` chunks at most."""

    calls: ClassVar[list[str]] = []

    class requestCls:
        limit = IntegerParamField("limit", minimum=1, maximum=10, value=5)
        text = StringBodyField("text")

    def wrapperInit(self, config: dict[str, Any]) -> int:
        self.sessions: dict[str, list[str]] = {}
        self.limits: dict[str, int] = {}
        return 0

    def wrapperCreate(self, params: dict[str, Any], sid: str) -> SessionCreateResponse:
        handle = f"h{len(self.sessions)}"
        self.sessions[handle] = []
        self.limits[handle] = params["limit"]
        self.calls.append(f"create {handle}")
        return SessionCreateResponse(handle)

    def wrapperWrite(self, handle: str, reqData: DataListCls, sid: str) -> int:
        if len(self.sessions[handle]) >= self.limits[handle]:
            return 7
        node = reqData.list[0]
        self.sessions[handle].append(f"{str(node.data, 'utf-8')}/{node.status}")
        return 0

    def wrapperRead(self, handle: str, sid: str) -> Response:
        return Response([ResponseData("text", ",".join(self.sessions[handle]))])

    def wrapperDestroy(self, handle: str) -> int:
        self.calls.append(f"destroy {handle}")
        return 0

    def wrapperFini(self) -> int:
        return 0

    def wrapperError(self, code: int) -> str:
        return "too many chunks"

    def wrapperOnceExec(self, params: dict[str, Any], reqData: DataListCls) -> Response:
        return Response()


async def test_websocket_session_maps_to_session_hooks() -> None:
    Chunks.calls = []
    async with TestServer(build_app(Chunks), host="127.0.0.1") as server:
        async with TestClient(server) as client, client.ws_connect("/v1/stream") as ws:
            with anyio.fail_after(10):
                await ws.send_json({"parameter": {"limit": 3}})
                assert (await ws.receive_json())["code"] == 0
                await ws.send_bytes(b"a")
                first = await ws.receive_json()
                await ws.send_json({"payload": {"text": "b"}, "status": 2})
                second = await ws.receive_json()
                assert await ws.receive_json() == {"end": True}
    assert first["payload"]["text"]["data"] == "a/1"
    assert second["payload"]["text"]["data"] == "a/1,b/2"
    assert Chunks.calls == ["create h0", "destroy h0"]


async def test_websocket_error_code_ends_the_session_with_its_message() -> None:
    Chunks.calls = []
    async with TestServer(build_app(Chunks), host="127.0.0.1") as server:
        async with TestClient(server) as client, client.ws_connect("/v1/stream") as ws:
            with anyio.fail_after(10):
                await ws.send_json({"parameter": {"limit": 1}})
                await ws.receive_json()
                await ws.send_json({"payload": {"text": "a"}})
                await ws.receive_json()
                await ws.send_json({"payload": {"text": "b"}})
                assert await ws.receive_json() == {
                    "code": 7,
                    "message": "too many chunks",
                    "error": "too many chunks",
                    "reason": "wrapper_error",
                    "status": 500,
                }
                assert await ws.receive_json() == {"end": True}
    assert Chunks.calls == ["create h0", "destroy h0"]


async def test_websocket_invalid_parameters_are_refused_before_create() -> None:
    Chunks.calls = []
    async with TestServer(build_app(Chunks), host="127.0.0.1") as server:
        async with TestClient(server) as client, client.ws_connect("/v1/stream") as ws:
            with anyio.fail_after(10):
                await ws.send_json({"parameter": {"limit": 99}})
                error = await ws.receive_json()
    assert (error["code"], error["field"], error["reason"]) == (400, "limit", "range")
    assert Chunks.calls == []


async def test_actorflow_serve_dispatches_py_files_to_build_app(echo_file: Path) -> None:
    app = load_app(echo_file)
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
        request = {
            "parameter": {"mode": "music"},
            "payload": {"data": base64.b64encode(b"abcd").decode()},
        }
        response = await client.post("/v1/infer", json=request)
        assert response.status == 200
        assert (await response.json())["payload"]["output_text"]["data"] == "echo music 2 4"


async def test_websocket_deep_json_is_a_400_message_and_ends_the_session() -> None:
    Chunks.calls = []
    async with TestServer(build_app(Chunks), host="127.0.0.1") as server:
        async with TestClient(server) as client, client.ws_connect("/v1/stream") as ws:
            with anyio.fail_after(10):
                await ws.send_json({"parameter": {"limit": 3}})
                await ws.receive_json()
                await ws.send_str('{"payload": ' + "[" * 100_000 + "]" * 100_000 + "}")
                error = await ws.receive_json()
                assert await ws.receive_json() == {"end": True}
    assert (error["status"], error["reason"]) == (400, "depth")
    assert Chunks.calls == ["create h0", "destroy h0"]


async def test_websocket_message_past_the_limit_closes_with_1009() -> None:
    app = build_app(Chunks, limits=Limits(ws_max_message=1024))
    async with TestServer(app, host="127.0.0.1") as server:
        async with TestClient(server) as client, client.ws_connect("/v1/stream") as ws:
            with anyio.fail_after(10):
                await ws.send_json({"parameter": {"limit": 3}, "pad": "a" * 4096})
                msg = await ws.receive()
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_websocket_streams_hold_a_request_slot() -> None:
    app = build_app(Chunks, concurrency=1, max_queue=0)
    async with TestServer(app, host="127.0.0.1") as server:
        async with TestClient(server) as client, client.ws_connect("/v1/stream") as ws:
            with anyio.fail_after(10):
                await ws.send_json({"parameter": {"limit": 3}})
                await ws.receive_json()
                refused = await client.get("/v1/stream")  # the only slot is taken
                assert refused.status == 429
                assert (await refused.json())["reason"] == "overloaded"
                assert refused.headers["Retry-After"] == "1"


async def test_a_client_that_leaves_mid_session_has_its_session_destroyed_once() -> None:
    Chunks.calls = []
    async with TestServer(build_app(Chunks), host="127.0.0.1") as server:
        async with TestClient(server) as client:
            with anyio.fail_after(10):
                async with client.ws_connect("/v1/stream") as ws:
                    await ws.send_json({"parameter": {"limit": 3}})
                    await ws.receive_json()
                    await ws.send_json({"payload": {"text": "a"}})
                    await ws.receive_json()
                # gone without {"end": true}; a second stream works meanwhile
                async with client.ws_connect("/v1/stream") as ws:
                    await ws.send_json({"parameter": {"limit": 3}})
                    await ws.receive_json()
                    await ws.send_json({"end": True})
                    assert await ws.receive_json() == {"end": True}
    assert sorted(Chunks.calls) == ["create h0", "create h1", "destroy h0", "destroy h1"]


async def test_interleaved_streams_keep_their_own_handles_across_replicas() -> None:
    Chunks.calls = []
    app = build_app(Chunks, concurrency=3)
    async with TestServer(app, host="127.0.0.1") as server:
        async with (
            TestClient(server) as client,
            client.ws_connect("/v1/stream") as a,
            client.ws_connect("/v1/stream") as b,
        ):
            with anyio.fail_after(10):
                for ws in (a, b):
                    await ws.send_json({"parameter": {"limit": 5}})
                    await ws.receive_json()
                got = {}
                for i in range(3):
                    for name, ws in (("a", a), ("b", b)):
                        await ws.send_json({"payload": {"text": f"{name}{i}"}})
                        got[name] = (await ws.receive_json())["payload"]["text"]["data"]
    assert got == {"a": "a0/1,a1/1,a2/1", "b": "b0/1,b1/1,b2/1"}


async def test_every_error_of_the_shared_app_carries_aiges_fields() -> None:
    async with TestServer(build_app(Chunks, max_body=100), host="127.0.0.1") as server:
        async with TestClient(server) as client:
            missing = await client.get("/v1/nothing")
            wrong = await client.get("/v1/infer")
            huge = await client.post("/v1/infer", json={"payload": {"text": "a" * 1000}})
            answers = [(r.status, await r.json()) for r in (missing, wrong, huge)]
    assert [status for status, _ in answers] == [404, 405, 413]
    for status, doc in answers:
        assert (doc["code"], doc["status"]) == (status, status)
        assert doc["message"] == doc["error"]
