"""aiges ``utils.log``: a standard-library logger called ``aiges``.

Like every actorflow module it only creates the logger; the application configures
logging.
"""

from __future__ import annotations

import logging

log = logging.getLogger("aiges")
"""The logger wrappers write to with ``log.info(...)``."""

__all__ = ["log"]
