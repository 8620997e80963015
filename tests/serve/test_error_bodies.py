"""Errors that are answers: every refusal of ``actorflow serve`` is a JSON body naming
the problem, results are strict JSON, a unit's failure names its type and message."""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actorflow.runtime import Flow
from actorflow.serve import Limits, build_app
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


class Weird(FlowUnit):
    """Emits NaN/Infinity for ``"nan"``, fails for ``"boom"``, echoes the rest."""

    name: ClassVar[str] = "test_errors_weird"
    x: ClassVar[Input[Any]] = Input("x", object)
    y: ClassVar[Output[Any]] = Output("y", object)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        if packet.data == "boom":
            msg = "cannot handle 'boom' (send a number)"
            raise ValueError(msg)
        if packet.data == "nan":
            value = {"nan": float("nan"), "inf": [float("inf"), -float("inf")], "ok": 1.5}
            await ctx.emit(self.y, packet.replace({**value, "array": np.array([np.nan, 2.0])}))
            return
        await ctx.emit(self.y, packet.replace(packet.data))


class Shape(FlowUnit):
    """Reports an image's shape."""

    name: ClassVar[str] = "test_errors_shape"
    image: ClassVar[Input[Any]] = Input("image", np.ndarray)
    info: ClassVar[Output[Any]] = Output("info", dict)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit(self.info, packet.replace(list(packet.data.shape)))


GRAPH = {
    "name": "weird",
    "nodes": {
        "x": {"type": "input"},
        "weird": {"flowunit": "test_errors_weird"},
        "y": {"type": "output"},
    },
    "edges": ["x -> weird:x", "weird:y -> y"],
}
IMAGES = {
    "name": "images",
    "nodes": {
        "image": {"type": "input"},
        "shape": {"flowunit": "test_errors_shape"},
        "info": {"type": "output"},
    },
    "edges": ["image -> shape:image", "shape:info -> info"],
}


def client(app: web.Application) -> TestClient[Any, Any]:
    return TestClient(TestServer(app, host="127.0.0.1"))


def strict(text: str) -> Any:
    """Parse JSON refusing NaN/Infinity tokens (what browsers and most parsers do)."""

    def refuse(token: str) -> Any:
        msg = f"not JSON: {token}"
        raise ValueError(msg)

    return json.loads(text, parse_constant=refuse)


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


