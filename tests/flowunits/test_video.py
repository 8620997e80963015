from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import cv2
import numpy as np
import pytest
from structlog.testing import capture_logs

from actorflow.errors import FlowFailed, UnitConfigError
from actorflow.flowunits.detection.detections import Detections
from actorflow.flowunits.video.sinks import (
    ImageDirSink,
    JsonLinesSink,
    VideoWriterSink,
    to_jsonable,
)
from actorflow.flowunits.video.sources import VideoSource, natural_key
from actorflow.runtime import Flow, Status
from actorflow.testing import UnitRunner

pytestmark = pytest.mark.anyio


def write_video(path: Path, count: int) -> None:
    """``count`` 64 x 48 MJPG frames; frame i is uniformly grey level 10 * i."""
    writer = cv2.VideoWriter(
        str(path), cv2.CAP_FFMPEG, cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (64, 48)
    )
    assert writer.isOpened()
    for i in range(count):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


async def run_to_end(nodes: dict[str, Any], edges: list[str]) -> Status:
    flow = Flow({"name": "video", "nodes": nodes, "edges": edges})
    with anyio.fail_after(30):
        await flow.run_async()
        return await flow.wait()


def grey(frame: Any) -> int:
    return round(float(np.mean(frame)) / 10)


async def test_video_file_round_trip_in_order(tmp_path: Path) -> None:
    write_video(tmp_path / "in.avi", 12)
    nodes = {
        "video": {"flowunit": "video_source", "uri": str(tmp_path / "in.avi")},
        "small": {"flowunit": "resize", "width": 32, "height": 24},
        "writer": {"flowunit": "video_writer_sink", "path": str(tmp_path / "out/x.avi"), "fps": 15},
        "jsonl": {"flowunit": "json_lines_sink", "path": str(tmp_path / "out/x.jsonl")},
    }
    edges = [
        "video:frame -> small:image",
        "small:image -> writer:frame",
        "video:frame -> jsonl:data",
    ]
    assert await run_to_end(nodes, edges) == Status.STOP
    frames = read_video(tmp_path / "out/x.avi")
    assert [grey(f) for f in frames] == list(range(12))
    assert frames[0].shape == (24, 32, 3)
    lines = (tmp_path / "out/x.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(12))
    assert [grey(r["data"]) for r in records] == list(range(12))


async def test_max_frames_stops_the_source(tmp_path: Path) -> None:
    write_video(tmp_path / "in.avi", 10)
    nodes = {
        "video": {
            "flowunit": "video_source",
            "uri": str(tmp_path / "in.avi"),
            "max_frames": 4,
            "fps": 1000,
        },
        "jsonl": {"flowunit": "json_lines_sink", "path": str(tmp_path / "n.jsonl")},
    }
    await run_to_end(nodes, ["video:frame -> jsonl:data"])
    assert len((tmp_path / "n.jsonl").read_text().splitlines()) == 4


async def test_image_dir_source_uses_natural_order(tmp_path: Path) -> None:
    src = tmp_path / "frames"
    src.mkdir()
    for number in (10, 2, 1, 33, 3):
        cv2.imwrite(str(src / f"frame{number}.png"), np.full((8, 8, 3), number, np.uint8))
    (src / "notes.txt").write_text("not an image")
    nodes = {
        "images": {"flowunit": "image_dir_source", "path": str(src)},
        "sink": {
            "flowunit": "image_dir_sink",
            "path": str(tmp_path / "copy"),
            "pattern": "{seq:03d}.png",
        },
    }
    assert await run_to_end(nodes, ["images:image -> sink:image"]) == Status.STOP
    written = sorted((tmp_path / "copy").iterdir())
    values = [int(cv2.imread(str(p))[0, 0, 0]) for p in written]
    assert values == [1, 2, 3, 10, 33]


async def test_stream_reconnects_with_backoff_then_gives_up(tmp_path: Path) -> None:
    nodes = {
        "cam": {
            "flowunit": "video_source",
            "uri": "rtsp://127.0.0.1:9/none",
            "max_reconnects": 3,
            "backoff": 0.001,
            "backoff_max": 0.004,
        },
        "jsonl": {"flowunit": "json_lines_sink", "path": str(tmp_path / "c.jsonl")},
    }
    with capture_logs() as logs:
        status = await run_to_end(nodes, ["cam:frame -> jsonl:data"])
    assert status == Status.STOP
    attempts = [e for e in logs if e["event"] == "video_reconnecting"]
    assert [e["attempt"] for e in attempts] == [1, 2, 3]
    assert all(e["delay_s"] <= 0.005 for e in attempts)  # capped at backoff_max + jitter
    assert [e["attempts"] for e in logs if e["event"] == "video_reconnects_exhausted"] == [3]


async def test_missing_video_file_fails_open_with_the_path(tmp_path: Path) -> None:
    nodes = {
        "video": {"flowunit": "video_source", "uri": "nope.avi"},
        "jsonl": {"flowunit": "json_lines_sink", "path": str(tmp_path / "x.jsonl")},
    }
    flow = Flow({"name": "v", "nodes": nodes, "edges": ["video:frame -> jsonl:data"]})
    with pytest.raises(FlowFailed) as info:
        await flow.run_async()
    (failure,) = info.value.exceptions
    assert failure.phase == "open"
    assert "video file not found" in str(failure.__cause__)
    assert "nope.avi" in str(failure.__cause__)


async def test_json_lines_sink_writes_detections(tmp_path: Path) -> None:
    dets = Detections(
        np.array([[1, 2, 3, 4]]), [0.5], [0], {"class_name": np.array(["face"], dtype=object)}
    )
    await UnitRunner(JsonLinesSink, path=str(tmp_path / "d.jsonl")).run({"data": [dets]})
    (record,) = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert record["data"] == [
        {"box": [1.0, 2.0, 3.0, 4.0], "confidence": 0.5, "class_id": 0, "class_name": "face"}
    ]


def test_helpers() -> None:
    assert sorted(["f10", "f2", "F1"], key=natural_key) == ["F1", "f2", "f10"]
    assert to_jsonable({"a": np.float32(1.5), "b": np.arange(2), "c": b"xyz"}) == {
        "a": 1.5,
        "b": [0, 1],
        "c": {"bytes": 3},
    }
    with pytest.raises(UnitConfigError, match="need 0 < backoff <= backoff_max"):
        VideoSource(uri=0, backoff=2, backoff_max=1)


async def test_image_dir_sink_failure_names_the_file(tmp_path: Path) -> None:
    runner = UnitRunner(ImageDirSink, path=str(tmp_path / "o"), pattern="{seq}.nosuchformat")
    with capture_logs() as logs:
        await runner.run({"image": [np.zeros((4, 4, 3), np.uint8)]})
    assert runner.statistics is not None
    assert runner.statistics.nodes["unit"].failed == 1
    (failed,) = [e for e in logs if e["event"] == "packet_failed"]
    assert "cannot write" in failed["error"]
    assert "0.nosuchformat" in failed["error"]


def test_video_writer_parameters_are_checked() -> None:
    with pytest.raises(UnitConfigError, match="fourcc must be 4 characters"):
        VideoWriterSink(path="x.avi", fourcc="MJPEG")


def test_live_sources_suggest_latest_and_files_keep_block() -> None:
    from actorflow.flowunits.video.sources import VideoSource

    assert VideoSource(uri="rtsp://127.0.0.1:9/cam").output_policy("frame") == "latest"
    assert VideoSource(uri="0").output_policy("frame") == "latest"
    assert VideoSource(uri="clip.avi").output_policy("frame") is None
