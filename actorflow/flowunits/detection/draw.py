"""Drawing boxes and labels with Roboflow's visualization parameters.

Colours follow ``supervision`` (which Roboflow workflow blocks use): palettes
``DEFAULT``, ``ROBOFLOW``, ``CUSTOM`` (from ``custom_colors``) and ``Matplotlib <map>``
(``palette_size`` colours sampled from the map); a box's colour is picked by its class
(``CLASS``), its position in the list (``INDEX``) or ``data["tracker_id"]``
(``TRACK``). Colours are given as names (``WHITE``), ``#RRGGBB``, ``rgb(r, g, b)`` or
``bgr(b, g, r)``. Images are BGR (OpenCV's order, as video sources and
``image_decode`` produce), so colours are converted before drawing.

Every function returns a new image and never writes into its input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections

__all__ = [
    "COLOR_AXES",
    "POSITIONS",
    "TEXT_CHOICES",
    "Palette",
    "draw_boxes",
    "draw_labels",
    "parse_color",
]

BGR = tuple[int, int, int]

_DEFAULT = [
    "A351FB",
    "FF4040",
    "FFA1A0",
    "FF7633",
    "FFB633",
    "D1D435",
    "4CFB12",
    "94CF1A",
    "40DE8A",
    "1B9640",
    "00D6C1",
    "2E9CAA",
    "00C4FF",
    "364797",
    "6675FF",
    "0019EF",
    "863AFF",
    "530087",
    "CD3AFF",
    "FF97CA",
    "FF39C9",
]
_ROBOFLOW = ["C28DFC", "A351FB", "8315F9", "6706CE", "5905B3", "4D049A"]
_NAMED = {
    "WHITE": "FFFFFF",
    "BLACK": "000000",
    "RED": "FF0000",
    "GREEN": "00FF00",
    "BLUE": "0000FF",
    "YELLOW": "FFFF00",
    "ROBOFLOW": "A351FB",
}
_MAPS = {
    name: getattr(cv2, f"COLORMAP_{name.upper()}")
    for name in [
        "viridis",
        "autumn",
        "bone",
        "jet",
        "winter",
        "rainbow",
        "ocean",
        "summer",
        "spring",
        "cool",
        "hsv",
        "pink",
        "hot",
        "parula",
        "magma",
        "inferno",
        "plasma",
        "cividis",
        "twilight",
        "turbo",
        "deepgreen",
    ]
    if hasattr(cv2, f"COLORMAP_{name.upper()}")
}
COLOR_AXES = ("CLASS", "INDEX", "TRACK")
"""How a box's colour is chosen from the palette."""
POSITIONS = (
    "TOP_LEFT",
    "TOP_CENTER",
    "TOP_RIGHT",
    "CENTER_LEFT",
    "CENTER",
    "CENTER_RIGHT",
    "BOTTOM_LEFT",
    "BOTTOM_CENTER",
    "BOTTOM_RIGHT",
    "CENTER_OF_MASS",
)
"""Where a label sits relative to its box (supervision's ``Position``)."""
TEXT_CHOICES = ("Class", "Confidence", "Class and Confidence", "Index", "Dimensions", "Area")
"""Roboflow's label contents; any other ``text`` is a format string over the box's data."""


def _hex(value: str) -> BGR:
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)


def parse_color(text: str) -> BGR:
    """A colour as a BGR tuple, from a name, ``#RRGGBB``, ``rgb(...)`` or ``bgr(...)``.

    Raises:
        UnitConfigError: the text is none of those.
    """
    value = str(text).strip()
    if value.upper() in _NAMED:
        return _hex(_NAMED[value.upper()])
    if re.fullmatch(r"#?[0-9a-fA-F]{6}", value):
        return _hex(value.lstrip("#"))
    m = re.fullmatch(r"(rgb|bgr)\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)", value.lower())
    if m and all(int(c) <= 255 for c in m.groups()[1:]):
        a, b, c = (int(x) for x in m.groups()[1:])
        return (c, b, a) if m.group(1) == "rgb" else (a, b, c)
    msg = (
        f"unknown colour {text!r}; use a name ({', '.join(_NAMED)}), '#RRGGBB', "
        "'rgb(r, g, b)' or 'bgr(b, g, r)'"
    )
    raise UnitConfigError(msg)


