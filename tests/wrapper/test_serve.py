"""Serving a wrapper over HTTP: a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import base64
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp.test_utils import TestClient, TestServer

from actorflow.serve import Limits
from actorflow.wrapper import (
    DataListCls,
    ImageBodyField,
    IntegerParamField,
    Response,
    ResponseData,
    WrapperBase,
    build_app,
    load_wrapper,
)

WAV_BYTES = b"RIFF\x24\x00\x00\x00WAVEfmt fake-audio"  # what conftest writes to test.wav

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(echo_file: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestServer(build_app(echo_file, concurrency=4), host="127.0.0.1") as server:
        async with TestClient(server) as client:
            yield client


def _json_request(**params: Any) -> dict[str, Any]:
    return {
        "parameter": {"mode": "music", **params},
        "payload": {"data": base64.b64encode(WAV_BYTES).decode()},
    }


async def test_valid_json_request_is_answered(client: TestClient[Any, Any]) -> None:
    response = await client.post("/v1/infer", json=_json_request(count=3))
    assert response.status == 200
    body = await response.json()
    assert body["code"] == 0
    assert body["payload"]["output_text"] == {
        "type": "text",
        "status": 3,
        "len": 15,
        "encoding": "utf8",
        "data": "echo music 3 26",
    }
    raw = body["payload"]["raw"]
    assert (raw["type"], raw["encoding"]) == ("audio", "base64")
    assert base64.b64decode(raw["data"]) == WAV_BYTES


async def test_multipart_request_is_answered(client: TestClient[Any, Any]) -> None:
    form = aiohttp.FormData()
    form.add_field("mode", "humming")
    form.add_field("count", "4")
    form.add_field("loud", "true")
    form.add_field("data", WAV_BYTES, filename="a.wav", content_type="audio/wav")
    form.add_field("note", b"hi there", filename="n.txt", content_type="text/plain")
    response = await client.post("/v1/infer", data=form)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["payload"]["output_text"]["data"] == "echo humming 4 26 hi there"


@pytest.mark.parametrize(
    ("params", "field", "reason", "fragment"),
    [
        pytest.param(
            {"mode": "jazz"}, "mode", "enum", "is not one of the allowed values", id="enum"
        ),
        pytest.param({"name": "x"}, "name", "length", "length 1 is below minLength 2", id="length"),
        pytest.param({"count": 9}, "count", "range", "9 is above the maximum 5", id="range"),
        pytest.param({"ratio": "high"}, "ratio", "type", "expected a number", id="type"),
        pytest.param({"mode": None}, "mode", "type", "expected a string", id="null"),
        pytest.param(
            {"colour": "red"}, "colour", "unknown", "unknown parameter 'colour'", id="unknown"
        ),
    ],
)
async def test_invalid_json_request_is_400_naming_the_field(
    client: TestClient[Any, Any],
    params: dict[str, Any],
    field: str,
    reason: str,
    fragment: str,
) -> None:
    response = await client.post("/v1/infer", json=_json_request(**params))
    assert response.status == 400
    body = await response.json()
    assert (body["code"], body["field"], body["reason"]) == (400, field, reason)
    assert fragment in body["message"]
    assert repr(field) in body["message"]


async def test_missing_required_fields_are_400(client: TestClient[Any, Any]) -> None:
    response = await client.post("/v1/infer", json={"parameter": {}, "payload": {}})
    assert response.status == 400
    body = await response.json()
    assert (body["field"], body["reason"]) == ("mode", "missing")
    assert "body field 'data' is required but missing" in body["message"]


async def test_multipart_text_that_does_not_convert_is_400(client: TestClient[Any, Any]) -> None:
    form = aiohttp.FormData()
    form.add_field("mode", "music")
    form.add_field("count", "three")
    form.add_field("data", WAV_BYTES, filename="a.wav")
    response = await client.post("/v1/infer", data=form)
    assert response.status == 400
    assert (await response.json())["field"] == "count"


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        pytest.param(b"{nope", "application/json", "not valid JSON", id="bad-json"),
        pytest.param(b'{"inputs": {}}', "application/json", '{"parameter"', id="bad-shape"),
        pytest.param(b"abc", "text/plain", "unsupported content type", id="content-type"),
    ],
)
async def test_malformed_bodies_are_400(
    client: TestClient[Any, Any], body: bytes, content_type: str, fragment: str
) -> None:
    response = await client.post("/v1/infer", data=body, headers={"Content-Type": content_type})
    assert response.status == 400
    assert fragment in (await response.json())["message"]


async def test_error_code_is_mapped_to_json_error_with_wrapper_error_text(
    client: TestClient[Any, Any],
) -> None:
    response = await client.post("/v1/infer", json=_json_request(fail=3001))
    assert response.status == 500
    assert await response.json() == {
        "code": 3001,
        "message": "Access Key不存在或错误",
        "error": "Access Key不存在或错误",
        "reason": "wrapper_error",
        "status": 500,
    }


async def test_schema_endpoints(client: TestClient[Any, Any]) -> None:
    openapi = await (await client.get("/v1/schema")).json()
    assert openapi["openapi"] == "3.1.0"
    assert "/v1/infer" in openapi["paths"]
    schemas = await (await client.get("/v1/jsonschema")).json()
    assert set(schemas) == {"request", "response", "error"}
    assert (await (await client.get("/readyz")).json())["status"] == "ready"
    assert (await client.get("/healthz")).status == 200


async def test_metrics_count_answers_by_status(client: TestClient[Any, Any]) -> None:
    await client.post("/v1/infer", json=_json_request())
    await client.post("/v1/infer", json=_json_request(mode="jazz"))
    text = await (await client.get("/metrics")).text()
    # the serving app's metrics, the same for graphs and wrappers
    assert 'actorflow_requests_total{endpoint="/v1/infer",status="200"} 1.0' in text
    assert 'actorflow_requests_total{endpoint="/v1/infer",status="400"} 1.0' in text


async def test_body_over_the_limit_is_413(echo_file: Path) -> None:
    app = build_app(echo_file, max_body=1024)
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
        response = await client.post("/v1/infer", json={"payload": {"data": "A" * 4096}})
        assert response.status == 413
        form = aiohttp.FormData()
        form.add_field("data", b"x" * 4096, filename="big.bin")
        response = await client.post("/v1/infer", data=form)
        assert response.status == 413


class Gate:
    """Blocks execs until released; counts how many ran at once."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Condition()
        self.running = 0
        self.peak = 0
        self.threads: set[str] = set()
        self.events: list[str] = []

    def wait_running(self, count: int) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: self.running >= count, timeout=10)


