"""``Detections``: boxes with scores, classes and per-box data, plus NMS.

The field names follow ``supervision.Detections`` (``xyxy``, ``confidence``,
``class_id``, ``data``), so ``prediction.data["class_name"]`` works as in Roboflow
workflows, and ``to_supervision()`` converts when that package is installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Detections", "box_iou", "nms"]


@dataclass(frozen=True, eq=False)
class Detections:
    """N boxes in pixel coordinates of the image they were found in.

    Attributes:
        xyxy: ``float32`` array N x 4 (x1, y1, x2, y2).
        confidence: ``float32`` array N.
        class_id: ``int64`` array N.
        data: per-box arrays, each with first dimension N (``class_name``,
            ``landmarks``...).

    Guarantees: every array has first dimension N (checked at construction); indexing
    (``dets[mask]``, ``dets[idx]``) keeps all fields aligned. Treat instances as
    immutable: fan-out shares them between consumers.
    """

    xyxy: np.ndarray
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    class_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    data: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(xyxy)
        conf = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if conf.size == 0 and n:
            conf = np.ones(n, np.float32)
        cls = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if cls.size == 0 and n:
            cls = np.zeros(n, np.int64)
        data = {k: np.asarray(v) for k, v in self.data.items()}
        checks: list[tuple[str, np.ndarray]] = [("confidence", conf), ("class_id", cls)]
        for name, arr in [*checks, *data.items()]:
            if len(arr) != n:
                msg = f"Detections: {name!r} has {len(arr)} rows but xyxy has {n}"
                raise ValueError(msg)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", conf)
        object.__setattr__(self, "class_id", cls)
        object.__setattr__(self, "data", data)

    @classmethod
    def empty(cls) -> Detections:
        """No boxes."""
        return cls(np.zeros((0, 4), np.float32))

    @classmethod
    def from_xywh(cls, xywh: Any, **fields: Any) -> Detections:
        """Build from x, y, width, height boxes."""
        boxes = np.asarray(xywh, dtype=np.float32).reshape(-1, 4).copy()
        boxes[:, 2:] += boxes[:, :2]
        return cls(boxes, **fields)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """Select boxes with an index array, a boolean mask, a slice or an int."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            {k: v[index] for k, v in self.data.items()},
        )

    def __iter__(self) -> Iterator[tuple[np.ndarray, float, int]]:
        """Yield ``(xyxy, confidence, class_id)`` per box."""
        for i in range(len(self)):
            yield self.xyxy[i], float(self.confidence[i]), int(self.class_id[i])

    @property
    def xywh(self) -> np.ndarray:
        """Boxes as x, y, width, height."""
        out = self.xyxy.copy()
        out[:, 2:] -= out[:, :2]
        return out

    @property
    def area(self) -> np.ndarray:
        """Box areas."""
        area: np.ndarray = (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])
        return area

    @staticmethod
    def merge(items: list[Detections]) -> Detections:
        """Concatenate several ``Detections`` (data keys must agree)."""
        if not items:
            return Detections.empty()
        keys = set(items[0].data)
        return Detections(
            np.concatenate([d.xyxy for d in items]),
            np.concatenate([d.confidence for d in items]),
            np.concatenate([d.class_id for d in items]),
            {k: np.concatenate([d.data[k] for d in items]) for k in keys},
        )

    def with_data(self, **arrays: Any) -> Detections:
        """Return a copy with per-box arrays added or replaced."""
        return Detections(self.xyxy, self.confidence, self.class_id, {**self.data, **arrays})

    def to_json(self) -> list[dict[str, Any]]:
        """One dict per box, JSON-serialisable (``box`` is x1, y1, x2, y2)."""
        rows = []
        for i in range(len(self)):
            row: dict[str, Any] = {
                "box": [round(float(v), 2) for v in self.xyxy[i]],
                "confidence": round(float(self.confidence[i]), 6),
                "class_id": int(self.class_id[i]),
            }
            for key, arr in self.data.items():
                value = arr[i]
                row[key] = (
                    value.tolist()
                    if isinstance(value, np.ndarray)
                    else (value.item() if isinstance(value, np.generic) else value)
                )
            rows.append(row)
        return rows

    def to_supervision(self) -> Any:
        """Convert to ``supervision.Detections``.

        Raises:
            ImportError: supervision is not installed (``pip install supervision``).
        """
        try:
            sv = importlib.import_module("supervision")  # optional integration
        except ImportError as exc:
            msg = "to_supervision() needs the supervision package: pip install supervision"
            raise ImportError(msg) from exc
        return sv.Detections(
            xyxy=self.xyxy.astype(np.float32),
            confidence=self.confidence,
            class_id=self.class_id.astype(int),
            data=dict(self.data),
        )

    @classmethod
    def from_supervision(cls, detections: Any) -> Detections:
        """Build from a ``supervision.Detections``."""
        n = len(detections.xyxy)
        conf = detections.confidence if detections.confidence is not None else np.ones(n)
        cls_id = detections.class_id if detections.class_id is not None else np.zeros(n)
        return cls(detections.xyxy, conf, cls_id, dict(detections.data))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between boxes ``a`` (N x 4) and ``b`` (M x 4), xyxy."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(
    xyxy: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    method: str = "union",
    class_id: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    Args:
        xyxy: N x 4 boxes.
        scores: N scores.
        threshold: suppress boxes overlapping a kept box by more than this.
        method: ``union`` (IoU) or ``min`` (intersection over the smaller area, MTCNN's
            last stage).
        class_id: when given, boxes only suppress boxes of the same class.
    """
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if class_id is not None:  # offset classes apart: one NMS call, no cross-class suppression
        offset = (np.asarray(class_id, np.float64) * (boxes.max() + 1.0))[:, None]
        boxes = boxes + offset
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        if method == "min":
            overlap = inter / np.maximum(np.minimum(area[i], area[rest]), 1e-9)
        else:
            overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)
