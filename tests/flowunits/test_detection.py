from __future__ import annotations

import numpy as np
import pytest

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections, box_iou, nms
from actorflow.flowunits.detection.units import (
    BoxVisualization,
    LabelVisualization,
    Nms,
    draw_boxes,
    draw_labels,
)
from actorflow.testing import UnitRunner


def dets() -> Detections:
    return Detections(
        np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]]),
        np.array([0.9, 0.8, 0.7]),
        np.array([0, 0, 1]),
        {"class_name": np.array(["face", "face", "cat"], dtype=object)},
    )


def test_fields_stay_aligned_when_indexed() -> None:
    d = dets()[np.array([2, 0])]
    assert d.data["class_name"].tolist() == ["cat", "face"]
    assert d.confidence.tolist() == pytest.approx([0.7, 0.9])
    assert d.class_id.tolist() == [1, 0]


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="'confidence' has 2 rows but xyxy has 3"):
        Detections(np.zeros((3, 4)), np.zeros(2))


def test_xywh_round_trip_and_json() -> None:
    d = Detections.from_xywh([[179, 60, 89, 113]], confidence=[0.99])
    assert d.xyxy.tolist() == [[179, 60, 268, 173]]
    assert d.xywh.tolist() == [[179, 60, 89, 113]]
    assert d.to_json() == [{"box": [179.0, 60.0, 268.0, 173.0], "confidence": 0.99, "class_id": 0}]


def test_nms_suppresses_overlaps_within_a_class_only() -> None:
    d = dets()
    assert nms(d.xyxy, d.confidence, 0.5).tolist() == [0, 2]
    shifted = d.xyxy.copy()
    shifted[2] = shifted[1]
    assert nms(shifted, d.confidence, 0.5, class_id=np.array([0, 1, 1])).tolist() == [0, 1]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_nms_min_method_suppresses_a_contained_box() -> None:
    boxes = np.array([[0, 0, 100, 100], [10, 10, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), 0.5, method="min").tolist() == [0]


def test_box_iou() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10]]))
    assert iou.tolist() == [[1.0, pytest.approx(1 / 3)]]


def test_drawing_returns_a_new_image() -> None:
    image = np.zeros((80, 80, 3), np.uint8)
    boxed = draw_boxes(image, dets())
    labelled = draw_labels(boxed, dets(), text="{class_name} {confidence:.1f}")
    assert not image.any()
    assert boxed.any()
    assert (labelled != boxed).any()


def test_to_supervision_needs_the_package() -> None:
    try:
        import supervision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install supervision"):
            dets().to_supervision()
    else:
        sv = dets().to_supervision()
        assert sv.data["class_name"].tolist() == ["face", "face", "cat"]
        assert Detections.from_supervision(sv).xyxy.tolist() == dets().xyxy.tolist()


# -- units in a running flow -------------------------------------------------------------


@pytest.mark.anyio
async def test_nms_unit_keeps_the_best_box_per_class() -> None:
    out = await UnitRunner(Nms, iou_threshold=0.5, confidence=0.75).run({"detections": [dets()]})
    (packet,) = out["detections"]
    assert packet.data.xyxy.tolist() == [[0, 0, 10, 10]]
    assert packet.data.data["class_name"].tolist() == ["face"]


@pytest.mark.anyio
async def test_visualization_units_join_image_and_detections() -> None:
    image = np.zeros((80, 80, 3), np.uint8)
    boxed = await UnitRunner(BoxVisualization, thickness=1).run(
        {"image": [image], "detections": [dets()]}
    )
    labelled = await UnitRunner(LabelVisualization, text="{class_name}").run(
        {"image": [boxed["image"][0].data], "detections": [dets()]}
    )
    assert boxed["image"][0].data.any()
    assert (labelled["image"][0].data != boxed["image"][0].data).any()
    assert not image.any()


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        pytest.param(lambda: Nms(iou_threshold=1.5), "iou_threshold must be within", id="iou"),
        pytest.param(lambda: Nms(method="max"), "method must be 'union' or 'min'", id="method"),
    ],
)
def test_bad_nms_parameters_fail_at_build(factory: object, message: str) -> None:
    with pytest.raises(UnitConfigError, match=message):
        factory()  # type: ignore[operator]
