"""aiges ``utils`` package (only ``utils.log`` is provided)."""

from __future__ import annotations