class Blocking(WrapperBase):
    gate = Gate()

    class requestCls:
        data = ImageBodyField("img")
        k = IntegerParamField("k", value=1)

    def wrapperInit(self, config: dict[str, Any]) -> int:
        self.gate.events.append("init")
        return 0

    def wrapperOnceExec(self, params: dict[str, Any], reqData: DataListCls) -> Response:
        gate = self.gate
        with gate.lock:
            gate.running += 1
            gate.peak = max(gate.peak, gate.running)
            gate.threads.add(threading.current_thread().name)
            gate.lock.notify_all()
        gate.release.wait(10)
        with gate.lock:
            gate.running -= 1
        return Response([ResponseData("n", reqData.list[0].len)])

    def wrapperFini(self) -> int:
        self.gate.events.append("fini")
        return 0

    def wrapperError(self, code: int) -> str:
        return "no"


async def test_concurrency_is_bounded_and_overflow_gets_429() -> None:
    Blocking.gate = gate = Gate()
    app = build_app(Blocking, concurrency=2, max_queue=0)
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
        statuses: list[int] = []

        async def post(n: int) -> None:
            response = await client.post(
                "/v1/infer?k=2", data=b"x" * n, headers={"Content-Type": "image/png"}
            )
            statuses.append(response.status)
            await response.read()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for n in range(2):
                    tg.start_soon(post, n)
                await anyio.to_thread.run_sync(gate.wait_running, 2)
                rejected = await client.post(
                    "/v1/infer", data=b"y", headers={"Content-Type": "image/png"}
                )
                assert rejected.status == 429
                assert rejected.headers["Retry-After"] == "1"
                gate.release.set()
        assert sorted(statuses) == [200, 200]
        assert gate.peak == 2
        assert all(name.startswith("actorflow-wrapper-Blocking") for name in gate.threads)
        assert gate.events == ["init"]
    assert gate.events == ["init", "fini"]


