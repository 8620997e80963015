"""The wrapper SDK keeps aiohttp out until a server is built."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "actorflow.wrapper",
        "actorflow.compat.aiges.sdk",
        "actorflow.compat.aiges.dto",
        "actorflow.cli._create",
    ],
)
def test_import_does_not_pull_in_aiohttp(module: str) -> None:
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in ('aiohttp', 'cv2', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
