"""``videoflow.core.constants``: flow types."""

from __future__ import annotations

from actorflow.compat.videoflow._flow import BATCH as BATCH
from actorflow.compat.videoflow._flow import REALTIME as REALTIME

__all__ = ["BATCH", "REALTIME"]
