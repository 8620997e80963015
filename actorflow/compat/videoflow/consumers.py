"""``videoflow.consumers``."""

from __future__ import annotations

from actorflow.compat.videoflow._nodes import CommandlineConsumer as CommandlineConsumer
from actorflow.compat.videoflow._nodes import VoidConsumer as VoidConsumer

__all__ = ["CommandlineConsumer", "VoidConsumer"]
