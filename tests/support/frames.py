"""Frames for the dashboard tests: a dark image with an orange box, and a source of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import cv2
import numpy as np

import actorflow as af

BOX_BGR = (0, 155, 255)
"""The colour ``box_visualization`` draws class 0 with (orange)."""


def frame(i: int, width: int = 320, height: int = 240, *, noise: bool = False) -> np.ndarray:
    """A dark frame with an orange box that moves with ``i`` (random noise if asked)."""
    if noise:
        image = np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        image = np.full((height, width, 3), 40, np.uint8)
    x = 20 + (i * 7) % (width - 120)
    cv2.rectangle(image, (x, 60), (x + 80, 160), BOX_BGR, 4)
    return image


class Frames(af.SourceUnit):
    """Yields frames until ``stop`` is set or ``count`` frames were sent.

    ``pace`` seconds between frames keeps a live-like rate (a rate, not a sync point);
    ``after_each`` is awaited after every frame (tests pace by events with it).
    """

    out = af.Output("frame")

    def __init__(
        self,
        *,
        count: int | None = None,
        pace: float = 0.0,
        noise: bool = False,
        size: tuple[int, int] = (320, 240),
        after_each: Any = None,
    ) -> None:
        self.count, self.pace, self.noise, self.size = count, pace, noise, size
        self.after_each = after_each
        self.stop = anyio.Event()
        self.sent = 0

    async def generate(self, ctx: af.Context) -> AsyncIterator[np.ndarray]:
        while not self.stop.is_set() and (self.count is None or self.sent < self.count):
            yield frame(self.sent, *self.size, noise=self.noise)
            self.sent += 1
            if self.after_each is not None:
                await self.after_each(self.sent)
            if self.pace:
                await anyio.sleep(self.pace)
