"""Face recognition units: ``face_recognition`` (detect + identify) and ``face_identify``.

Both read an identity gallery (``actorflow gallery build``) by path, relative to the
graph file, and read it again when the file changes, so enrolling a person needs no
restart. Detections come out with ``data["class_name"]`` = the person or
``"unknown"`` (a numpy ``str`` array), the cosine similarity as ``confidence`` and in
``data["similarity"]``, and the five landmarks in ``data["landmarks"]``.

The similarity threshold defaults to OpenCV's 0.363 for SFace. Workflows written for
DaoAI's model say 0.5: with SFace that is stricter (fewer false matches, more
``unknown``), not wrong: in the test set, augmented photos of enrolled people scored
0.76 to 0.97 and 93 strangers at most 0.30 (docs/tutorials/05-face-recognition.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from actorflow.errors import UnitConfigError
from actorflow.flowunits.detection.detections import Detections
from actorflow.flowunits.face.embed import SFACE_THRESHOLD, SFaceEmbedder
from actorflow.flowunits.face.gallery import GalleryFile
from actorflow.flowunits.face.recognize import FaceRecognizer, identify, landmark_crops
from actorflow.flowunits.inference._session import DEVICES, Device
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

__all__ = ["FaceIdentify", "FaceRecognition"]


def _check(threshold: float, device: str | None, threads: int) -> tuple[float, int]:
    if not -1.0 <= float(threshold) <= 1.0:
        msg = f"similarity_threshold is a cosine similarity within [-1, 1], got {threshold}"
        raise UnitConfigError(msg)
    if device is not None and device not in DEVICES:
        msg = f"device must be one of {list(DEVICES)}, got {device!r}"
        raise UnitConfigError(msg)
    if int(threads) < 1:
        msg = f"intra_op_threads must be >= 1, got {threads}"
        raise UnitConfigError(msg)
    return float(threshold), int(threads)


def _bgr(ctx: Context, packet: Packet[Any], image: Any) -> np.ndarray | None:
    """The packet's image if it is H x W x 3 ``uint8``; else the packet is failed."""
    if isinstance(image, np.ndarray) and image.shape[2:] == (3,) and image.dtype == np.uint8:
        return image
    got = f"{image.dtype}{list(image.shape)}" if isinstance(image, np.ndarray) else type(image)
    msg = f"node {ctx.node!r}: needs an H x W x 3 uint8 image, got {got}"
    ctx.fail(packet, ValueError(msg))
    return None


class _GalleryUnit(FlowUnit):
    def __init__(
        self,
        *,
        gallery: str,
        similarity_threshold: float = SFACE_THRESHOLD,
        device: str | None = None,
        intra_op_threads: int = 1,
    ) -> None:
        if not isinstance(gallery, str) or not gallery:
            msg = (
                "gallery must be the path of an identity file; build one with: "
                "actorflow gallery build PHOTOS_DIR -o people.npz"
            )
            raise UnitConfigError(msg)
        self._gallery_path = gallery
        self._threshold, self._threads = _check(similarity_threshold, device, intra_op_threads)
        self._device = device
        self._gallery: GalleryFile | None = None

    def _device_for(self, ctx: Context) -> Device:
        chosen = self._device or (ctx.device if ctx.device in DEVICES else "auto")
        return chosen  # type: ignore[return-value]

    async def _open_gallery(self, ctx: Context) -> GalleryFile:
        if self._gallery is None:
            path = ctx.resolve_path(self._gallery_path)
            self._gallery = await ctx.run_blocking(GalleryFile, path)
        return self._gallery

    def describe(self) -> Mapping[str, Any]:
        """The gallery file, its size and how often it was reloaded."""
        if self._gallery is None:
            return {"gallery": self._gallery_path}
        return {
            "gallery": str(self._gallery.path),
            "people": len(self._gallery.current().people),
            "reloads": self._gallery.reloads,
        }


