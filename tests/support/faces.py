"""Real face photos shipped in installed packages, and augmented copies of them.

``skimage.data`` ships two portraits (the astronaut Eileen Collins and the
cameraman) and ``lfw_subset``: 25 x 25 grey crops of real faces from Labeled Faces in
the Wild. The crops are enlarged (and padded, so YuNet sees a whole head) to stand in
for more people. Augmented copies (warp, brightness, noise, flip, blur) stand in for
other photos of the same person. Every image is BGR ``uint8``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

LFW = Path(__import__("skimage").__file__).parent / "data" / "lfw_subset.npy"


def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def cameraman() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR))


def lfw_face(index: int) -> np.ndarray:
    """LFW face ``index`` (0-99 are faces), enlarged to 200 px and padded to 320 px."""
    grey = (np.load(LFW)[index] * 255).astype(np.uint8)
    big = cv2.resize(grey, (200, 200), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, 60, 60, 60, 60, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(cv2.cvtColor(big, cv2.COLOR_GRAY2BGR))


def warp(image: np.ndarray, angle: float = 8.0, scale: float = 0.9) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += (w * 0.04, -h * 0.03)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def brightness(image: np.ndarray, gain: float = 0.6, bias: float = 0.0) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def noise(image: np.ndarray, sigma: float = 10.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noisy = image.astype(np.float32) + rng.normal(0, sigma, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def flip(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


def blur(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (5, 5), 1.2)


AUGMENTATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "warp": warp,
    "warp_left": lambda im: warp(im, angle=-10.0, scale=1.05),
    "dark": brightness,
    "bright": lambda im: brightness(im, 1.1, 40.0),
    "noise": noise,
    "flip": flip,
    "blur": blur,
    "flip_dark_noise": lambda im: noise(brightness(flip(im), 0.7), 8.0, seed=1),
}
"""Name -> function: the "other photos" of the person in an image."""


def write_photos(root: Path, people: dict[str, list[np.ndarray]]) -> Path:
    """A gallery folder: ``root/<person>/<n>.png`` per photo; returns ``root``."""
    for person, photos in people.items():
        folder = root / person
        folder.mkdir(parents=True, exist_ok=True)
        for i, photo in enumerate(photos):
            assert cv2.imwrite(str(folder / f"{i}.png"), photo)
    return root
