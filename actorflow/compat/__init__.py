"""Compatibility shims: code written for ModelBox, videoflow, aiges or Roboflow workflows
runs with only its import line changed.

They are thin adapters over the native API, never a second runtime.
"""

from __future__ import annotations