async def test_raw_body_is_handed_over_with_query_parameters() -> None:
    Blocking.gate = gate = Gate()
    gate.release.set()
    app = build_app(Blocking, concurrency=1)
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
        response = await client.post(
            "/v1/infer?k=3", data=b"12345", headers={"Content-Type": "image/png"}
        )
        assert response.status == 200
        assert (await response.json())["payload"]["n"]["data"] == 5
        response = await client.post(
            "/v1/infer?k=x", data=b"1", headers={"Content-Type": "image/png"}
        )
        assert response.status == 400
        assert (await response.json())["field"] == "k"


async def test_seed_file_wrapper_loads_from_path(echo_file: Path) -> None:
    assert load_wrapper(echo_file) is load_wrapper(str(echo_file))  # imported once


async def test_errors_neither_restart_nor_break_the_wrapper_node(echo_file: Path) -> None:
    app = build_app(echo_file, concurrency=4)
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
        ok = await client.post("/v1/infer", json=_json_request(count=4))
        assert ok.status == 200
        assert (await ok.json())["payload"]["output_text"]["data"] == "echo music 4 26"
        bad = await client.post("/v1/infer", json=_json_request(count=0))
        assert bad.status == 400
        assert (await bad.json())["field"] == "count"
        failed = await client.post("/v1/infer", json=_json_request(fail=4408))
        assert failed.status == 500
        assert (await failed.json())["message"] == "upstream timed out"
        again = await client.post("/v1/infer", json=_json_request())
        assert again.status == 200  # neither error restarted or broke the node
        assert (await (await client.get("/readyz")).json())["status"] == "ready"


def test_concurrency_below_one_is_refused(echo_file: Path) -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        build_app(echo_file, concurrency=-1)


async def test_hostile_bodies_get_json_answers_naming_the_problem(echo_file: Path) -> None:
    app = build_app(echo_file, limits=Limits(max_parts=4, max_json_depth=8))
    async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
        deep = '{"payload": ' + "[" * 100_000 + "]" * 100_000 + "}"
        response = await client.post(
            "/v1/infer", data=deep, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400
        assert (await response.json())["reason"] == "depth"
        form = aiohttp.FormData(default_to_multipart=True)
        for i in range(1000):
            form.add_field(f"p{i}", "x")
        response = await client.post("/v1/infer", data=form)
        assert response.status == 413
        body = await response.json()
        assert (body["reason"], body["status"], body["code"]) == ("parts", 413, 413)
        missing = await client.get("/nope")
        assert missing.status == 404
        assert (await missing.json())["reason"] == "not_found"


async def test_hook_exception_is_500_with_type_and_message(echo_file: Path) -> None:
    class Broken(WrapperBase):
        serviceId = "broken"

        class requestCls:
            n = IntegerParamField("n", value=1)

        def wrapperInit(self, config: Any) -> int:
            return 0

        def wrapperOnceExec(self, params: dict[str, Any], reqData: DataListCls) -> Response:
            return (
                Response(list=[ResponseData(key="x", data=float("nan"))])
                if params["n"] == 2
                else Response(list=[ResponseData(key="x", data=str(1 // (params["n"] - 1)))])
            )

    async with TestServer(build_app(Broken), host="127.0.0.1") as server:
        async with TestClient(server) as client:
            failed = await client.post("/v1/infer", json={"parameter": {"n": 1}})
            nan = await client.post("/v1/infer", json={"parameter": {"n": 2}})
            body = await failed.json()
            text = await nan.text()
    assert failed.status == 500
    assert (body["reason"], body["type"]) == ("unit_failed", "ZeroDivisionError")
    assert "integer division or modulo by zero" in body["message"]
    assert "NaN" not in text
