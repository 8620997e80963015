"""Seed 004 as written: the DaoAI workflow JSON, real face models, a local webhook.

``tests/data/seed004_workflow.json`` is the seed's JSON verbatim. The tests change
``url`` and add ONE field, ``"gallery": "people.npz"`` on the face recognition step
(DaoAI's model reads a hosted identity library; ours reads a gallery file).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from support import faces

from actorflow.errors import CustomCodeDisabled
from actorflow.flowunits.detection.detections import Detections
from actorflow.flowunits.face.recognize import FaceRecognizer
from actorflow.graph import load_graph
from actorflow.runtime import Flow

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]

SEED = Path(__file__).resolve().parents[1] / "data" / "seed004_workflow.json"


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gallery with the astronaut and the cameraman, built from photos."""
    root = faces.write_photos(
        tmp_path_factory.mktemp("photos"),
        {"astronaut": [faces.astronaut()], "cameraman": [faces.cameraman()]},
    )
    gallery, _ = FaceRecognizer().build_gallery(root)
    path = root / "people.npz"
    gallery.save(path)
    return path


class Webhook:
    """A real aiohttp server on 127.0.0.1 that records every JSON POST."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.url = ""

    async def __aenter__(self) -> Webhook:
        async def hook(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


def seed_with(tmp_path: Path, url: str, gallery: Path) -> tuple[Path, dict[str, Any]]:
    """The seed's JSON with ``url`` changed and ``gallery`` added; nothing else."""
    original = json.loads(SEED.read_text(encoding="utf-8"))
    doc = copy.deepcopy(original)
    steps = {step["name"]: step for step in doc["steps"]}
    steps["Face_recognition_handler"]["url"] = url
    steps["face_recognition_model_1"]["gallery"] = "people.npz"  # the one added field
    (tmp_path / "people.npz").write_bytes(gallery.read_bytes())
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    changed = [
        (a["name"], key)
        for a, b in zip(original["steps"], doc["steps"], strict=True)
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]
    assert changed == [("face_recognition_model_1", "gallery"), ("Face_recognition_handler", "url")]
    return path, doc


async def run(path: Path, images: list[np.ndarray]) -> list[dict[str, Any]]:
    """Run the workflow once per image; return each run's outputs by name."""
    flow = Flow(load_graph(path, allow_custom_code=True))
    runs: list[dict[str, Any]] = [{} for _ in images]
    async with flow:
        session = flow.session()
        for image in images:
            await session.send("image", image)
        await session.close()
        async for result in session:
            assert result.error is None, result.error
            runs[result.seq][result.port] = result.data
    return runs


async def test_the_seed_workflow_runs_as_written(tmp_path: Path, people: Path) -> None:
    images = [
        faces.astronaut(),
        faces.lfw_face(95),  # a real face nobody enrolled
        faces.noise(faces.flip(faces.cameraman())),
        np.full((240, 320, 3), 127, np.uint8),  # no face at all
    ]
    async with Webhook() as hook:
        path, _ = seed_with(tmp_path, hook.url, people)
        runs = await run(path, images)
    messages = [
        "识别到人员:astronaut",
        "未在身份库中匹配到对应人员",
        "识别到人员:cameraman",
        "未检测到人员",
    ]
    assert [m["message"] for m in hook.received] == messages  # one POST per image
    assert all(set(m) == {"message", "timestamp"} for m in hook.received)
    assert all(isinstance(m["timestamp"], int) for m in hook.received)
    for image, outputs, message in zip(images, runs, messages, strict=True):
        assert outputs["message"] == message
        assert outputs["status_code"] == 200
        assert outputs["debug_message"] == "ok"
        predictions = outputs["face_recognition_model_1_1"]
        assert isinstance(predictions, Detections)
        assert predictions.data["class_name"].dtype.kind == "U"  # np.char works on it
        boxed, labelled = (
            outputs["bounding_box_visualization_1_1"],
            outputs["label_visualization_1_1"],
        )
        assert boxed.shape == labelled.shape == image.shape
        assert (boxed != image).any() == (len(predictions) > 0)
        assert (labelled != boxed).any() == (len(predictions) > 0)
    assert runs[0]["face_recognition_model_1_1"].data["class_name"].tolist() == ["astronaut"]


async def test_adding_a_person_needs_no_restart(tmp_path: Path, people: Path) -> None:
    async with Webhook() as hook:
        path, _ = seed_with(tmp_path, hook.url, people)
        flow = Flow(load_graph(path, allow_custom_code=True))
        async with flow:
            session = flow.session()
            stranger = faces.lfw_face(95)
            await session.send("image", stranger)
            async for result in session:
                if result.port == "message":
                    break
            root = faces.write_photos(tmp_path / "more", {"newcomer": [stranger]})
            FaceRecognizer().build_gallery(root)[0].save(tmp_path / "people.npz")
            await session.send("image", faces.brightness(stranger, 0.8))
            await session.close()
            async for _ in session:
                pass
    assert [m["message"] for m in hook.received] == [
        "未在身份库中匹配到对应人员",
        "识别到人员:newcomer",
    ]


async def test_the_seed_workflow_is_refused_without_custom_code(
    tmp_path: Path, people: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACTORFLOW_ALLOW_CUSTOM_CODE", raising=False)
    path, _ = seed_with(tmp_path, "http://127.0.0.1:9/", people)
    with pytest.raises(CustomCodeDisabled, match="Face_recognition_handler"):
        load_graph(path)
