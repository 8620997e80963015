"""Compatibility shims: code written for other systems runs with only its imports changed.

ModelBox (``compat.modelbox``), videoflow (``compat.videoflow``), aiges
(``compat.aiges``) and Roboflow-style workflow blocks (``compat.workflow``).

They are thin adapters over the native API, never a second runtime.
"""

from __future__ import annotations
