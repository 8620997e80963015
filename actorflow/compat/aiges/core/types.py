"""aiges ``core.types``: the same codes as ``actorflow.compat.aiges.types``."""

from __future__ import annotations

from actorflow.compat.aiges.types import *  # noqa: F403
from actorflow.compat.aiges.types import __all__ as __all__