class FaceRecognition(_GalleryUnit):
    """Find faces in BGR images and identify them against a gallery.

    YuNet detection, 5-point alignment, SFace embeddings and cosine matching. With
    ``batch_size > 1`` the faces of every image of a batch (across sessions) are
    embedded in one model call. Ports: image (in) H x W x 3 ``uint8`` BGR;
    detections (out) the identified faces, best detection first.

    Args:
        gallery: the identity file (``.npz`` from ``actorflow gallery build``).
        similarity_threshold: cosine similarity needed to name a person (OpenCV's
            0.363 for SFace by default).
        max_faces: faces kept per image, best detection score first (0: all).
        detection_threshold: smallest YuNet score kept.
        device: where SFace runs (default: the node's ``device``).
        intra_op_threads: onnxruntime threads per operator.
    """

    name = "face_recognition"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    detections_out: Output[Detections] = Output("detections", Detections)

    def __init__(
        self,
        *,
        gallery: str,
        similarity_threshold: float = SFACE_THRESHOLD,
        max_faces: int = 0,
        detection_threshold: float = 0.7,
        device: str | None = None,
        intra_op_threads: int = 1,
    ) -> None:
        super().__init__(
            gallery=gallery,
            similarity_threshold=similarity_threshold,
            device=device,
            intra_op_threads=intra_op_threads,
        )
        if int(max_faces) < 0 or not 0.0 < float(detection_threshold) <= 1.0:
            msg = (
                f"need max_faces >= 0 and 0 < detection_threshold <= 1, got {max_faces}, "
                f"{detection_threshold}"
            )
            raise UnitConfigError(msg)
        self._max_faces, self._score = int(max_faces), float(detection_threshold)
        self._recognizers: dict[int, FaceRecognizer] = {}

    async def open(self, ctx: Context) -> None:
        """Load the gallery and this replica's models on the node's thread."""
        await self._open_gallery(ctx)
        self._recognizers[ctx.replica] = await ctx.run_blocking(self._load, ctx)

    def _load(self, ctx: Context) -> FaceRecognizer:
        return FaceRecognizer(
            score_threshold=self._score,
            max_faces=self._max_faces,
            device=self._device_for(ctx),
            intra_op_threads=self._threads,
            node=ctx.node,
        )

    async def process(self, ctx: Context, packet: Packet[np.ndarray]) -> None:
        """Identify the faces of one image."""
        await self.process_batch(ctx, [packet])

    async def process_batch(self, ctx: Context, packets: list[Packet[np.ndarray]]) -> None:
        """Identify the faces of every image; one SFace call for all of them.

        An image that is not H x W x 3 ``uint8`` fails alone (``ctx.fail``).
        """
        good = [(p, image) for p in packets if (image := _bgr(ctx, p, p.data)) is not None]
        if not good:
            return
        assert self._gallery is not None
        recognizer = self._recognizers[ctx.replica]
        found = await ctx.run_blocking(recognizer.faces, [image for _, image in good])
        gallery = self._gallery.current()
        for (packet, _), (dets, vectors) in zip(good, found, strict=True):
            result = identify(dets, vectors, gallery, self._threshold)
            await ctx.emit(self.detections_out, packet.replace(result))

    async def close(self, ctx: Context) -> None:
        """Drop this replica's models."""
        self._recognizers.pop(ctx.replica, None)


class FaceIdentify(_GalleryUnit):
    """Identify faces another detector found (MTCNN's ``data["landmarks"]``).

    Ports: image (in) H x W x 3 ``uint8``, in ``channels`` order; detections (in)
    with 5 landmarks per face, joined by lineage; detections (out) identified.

    Args:
        gallery: the identity file.
        similarity_threshold: cosine similarity needed to name a person.
        channels: ``rgb`` (after a ``color_convert``, as the MTCNN units take) or
            ``bgr``.
        device: where SFace runs (default: the node's ``device``).
        intra_op_threads: onnxruntime threads per operator.
    """

    name = "face_identify"
    image_in: Input[np.ndarray] = Input("image", np.ndarray)
    detections_in: Input[Detections] = Input("detections", Detections)
    detections_out: Output[Detections] = Output("detections", Detections)

    def __init__(
        self,
        *,
        gallery: str,
        similarity_threshold: float = SFACE_THRESHOLD,
        channels: str = "rgb",
        device: str | None = None,
        intra_op_threads: int = 1,
    ) -> None:
        super().__init__(
            gallery=gallery,
            similarity_threshold=similarity_threshold,
            device=device,
            intra_op_threads=intra_op_threads,
        )
        if channels not in ("rgb", "bgr"):
            msg = f"channels must be 'rgb' or 'bgr', got {channels!r}"
            raise UnitConfigError(msg)
        self._rgb = channels == "rgb"
        self._embedders: dict[int, SFaceEmbedder] = {}

    async def open(self, ctx: Context) -> None:
        """Load the gallery and this replica's SFace session on the node's thread."""
        await self._open_gallery(ctx)
        self._embedders[ctx.replica] = await ctx.run_blocking(self._load, ctx)

    def _load(self, ctx: Context) -> SFaceEmbedder:
        return SFaceEmbedder(
            node=ctx.node, device=self._device_for(ctx), intra_op_threads=self._threads
        )

    async def process(self, ctx: Context, packet: Packet[dict[str, Any]]) -> None:
        """Identify the faces of one image."""
        await self.process_batch(ctx, [packet])

    async def process_batch(self, ctx: Context, packets: list[Packet[dict[str, Any]]]) -> None:
        """Align and embed every face of every packet in one SFace call; identify them."""
        crops: list[np.ndarray] = []
        good: list[tuple[Packet[dict[str, Any]], Detections]] = []
        for packet in packets:
            image = _bgr(ctx, packet, packet.data["image"])
            if image is None:
                continue
            dets: Detections = packet.data["detections"]
            rgb = image if self._rgb else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            try:
                crops.extend(landmark_crops(rgb, dets))
            except ValueError as exc:
                ctx.fail(packet, ValueError(f"node {ctx.node!r}: {exc}"))
                continue
            good.append((packet, dets))
        if not good:
            return
        assert self._gallery is not None
        vectors = await ctx.run_blocking(self._embedders[ctx.replica].embed, crops)
        gallery, start = self._gallery.current(), 0
        for packet, dets in good:
            rows = vectors[start : start + len(dets)]
            start += len(dets)
            await ctx.emit(
                self.detections_out, packet.replace(identify(dets, rows, gallery, self._threshold))
            )

    async def close(self, ctx: Context) -> None:
        """Drop this replica's session."""
        self._embedders.pop(ctx.replica, None)
