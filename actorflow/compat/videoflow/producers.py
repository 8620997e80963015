"""``videoflow.producers``."""

from __future__ import annotations

from actorflow.compat.videoflow._nodes import IntProducer as IntProducer

__all__ = ["IntProducer"]
