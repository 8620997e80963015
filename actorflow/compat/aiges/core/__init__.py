"""aiges ``core`` package (only ``core.types`` is provided)."""

from __future__ import annotations
