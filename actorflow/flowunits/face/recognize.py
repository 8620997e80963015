"""``FaceRecognizer``: detect, align, embed and identify, in one synchronous call.

The reference the units are built from, and what ``actorflow gallery build`` uses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from actorflow.flowunits.detection.detections import Detections
from actorflow.flowunits.face.align import align_face
from actorflow.flowunits.face.detect import YuNetDetector
from actorflow.flowunits.face.embed import SFACE_THRESHOLD, SFaceEmbedder
from actorflow.flowunits.face.gallery import IMAGE_SUFFIXES, Gallery
from actorflow.flowunits.inference._session import Device

__all__ = ["FaceRecognizer", "GalleryReport", "identify", "landmark_crops"]


def landmark_crops(rgb: np.ndarray, detections: Detections) -> list[np.ndarray]:
    """One aligned 112 x 112 crop per detection, from ``data["landmarks"]``.

    Raises:
        ValueError: the detections carry no ``landmarks``.
    """
    landmarks = detections.data.get("landmarks")
    if landmarks is None:
        msg = "face alignment needs data['landmarks'] (5 points per face) on the detections"
        raise ValueError(msg)
    return [align_face(rgb, points) for points in np.asarray(landmarks).reshape(-1, 5, 2)]


def identify(
    detections: Detections, embeddings: np.ndarray, gallery: Gallery, threshold: float
) -> Detections:
    """``detections`` with ``class_name`` = person or ``unknown``, similarity as confidence.

    ``class_id`` is the person's index in ``gallery.people`` (-1 for unknown);
    ``data["similarity"]`` repeats the cosine similarity, ``data["detection_score"]``
    keeps the detector's score.
    """
    match = gallery.match(embeddings, threshold)
    return Detections(
        detections.xyxy,
        match.similarity,
        match.index,
        {
            **detections.data,
            "class_name": match.names,
            "similarity": match.similarity,
            "detection_score": detections.confidence,
        },
    )


class FaceRecognizer:
    """YuNet detection, 5-point alignment and SFace embedding over BGR images.

    Not thread-safe: one instance per thread.

    Args:
        score_threshold: smallest YuNet detection score kept.
        max_faces: faces kept per image, best score first (0: all).
        device: where SFace runs (``auto``, ``cpu``, ``cuda``).
        intra_op_threads: onnxruntime threads per operator.
    """

    def __init__(
        self,
        *,
        score_threshold: float = 0.7,
        max_faces: int = 0,
        device: Device = "cpu",
        intra_op_threads: int = 1,
        node: str = "face_recognition",
    ) -> None:
        self.detector = YuNetDetector(score_threshold=score_threshold, max_faces=max_faces)
        self.embedder = SFaceEmbedder(node=node, device=device, intra_op_threads=intra_op_threads)

    def faces(self, images: Sequence[np.ndarray]) -> list[tuple[Detections, np.ndarray]]:
        """Per BGR image: its faces and their embeddings (one SFace call for all).

        Raises:
            ValueError: an image is not H x W x 3 ``uint8``.
        """
        found = [self.detector.detect(image) for image in images]
        crops: list[np.ndarray] = []
        for image, dets in zip(images, found, strict=True):
            if len(dets):
                crops.extend(landmark_crops(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), dets))
        vectors = self.embedder.embed(crops)
        out, start = [], 0
        for dets in found:
            out.append((dets, vectors[start : start + len(dets)]))
            start += len(dets)
        return out

    def recognize(
        self, images: Sequence[np.ndarray], gallery: Gallery, threshold: float = SFACE_THRESHOLD
    ) -> list[Detections]:
        """Identified faces per BGR image."""
        return [identify(d, v, gallery, threshold) for d, v in self.faces(images)]

    def build_gallery(self, directory: str | Path) -> tuple[Gallery, list[GalleryReport]]:
        """Enrol every person of ``directory``: one sub-folder per person, photos inside.

        Each photo gives one embedding: its largest face. Photos where no face is
        found, or that cannot be read, are reported (and skipped), never silently.

        Raises:
            ValueError: ``directory`` has no person sub-folder with a usable photo.
        """
        root = Path(directory)
        if not root.is_dir():
            msg = f"{root} is not a directory (one sub-folder per person, photos inside)"
            raise ValueError(msg)
        names: list[str] = []
        vectors: list[np.ndarray] = []
        files: list[str] = []
        reports: list[GalleryReport] = []
        for person in sorted((p for p in root.iterdir() if p.is_dir()), key=_natural):
            photos = sorted(
                (f for f in person.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES), key=_natural
            )
            if not photos:
                reports.append(GalleryReport(str(person), "no photos (.jpg, .png, ...)"))
            for photo in photos:
                image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
                if image is None:
                    reports.append(GalleryReport(str(photo), "cannot be read as an image"))
                    continue
                ((dets, vecs),) = self.faces([image])
                if len(dets) == 0:
                    reports.append(GalleryReport(str(photo), "no face found"))
                    continue
                largest = int(np.argmax(dets.area))
                if len(dets) > 1:
                    reports.append(
                        GalleryReport(str(photo), f"{len(dets)} faces; the largest was used", True)
                    )
                names.append(person.name)
                vectors.append(vecs[largest])
                files.append(str(photo.relative_to(root)))
        if not names:
            msg = f"{root}: no face found in any photo; nothing to enrol"
            raise ValueError(msg)
        return Gallery(names, np.stack(vectors), files), reports


@dataclass(frozen=True, slots=True)
class GalleryReport:
    """A photo (or folder) that gave no embedding, or a note about one that did."""

    path: str
    problem: str
    used: bool = False
    """Whether the photo still contributed an embedding (a note, not a failure)."""


def _natural(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]
