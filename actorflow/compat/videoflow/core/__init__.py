"""``videoflow.core``: the ``Flow`` and the node base classes."""

from __future__ import annotations

from actorflow.compat.videoflow._flow import BATCH as BATCH
from actorflow.compat.videoflow._flow import REALTIME as REALTIME
from actorflow.compat.videoflow._flow import Flow as Flow

__all__ = ["BATCH", "REALTIME", "Flow"]
