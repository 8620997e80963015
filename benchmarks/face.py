"""Face recognition throughput: detect + align + embed, on one core, in one run.

Variants, interleaved round by round (medians of ``--rounds``), all on the same
images (skimage's astronaut and cameraman plus enlarged LFW faces, one face each):

* ``direct_loop``: YuNet (``cv2.FaceDetectorYN``) + alignment + one ``session.run`` of
  SFace per face, in a plain Python loop: the baseline.
* ``direct_batched``: the same, with the faces of ``--batch`` images stacked into one
  SFace call.
* ``flow_unbatched``: the ``face_recognition`` unit in a flow, ``batch_size = 1``,
  timed from the first image sent to the last result (opening the flow, which loads
  the models, is not timed; neither is loading them for the direct variants).
* ``flow_batched``: the same unit with ``batch_size = --batch`` (one SFace call per
  batch, across images).

Also: SFace alone, int8 as shipped vs dequantized at load (ms per face).

"One core": the process is pinned to one CPU, onnxruntime runs 1 intra-op thread and
OpenCV 1 thread. Prints one JSON document with faces/s and ratios to ``direct_loop``.

Run: ``.venv/bin/python benchmarks/face.py [--images 48] [--batch 8] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import cv2
import numpy as np
import onnxruntime as ort
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support import faces  # the test set's photos

from actorflow.flowunits.face._models import (
    SFACE_MODEL,
    model_path,
    sface_model_bytes,
)
from actorflow.flowunits.face.align import align_face
from actorflow.flowunits.face.detect import YuNetDetector
from actorflow.flowunits.face.embed import l2_normalize
from actorflow.flowunits.face.recognize import FaceRecognizer
from actorflow.runtime import Flow


def images(count: int) -> list[np.ndarray]:
    pool = [faces.astronaut(), faces.cameraman(), *(faces.lfw_face(i) for i in (0, 3, 5, 95))]
    return [pool[i % len(pool)] for i in range(count)]


def session(dequantize: bool) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    model = sface_model_bytes(model_path(SFACE_MODEL), dequantize=dequantize)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def direct(batch: int, frames: list[np.ndarray], detector: YuNetDetector, sess: Any) -> int:
    done = 0
    for start in range(0, len(frames), batch):
        crops = []
        for image in frames[start : start + batch]:
            dets = detector.detect(image)
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            crops.extend(align_face(rgb, p) for p in dets.data["landmarks"])
        if batch == 1:
            for crop in crops:
                x = crop.transpose(2, 0, 1)[None].astype(np.float32)
                l2_normalize(sess.run(["fc1"], {"data": x})[0])
        elif crops:
            x = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)
            l2_normalize(sess.run(["fc1"], {"data": x})[0])
        done += len(crops)
    return done


async def flow_run(frames: list[np.ndarray], gallery: Path, batch: int) -> tuple[float, int]:
    """Seconds from the first image sent to the last result (the flow already open)."""
    graph = {
        "nodes": {
            "image": {"type": "input"},
            "faces": {
                "flowunit": "face_recognition",
                "gallery": str(gallery),
                "device": "cpu",
                "batch_size": batch,
                "batch_timeout": 0.005,
                "queue_size": 64,
            },
            "out": {"type": "output"},
        },
        "edges": ["image -> faces:image", "faces:detections -> out"],
    }
    found = 0
    async with Flow(graph) as flow:  # opening loads the models: not timed
        session = flow.session()
        start = time.perf_counter()

        async def feed() -> None:
            for image in frames:
                await session.send("image", image)
            await session.close()

        async with anyio.create_task_group() as tg:
            tg.start_soon(feed)
            async for result in session:
                found += len(result.data)
        seconds = time.perf_counter() - start
    return seconds, found


def timed(fn: Any) -> tuple[float, int]:
    start = time.perf_counter()
    faces_done = fn()
    return time.perf_counter() - start, faces_done


def main(count: int, batch: int, rounds: int) -> dict[str, Any]:
    cpu = sorted(os.sched_getaffinity(0))[0]
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    frames = images(count)
    detector = YuNetDetector()
    sess_fp32, sess_int8 = session(True), session(False)
    with tempfile.TemporaryDirectory() as tmp:
        gallery_path = Path(tmp) / "people.npz"
        root = faces.write_photos(
            Path(tmp) / "photos",
            {"astronaut": [faces.astronaut()], "cameraman": [faces.cameraman()]},
        )
        FaceRecognizer().build_gallery(root)[0].save(gallery_path)
        variants = {
            "direct_loop": lambda: direct(1, frames, detector, sess_fp32),
            "direct_batched": lambda: direct(batch, frames, detector, sess_fp32),
        }
        flows = {"flow_unbatched": 1, "flow_batched": batch}
        for fn in variants.values():  # warm-up: sessions, caches, first-call costs
            fn()
        runs: dict[str, list[float]] = {k: [] for k in [*variants, *flows]}
        total: dict[str, int] = {}
        for _ in range(rounds):
            for name, fn in variants.items():
                seconds, total[name] = timed(fn)
                runs[name].append(seconds)
            for name, size in flows.items():
                seconds, total[name] = anyio.run(flow_run, frames, gallery_path, size)
                runs[name].append(seconds)
    crop = np.random.default_rng(0).integers(0, 256, (8, 3, 112, 112)).astype(np.float32)
    embed_ms: dict[str, list[float]] = {"int8_as_shipped": [], "dequantized_fp32": []}
    for _ in range(rounds):
        for name, sess in (("int8_as_shipped", sess_int8), ("dequantized_fp32", sess_fp32)):
            start = time.perf_counter()
            for row in crop:
                sess.run(["fc1"], {"data": row[None]})
            embed_ms[name].append((time.perf_counter() - start) / len(crop) * 1e3)
    fps = {k: total[k] / statistics.median(v) for k, v in runs.items()}
    base = fps["direct_loop"]
    return {
        "benchmark": "face",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, pinned to cpu {cpu}",
        "images": count,
        "faces_per_run": total,
        "batch": batch,
        "rounds": rounds,
        "faces_per_s_median": {k: round(v, 2) for k, v in fps.items()},
        "ratio_to_direct_loop": {k: round(v / base, 3) for k, v in fps.items()},
        "sface_ms_per_face_median": {
            k: round(statistics.median(v), 2) for k, v in embed_ms.items()
        },
    }


if __name__ == "__main__":
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40)
    )  # errors only: timings, not logs
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(main(args.images, args.batch, args.rounds), indent=2))
