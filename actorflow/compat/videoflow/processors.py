"""``videoflow.processors``."""

from __future__ import annotations

from actorflow.compat.videoflow._nodes import IdentityProcessor as IdentityProcessor
from actorflow.compat.videoflow._nodes import JoinerProcessor as JoinerProcessor

__all__ = ["IdentityProcessor", "JoinerProcessor"]
