"""Five-point face alignment to the 112 x 112 crop SFace (and ArcFace) expect.

The reference points are the ArcFace template that OpenCV's ``FaceRecognizerSF``
uses (``modules/objdetect/src/face_recognize.cpp``); the transform is the least-squares
similarity (rotation, uniform scale, translation) of Umeyama (1991), the same estimate
OpenCV computes, so crops agree with ``FaceRecognizerSF.alignCrop`` to within
interpolation.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["CROP_SIZE", "REFERENCE_POINTS", "align_face", "similarity_transform"]

CROP_SIZE = 112
"""Width and height of an aligned face."""
REFERENCE_POINTS = np.array(
    [
        [38.2946, 51.6963],  # eye on the image's left
        [73.5318, 51.5014],  # eye on the image's right
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # mouth corner on the image's left
        [70.7299, 92.2041],  # mouth corner on the image's right
    ],
    np.float64,
)
"""Where the five landmarks land in the crop (YuNet and MTCNN give them in this order)."""


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity matrix mapping ``src`` points onto ``dst`` (least squares).

    Raises:
        ValueError: fewer than two points, or all points coincide.
    """
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if len(src) < 2 or len(src) != len(dst):
        msg = f"need two or more matching points, got {len(src)} and {len(dst)}"
        raise ValueError(msg)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    variance = (src_c**2).sum() / len(src)
    if variance <= 1e-12:
        msg = "the landmarks coincide: no face to align"
        raise ValueError(msg)
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / variance)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Warp the face with ``landmarks`` (5 x 2, pixels) to a 112 x 112 crop.

    The crop keeps the image's channel order and dtype.

    Raises:
        ValueError: ``landmarks`` is not 5 x 2, or the points coincide.
    """
    points = np.asarray(landmarks, np.float64)
    if points.shape != (5, 2):
        msg = f"align_face needs 5 x 2 landmarks, got shape {points.shape}"
        raise ValueError(msg)
    matrix = similarity_transform(points, REFERENCE_POINTS)
    return cv2.warpAffine(image, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR)
