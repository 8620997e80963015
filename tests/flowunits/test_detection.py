from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections, box_iou, nms
from actorflow.flowunits.detection.draw import Palette
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


# -- Roboflow visualization parameters -------------------------------------------------


def one_box(*boxes: list[float], classes: tuple[int, ...] = ()) -> Detections:
    n = len(boxes)
    return Detections(
        np.array(boxes, np.float32),
        np.full(n, 0.9, np.float32),
        np.array(classes or (0,) * n),
        {"class_name": np.array(["alice", "bob", "carol"][:n])},
    )


def test_custom_colours_are_drawn_in_bgr() -> None:
    image = np.zeros((60, 60, 3), np.uint8)
    palette = Palette.from_params("CUSTOM", custom_colors=["#FF0000", "rgb(0, 0, 255)"])
    out = draw_boxes(image, one_box([10, 10, 50, 50]), palette=palette, landmarks=False)
    assert out[30, 10].tolist() == [0, 0, 255]  # red, in BGR
    assert not image.any()


def test_color_axis_index_colours_boxes_by_position() -> None:
    image = np.zeros((60, 120, 3), np.uint8)
    palette = Palette.from_params("CUSTOM", custom_colors=["RED", "BLUE"], color_axis="INDEX")
    dets = one_box([5, 5, 50, 50], [60, 5, 110, 50])  # same class, two colours
    out = draw_boxes(image, dets, palette=palette)
    assert out[25, 5].tolist() == [0, 0, 255]
    assert out[25, 60].tolist() == [255, 0, 0]
    by_class = draw_boxes(image, dets, palette=Palette.from_params("CUSTOM", 10, ["RED", "BLUE"]))
    assert by_class[25, 60].tolist() == [0, 0, 255]


def test_default_palette_is_supervisions() -> None:
    palette = Palette.from_params("DEFAULT")
    assert palette.colors[0] == (0xFB, 0x51, 0xA3)  # A351FB as BGR
    assert len(palette.colors) == 21
    viridis = Palette.from_params("Matplotlib Viridis", palette_size=3)
    assert len(set(viridis.colors)) == 3


def test_roundness_rounds_the_corners() -> None:
    image = np.zeros((60, 60, 3), np.uint8)
    square = draw_boxes(image, one_box([10, 10, 50, 50]), thickness=1)
    round_ = draw_boxes(image, one_box([10, 10, 50, 50]), thickness=1, roundness=1.0)
    assert square[10, 10].any()
    assert not round_[10, 10].any()
    assert round_[10, 30].any()  # the top edge is still drawn


@pytest.mark.parametrize(
    ("position", "below"),
    [("TOP_LEFT", False), ("BOTTOM_RIGHT", True), ("CENTER", None)],
)
def test_text_position_places_the_label(position: str, below: bool | None) -> None:
    image = np.zeros((120, 120, 3), np.uint8)
    out = draw_labels(image, one_box([40, 40, 80, 80]), text="Class", text_position=position)
    above_box, below_box = out[:40].any(), out[80:].any()
    inside = out[45:75, 45:75].any()
    if below is None:
        assert inside
        assert not above_box
        assert not below_box
    else:
        assert below_box == below
        assert above_box != below


def test_label_text_colour_and_border_radius() -> None:
    image = np.zeros((120, 200, 3), np.uint8)
    dets = one_box([40, 60, 160, 100])
    palette = Palette.from_params("CUSTOM", custom_colors=["#00FF00"])
    square = draw_labels(
        image,
        dets,
        text="Class and Confidence",
        text_color="#0000FF",
        text_padding=10,
        palette=palette,
    )
    round_ = draw_labels(
        image,
        dets,
        text="Class and Confidence",
        text_color="#0000FF",
        text_padding=10,
        border_radius=8,
        palette=palette,
    )
    ys, xs = np.nonzero(square.any(axis=2))
    top, left = int(ys.min()), int(xs.min())
    assert square[top, left].tolist() == [0, 255, 0]  # the background's corner
    assert not round_[top, left].any()  # cut by the radius
    assert ((square == [255, 0, 0]).all(axis=2)).any()  # text in blue (BGR)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"color_palette": "SUNSET"}, "unknown color_palette 'SUNSET'; palettes: DEFAULT"),
        ({"color_palette": "CUSTOM"}, "needs custom_colors"),
        ({"color_palette": "CUSTOM", "custom_colors": ["teal-ish"]}, "unknown colour"),
        ({"color_axis": "SIZE"}, "color_axis must be one of"),
        ({"text_position": "ABOVE"}, "text_position must be one of"),
        ({"text_color": "rgb(300, 0, 0)"}, "unknown colour"),
        ({"border_radius": -1}, "border_radius must be >= 0"),
    ],
)
def test_bad_visualization_parameters_fail_at_build(params: dict[str, Any], message: str) -> None:
    with pytest.raises(UnitConfigError, match=re.escape(message)):
        LabelVisualization(**params)


@pytest.mark.anyio
async def test_the_seeds_parameters_are_accepted_and_never_write_the_input() -> None:
    image = np.zeros((80, 80, 3), np.uint8)
    box = BoxVisualization(
        copy_image=False,
        color_palette="DEFAULT",
        palette_size=10,
        custom_colors=[],
        color_axis="CLASS",
        thickness=2,
        roundness=0,
    )
    label = LabelVisualization(
        copy_image=False,
        color_palette="DEFAULT",
        palette_size=10,
        custom_colors=[],
        color_axis="CLASS",
        text="Class",
        text_position="TOP_LEFT",
        text_color="WHITE",
        text_scale=1,
        text_thickness=1,
        text_padding=10,
        border_radius=0,
    )
    boxed = await UnitRunner(box).run({"image": [image], "detections": [dets()]})
    labelled = await UnitRunner(label).run({"image": [image], "detections": [dets()]})
    assert boxed["image"][0].data.any()
    assert labelled["image"][0].data.any()
    assert not image.any()  # copy_image=false still never draws on a shared input