@dataclass(frozen=True)
class Palette:
    """Colours and how boxes pick one (``color_axis``)."""

    colors: tuple[BGR, ...]
    axis: str = "CLASS"

    @classmethod
    def from_params(
        cls,
        color_palette: str = "DEFAULT",
        palette_size: int = 10,
        custom_colors: Sequence[str] = (),
        color_axis: str = "CLASS",
    ) -> Palette:
        """The palette Roboflow's parameters describe.

        Raises:
            UnitConfigError: unknown palette or axis, ``CUSTOM`` without colours, a bad
                colour or size.
        """
        if color_axis not in COLOR_AXES:
            msg = f"color_axis must be one of {list(COLOR_AXES)}, got {color_axis!r}"
            raise UnitConfigError(msg)
        name = str(color_palette)
        if name == "DEFAULT":
            colors = tuple(_hex(c) for c in _DEFAULT)
        elif name == "ROBOFLOW":
            colors = tuple(_hex(c) for c in _ROBOFLOW)
        elif name == "CUSTOM":
            if not custom_colors:
                msg = "color_palette 'CUSTOM' needs custom_colors (e.g. ['#FF0000', 'BLUE'])"
                raise UnitConfigError(msg)
            colors = tuple(parse_color(c) for c in custom_colors)
        elif name.lower().removeprefix("matplotlib ").strip() in _MAPS:
            size = int(palette_size)
            if not 1 <= size <= 256:
                msg = f"palette_size must be within [1, 256], got {palette_size}"
                raise UnitConfigError(msg)
            cmap = _MAPS[name.lower().removeprefix("matplotlib ").strip()]
            levels = np.linspace(0, 255, size).astype(np.uint8).reshape(-1, 1)
            mapped = cv2.applyColorMap(levels, cmap).reshape(-1, 3)
            colors = tuple((int(b), int(g), int(r)) for b, g, r in mapped)
        else:
            known = ["DEFAULT", "ROBOFLOW", "CUSTOM", *(f"Matplotlib {m.title()}" for m in _MAPS)]
            msg = f"unknown color_palette {name!r}; palettes: {', '.join(known)}"
            raise UnitConfigError(msg)
        return cls(colors, color_axis)

    def color(self, detections: Detections, index: int) -> BGR:
        """The colour of box ``index``."""
        if self.axis == "INDEX":
            key = index
        elif self.axis == "TRACK" and "tracker_id" in detections.data:
            key = int(detections.data["tracker_id"][index])
        else:
            key = int(detections.class_id[index])
        return self.colors[key % len(self.colors)]


LEGACY = Palette(
    ((0, 155, 255), (255, 128, 0), (60, 200, 60), (200, 60, 200), (40, 40, 230), (230, 200, 40))
)
"""actorflow's palette before Roboflow parameters (the default when none is given)."""


