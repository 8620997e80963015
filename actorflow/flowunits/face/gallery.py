"""Identity galleries: build from a folder of photos, save as ``.npz``, match, reload.

A gallery file holds ``names`` (one per embedding), ``embeddings`` (M x 128,
L2-normalised SFace vectors) and ``files`` (the photo each came from). A face is
identified as the person whose closest embedding has the highest cosine similarity,
when that similarity reaches the threshold; otherwise it is ``"unknown"``.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

from actorflow.errors import UnitConfigError
from actorflow.flowunits.face.embed import EMBEDDING_SIZE, l2_normalize

__all__ = ["IMAGE_SUFFIXES", "UNKNOWN", "Gallery", "GalleryFile", "Match"]

UNKNOWN = "unknown"
"""The ``class_name`` of a face that matches nobody in the gallery."""
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
"""Photo files ``gallery build`` reads; other files are skipped."""

logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Match:
    """Identification of N faces: ``names[i]`` is a person or ``UNKNOWN``."""

    names: np.ndarray
    """N strings (a numpy ``str`` array)."""
    similarity: np.ndarray
    """N cosine similarities to the closest gallery face (``float32``; -1 when empty)."""
    index: np.ndarray
    """N person indices into ``Gallery.people``; -1 for unknown."""


class Gallery:
    """Labelled face embeddings; immutable once built.

    Args:
        names: one person name per embedding.
        embeddings: M x 128 vectors (normalised here).
        files: the photo each embedding came from (optional, for reports).

    Raises:
        ValueError: the shapes disagree, or a name is empty or ``"unknown"``.
    """

    def __init__(
        self, names: Iterable[str], embeddings: np.ndarray, files: Iterable[str] = ()
    ) -> None:
        self.names = np.array([str(n) for n in names], dtype=str)
        vectors = np.asarray(embeddings, np.float32).reshape(-1, EMBEDDING_SIZE)
        if len(vectors) != len(self.names):
            msg = f"gallery: {len(self.names)} names for {len(vectors)} embeddings"
            raise ValueError(msg)
        bad = [n for n in self.names if not n.strip() or n.lower() == UNKNOWN]
        if bad:
            msg = f"gallery: person names must be non-empty and not {UNKNOWN!r}, got {bad[0]!r}"
            raise ValueError(msg)
        self.embeddings = l2_normalize(vectors)
        files_list = [str(f) for f in files]
        self.files = np.array(files_list or [""] * len(self.names), dtype=str)
        self.people: tuple[str, ...] = tuple(dict.fromkeys(self.names.tolist()))
        """Each person once, in first-seen order (``class_id`` is the index here)."""
        lookup = {name: i for i, name in enumerate(self.people)}
        self._person = np.array([lookup[n] for n in self.names], np.int64)

    def __len__(self) -> int:
        return len(self.names)

    def match(self, embeddings: np.ndarray, threshold: float) -> Match:
        """Identify each row of ``embeddings`` (N x 128, normalised)."""
        query = np.asarray(embeddings, np.float32).reshape(-1, EMBEDDING_SIZE)
        n = len(query)
        if n == 0 or len(self) == 0:
            return Match(
                np.array([UNKNOWN] * n, dtype=str),
                np.full(n, -1.0, np.float32),
                np.full(n, -1, np.int64),
            )
        scores = query @ self.embeddings.T
        best = scores.argmax(axis=1)
        similarity = scores[np.arange(n), best].astype(np.float32)
        known = similarity >= threshold
        index = np.where(known, self._person[best], -1)
        names = np.where(known, self.names[best], UNKNOWN).astype(str)
        return Match(names, similarity, index)

    def save(self, path: str | Path) -> None:
        """Write the gallery atomically (a temporary file renamed over ``path``).

        A flow watching ``path`` never reads a half-written file.
        """
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".npz", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, names=self.names, embeddings=self.embeddings, files=self.files)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> Gallery:
        """Read a gallery file written by ``save`` (``actorflow gallery build``).

        Raises:
            UnitConfigError: the file is missing or not a gallery (the message says how
                to build one).
        """
        fix = "build one with: actorflow gallery build PHOTOS_DIR -o people.npz"
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                return cls(data["names"], data["embeddings"], data["files"])
        except FileNotFoundError:
            msg = f"gallery file not found: {path}; {fix}"
            raise UnitConfigError(msg) from None
        except (OSError, KeyError, ValueError) as exc:
            msg = f"gallery {path} cannot be read ({exc}); {fix}"
            raise UnitConfigError(msg) from None


class GalleryFile:
    """A gallery file that is read again whenever it changes on disk.

    ``current()`` compares the file's modification time and size with the loaded
    version (one ``stat`` call) and reloads when they differ, so adding a person to
    a running flow is: rebuild the file (``actorflow gallery build`` writes it
    atomically). A reload that fails keeps the previous gallery and logs
    ``gallery_reload_failed``. Thread-safe.

    Raises:
        UnitConfigError: (constructor) the first load fails.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._gallery = Gallery.load(self.path)
        self.reloads = 0
        """How many times the file was read again after a change."""

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def current(self) -> Gallery:
        """The gallery as the file holds it now (reloaded if the file changed)."""
        stamp = self._stat()
        with self._lock:
            if stamp is not None and stamp != self._stamp:
                try:
                    self._gallery = Gallery.load(self.path)
                except UnitConfigError as exc:
                    logger.warning("gallery_reload_failed", path=str(self.path), error=str(exc))
                else:
                    self.reloads += 1
                    logger.info("gallery_reloaded", path=str(self.path), faces=len(self._gallery))
                self._stamp = stamp
            return self._gallery