async def error_of(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert resp.status == status
    assert resp.content_type == "application/json"
    doc: dict[str, Any] = strict(await resp.text())
    assert doc["status"] == status
    assert isinstance(doc["error"], str)
    assert doc["error"]
    return doc


async def test_hundred_thousand_deep_json_is_400_naming_depth() -> None:
    async with client(build_app(Flow(GRAPH))) as c:
        body = '{"inputs": {"x": ' + deep(100_000) + "}}"
        doc = await error_of(await c.post("/v1/infer", data=body), 400)
        assert doc["reason"] == "depth"
        assert "64 levels" in doc["error"]
        # the server still answers
        ok = await c.post("/v1/infer", json={"inputs": {"x": 1}})
        assert await ok.json() == {"outputs": {"y": [1]}, "errors": []}


async def test_json_depth_limit_is_exact() -> None:
    app = build_app(Flow(GRAPH), limits=Limits(max_json_depth=5))
    async with client(app) as c:
        at_limit = {"inputs": {"x": [[[1]]]}}  # object, object, three lists: 5 levels
        resp = await c.post("/v1/infer", json=at_limit)
        assert (await resp.json())["outputs"] == {"y": [[[[1]]]]}
        past = {"inputs": {"x": [[[[1]]]]}}
        doc = await error_of(await c.post("/v1/infer", json=past), 400)
        assert doc["reason"] == "depth"


async def test_huge_integer_and_bad_syntax_are_400_json() -> None:
    async with client(build_app(Flow(GRAPH))) as c:
        digits = '{"inputs": {"x": ' + "7" * 5000 + "}}"
        assert (await error_of(await c.post("/v1/infer", data=digits), 400))["reason"] == "json"
        junk = b"\xff\xfe{not json"
        assert (await error_of(await c.post("/v1/infer", data=junk), 400))["reason"] == "json"


async def test_bad_port_and_bad_values_name_the_field() -> None:
    async with client(build_app(Flow(IMAGES))) as c:
        doc = await error_of(await c.post("/v1/infer", json={"inputs": {"img": "x"}}), 400)
        assert (doc["field"], doc["reason"]) == ("inputs.img", "unknown_port")
        doc = await error_of(await c.post("/v1/infer", json={"inputs": {"image": 5}}), 400)
        assert (doc["field"], doc["reason"]) == ("inputs.image", "type")
        tensor = {"base64": base64.b64encode(b"\0" * 5).decode(), "dtype": "uint8", "shape": [2]}
        doc = await error_of(await c.post("/v1/infer", json={"inputs": {"image": tensor}}), 400)
        assert (doc["field"], doc["reason"]) == ("inputs.image", "shape")
        noimage = base64.b64encode(b"not an image").decode()
        doc = await error_of(await c.post("/v1/infer", json={"inputs": {"image": noimage}}), 400)
        assert (doc["field"], doc["reason"]) == ("inputs.image", "image")


async def test_every_413_is_json() -> None:
    async with client(build_app(Flow(GRAPH), max_body=1024)) as c:
        declared = await c.post("/v1/infer", data=b"x" * 4096)  # Content-Length says it
        assert (await error_of(declared, 413))["reason"] == "size"

        async def chunks() -> Any:
            for _ in range(8):
                yield b" " * 1024

        streamed = await c.post(
            "/v1/infer", data=chunks(), headers={"Content-Type": "application/json"}
        )
        assert (await error_of(streamed, 413))["reason"] == "size"


async def test_unknown_route_and_method_are_json() -> None:
    async with client(build_app(Flow(GRAPH))) as c:
        assert (await error_of(await c.get("/nope"), 404))["reason"] == "not_found"
        assert (await error_of(await c.get("/v1/infer"), 405))["reason"] == "method"


async def test_unit_failure_is_500_with_type_message_and_node() -> None:
    async with client(build_app(Flow(GRAPH))) as c:
        resp = await c.post("/v1/infer", json={"inputs": [{"x": 1}, {"x": "boom"}]})
        doc = await error_of(resp, 500)
    assert doc["reason"] == "unit_failed"
    assert doc["outputs"] == {"y": [1]}
    (failed,) = doc["errors"]
    assert failed["node"] == "weird"
    assert failed["type"] == "ValueError"
    assert failed["message"] == "cannot handle 'boom' (send a number)"
    assert failed["seq"] == 1
    assert "ValueError" in doc["error"]


async def test_nan_and_infinity_results_are_null() -> None:
    async with client(build_app(Flow(GRAPH))) as c:
        resp = await c.post("/v1/infer", json={"inputs": {"x": "nan"}})
        doc = strict(await resp.text())
        async with c.ws_connect("/v1/stream") as ws:
            await ws.send_json({"inputs": {"x": "nan"}})
            frame = strict((await ws.receive()).data)
            await ws.send_json({"end": True})
            assert await ws.receive_json() == {"end": True}
    expected = {"nan": None, "inf": [None, None], "ok": 1.5, "array": [None, 2.0]}
    assert doc["outputs"]["y"] == [expected]
    assert frame["data"] == expected


async def test_stream_answers_bad_frames_and_failures_with_the_same_bodies() -> None:
    async with client(build_app(Flow(GRAPH))) as c:
        async with c.ws_connect("/v1/stream") as ws:
            await ws.send_str('{"inputs": {"x": ' + deep(100_000) + "}}")
            too_deep = await ws.receive_json()
            await ws.send_json({"inputs": {"nope": 1}})
            unknown = await ws.receive_json()
            await ws.send_json({"inputs": {"x": "boom"}})
            failed = await ws.receive_json()
            await ws.send_json({"inputs": {"x": 2}})
            ok = await ws.receive_json()
            await ws.send_json({"end": True})
            assert await ws.receive_json() == {"end": True}
    assert (too_deep["status"], too_deep["reason"]) == (400, "depth")
    assert (unknown["status"], unknown["reason"], unknown["field"]) == (
        400,
        "unknown_port",
        "inputs.nope",
    )
    assert (failed["node"], failed["type"]) == ("weird", "ValueError")
    assert failed["message"] == "cannot handle 'boom' (send a number)"
    assert ok["data"] == 2


async def test_multipart_part_count_and_part_size_are_413() -> None:
    app = build_app(Flow(GRAPH), limits=Limits(max_parts=8, max_part=64))
    async with client(app) as c:
        many = aiohttp.FormData(default_to_multipart=True)
        for _ in range(10_000):  # about 1 MB: within max_body, past max_parts
            many.add_field("x", "1")
        doc = await error_of(await c.post("/v1/infer", data=many), 413)
        assert doc["reason"] == "parts"
        assert "more than 8 parts" in doc["error"]
        big = aiohttp.FormData(default_to_multipart=True)
        big.add_field("x", "1" * 65)
        doc = await error_of(await c.post("/v1/infer", data=big), 413)
        assert (doc["reason"], doc["field"]) == ("size", "x")
        ok = aiohttp.FormData(default_to_multipart=True)
        ok.add_field("x", "1" * 64)
        assert (await c.post("/v1/infer", data=ok)).status == 200


async def test_an_empty_image_is_400_not_500() -> None:
    async with client(build_app(Flow(IMAGES))) as c:
        doc = await error_of(await c.post("/v1/infer", json={"inputs": {"image": ""}}), 400)
        assert (doc["field"], doc["reason"]) == ("inputs.image", "image")
        form = aiohttp.FormData()
        form.add_field("image", b"", filename="empty.png", content_type="image/png")
        doc = await error_of(await c.post("/v1/infer", data=form), 400)
        assert doc["reason"] == "image"
        async with c.ws_connect("/v1/stream") as ws:
            await ws.send_bytes(b"")
            frame = await ws.receive_json()
            await ws.send_json({"end": True})
            assert await ws.receive_json() == {"end": True}
        assert (frame["status"], frame["reason"]) == (400, "image")


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))
    assert ok
    return bytes(buf)