def _rounded_rect(
    image: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], color: BGR, thickness: int, r: int
) -> None:
    """A rectangle with corners of radius ``r`` (``thickness`` -1 fills it)."""
    (x1, y1), (x2, y2) = p1, p2
    r = max(0, min(r, (x2 - x1) // 2, (y2 - y1) // 2))
    if r == 0:
        cv2.rectangle(image, p1, p2, color, thickness)
        return
    if thickness < 0:
        cv2.rectangle(image, (x1 + r, y1), (x2 - r, y2), color, -1)
        cv2.rectangle(image, (x1, y1 + r), (x2, y2 - r), color, -1)
    else:
        cv2.line(image, (x1 + r, y1), (x2 - r, y1), color, thickness)
        cv2.line(image, (x1 + r, y2), (x2 - r, y2), color, thickness)
        cv2.line(image, (x1, y1 + r), (x1, y2 - r), color, thickness)
        cv2.line(image, (x2, y1 + r), (x2, y2 - r), color, thickness)
    corners = (
        (x1 + r, y1 + r, 180),
        (x2 - r, y1 + r, 270),
        (x2 - r, y2 - r, 0),
        (x1 + r, y2 - r, 90),
    )
    for cx, cy, start in corners:
        cv2.ellipse(image, (cx, cy), (r, r), 0, start, start + 90, color, thickness)


def draw_boxes(
    image: np.ndarray,
    detections: Detections,
    *,
    thickness: int = 2,
    landmarks: bool = True,
    palette: Palette = LEGACY,
    roundness: float = 0.0,
) -> np.ndarray:
    """Return a copy of ``image`` with every box (and ``data["landmarks"]`` points) drawn.

    ``roundness`` (0 to 1) rounds the corners: the radius is that fraction of half the
    box's shorter side (supervision's ``RoundBoxAnnotator``).
    """
    out = image.copy()
    points = detections.data.get("landmarks") if landmarks else None
    for i, box in enumerate(detections.xyxy):
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        colour = palette.color(detections, i)
        radius = round(float(roundness) * min(x2 - x1, y2 - y1) / 2)
        _rounded_rect(out, (x1, y1), (x2, y2), colour, thickness, radius)
        if points is not None:
            for x, y in np.asarray(points[i]).reshape(-1, 2):
                cv2.circle(out, (round(float(x)), round(float(y))), 2, colour, -1)
    return out


def _label(text: str, detections: Detections, i: int) -> str:
    box = detections.xyxy[i]
    confidence, class_id = float(detections.confidence[i]), int(detections.class_id[i])
    class_name = (
        str(detections.data["class_name"][i]) if "class_name" in detections.data else str(class_id)
    )
    w, h = float(box[2] - box[0]), float(box[3] - box[1])
    choices = {
        "Class": class_name,
        "Confidence": f"{confidence:.2f}",
        "Class and Confidence": f"{class_name} {confidence:.2f}",
        "Index": str(i),
        "Dimensions": f"{round(w)} x {round(h)}",
        "Area": str(round(w * h)),
    }
    if text in choices:
        return choices[text]
    fields: dict[str, Any] = {"confidence": confidence, "class_id": class_id, "index": i}
    fields.update({k: v[i] for k, v in detections.data.items() if np.ndim(v[i]) == 0})
    try:
        return text.format(**fields)
    except (KeyError, ValueError, IndexError, AttributeError):
        return f"{class_name} {confidence:.2f}"


def _anchor(box: np.ndarray, position: str) -> tuple[int, int]:
    x1, y1, x2, y2 = (float(v) for v in box)
    xs = {"LEFT": x1, "CENTER": (x1 + x2) / 2, "RIGHT": x2}
    ys = {"TOP": y1, "CENTER": (y1 + y2) / 2, "BOTTOM": y2}
    if position in ("CENTER", "CENTER_OF_MASS"):
        return round(xs["CENTER"]), round(ys["CENTER"])
    vertical, horizontal = position.split("_")
    return round(xs[horizontal]), round(ys[vertical])


def _label_box(anchor: tuple[int, int], w: int, h: int, position: str) -> tuple[int, int]:
    """Top-left corner of a ``w`` x ``h`` label at ``anchor`` (supervision's layout)."""
    x, y = anchor
    if position in ("CENTER", "CENTER_OF_MASS"):
        return x - w // 2, y - h // 2
    vertical, horizontal = position.split("_")
    left = {"LEFT": x, "CENTER": x - w // 2, "RIGHT": x - w}[horizontal]
    top = {"TOP": y - h, "CENTER": y - h // 2, "BOTTOM": y}[vertical]
    if vertical == "CENTER":
        left = {"LEFT": x - w, "RIGHT": x}[horizontal]
    return left, top


def draw_labels(
    image: np.ndarray,
    detections: Detections,
    *,
    text: str = "{confidence:.2f}",
    text_scale: float = 0.5,
    text_thickness: int = 1,
    text_padding: int = 1,
    text_position: str = "TOP_LEFT",
    text_color: str = "WHITE",
    border_radius: int = 0,
    palette: Palette = LEGACY,
) -> np.ndarray:
    """Return a copy of ``image`` with a label on each box.

    ``text`` is one of ``TEXT_CHOICES`` (Roboflow's) or a format string over
    ``confidence``, ``class_id``, ``index`` and every scalar ``data`` key
    (``"{class_name} {confidence:.2f}"``). The label's background takes the box's
    palette colour; labels are kept inside the image.

    Raises:
        UnitConfigError: unknown ``text_position`` or ``text_color``.
    """
    if text_position not in POSITIONS:
        msg = f"text_position must be one of {list(POSITIONS)}, got {text_position!r}"
        raise UnitConfigError(msg)
    ink = parse_color(text_color)
    out = image.copy()
    height, width = out.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(len(detections)):
        label = _label(text, detections, i)
        (tw, th), base = cv2.getTextSize(label, font, text_scale, text_thickness)
        w, h = tw + 2 * text_padding, th + base + 2 * text_padding
        left, top = _label_box(_anchor(detections.xyxy[i], text_position), w, h, text_position)
        left = min(max(0, left), max(0, width - w))
        top = min(max(0, top), max(0, height - h))
        colour = palette.color(detections, i)
        _rounded_rect(out, (left, top), (left + w, top + h), colour, -1, int(border_radius))
        origin = (left + text_padding, top + text_padding + th)
        cv2.putText(out, label, origin, font, text_scale, ink, text_thickness, cv2.LINE_AA)
    return out