def with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG claiming another size, with a correct CRC (a decompression bomb)."""
    import struct
    import zlib

    ihdr = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


@pytest.mark.parametrize(
    ("data", "reason", "fragment"),
    [
        pytest.param(b"GIF89a" + b"\0" * 20, "image", "not a PNG, JPEG, WebP or BMP", id="gif"),
        pytest.param(png_bytes()[:40], "image", "malformed PNG", id="truncated-png"),
        pytest.param(
            png_bytes()[:30] + b"\xde" + png_bytes()[31:], "image", "wrong CRC", id="bad-crc"
        ),
        pytest.param(with_ihdr_size(png_bytes(), 100_000, 100_000), "size", "exceeds", id="bomb"),
    ],
)
async def test_hostile_images_are_refused_before_decoding(
    data: bytes, reason: str, fragment: str
) -> None:
    async with client(build_app(Flow(IMAGES))) as c:
        body = {"inputs": {"image": base64.b64encode(data).decode()}}
        doc = await error_of(await c.post("/v1/infer", json=body), 400)
        assert (doc["field"], doc["reason"]) == ("inputs.image", reason)
        assert fragment in doc["error"]
        ok = {"inputs": {"image": base64.b64encode(png_bytes(3, 2)).decode()}}
        assert (await (await c.post("/v1/infer", json=ok)).json())["outputs"] == {
            "info": [[2, 3, 3]]
        }


@pytest.mark.parametrize(
    ("value", "reason", "fragment"),
    [
        pytest.param(
            {"base64": "", "dtype": ",n", "shape": []}, "type", "dtype must be one of", id="dtype"
        ),
        pytest.param({"base64": "", "dtype": ["x"], "shape": []}, "type", "dtype", id="dtype-list"),
        pytest.param([[1e39, 1.0]], "type", "float32 range", id="float32-overflow"),
    ],
)
async def test_found_by_fuzzing_tensor_values_are_400(
    value: object, reason: str, fragment: str
) -> None:
    async with client(build_app(Flow(IMAGES))) as c:
        doc = await error_of(await c.post("/v1/infer", json={"inputs": {"image": value}}), 400)
    assert (doc["field"], doc["reason"]) == ("inputs.image", reason)
    assert fragment in doc["error"]
