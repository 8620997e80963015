"""The dependency rule of DESIGN §2: each layer imports only the layers to its left.

graph <- unit <- runtime <- flowunits <- integrations/serve/wrapper/dashboard <- cli

Checked statically on every module's imports (including deferred ones inside
functions), plus a subprocess check that ``import actorflow`` stays light.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import actorflow

PACKAGE = Path(actorflow.__file__).parent

# package -> imports it must never make (prefix match)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "actorflow.graph": (
        "anyio",
        "actorflow.unit",
        "actorflow.runtime",
        "actorflow.flowunits",
        "actorflow.integrations",
        "actorflow.serve",
        "actorflow.dashboard",
        "actorflow.cli",
        "cv2",
        "onnxruntime",
        "aiohttp",
    ),
    "actorflow.unit": (
        "actorflow.runtime",
        "actorflow.integrations",
        "actorflow.serve",
        "actorflow.dashboard",
        "actorflow.cli",
        "cv2",
        "onnxruntime",
        "aiohttp",
    ),
    "actorflow.runtime": (
        "actorflow.flowunits",
        "actorflow.integrations",
        "actorflow.serve",
        "actorflow.dashboard",
        "actorflow.cli",
        "cv2",
        "onnxruntime",
        "aiohttp",
    ),
    "actorflow.flowunits": (
        "actorflow.integrations",
        "actorflow.serve",
        "actorflow.dashboard",
        "actorflow.cli",
    ),
    "actorflow.dashboard": ("actorflow.serve", "actorflow.cli"),
}

# Deliberate exceptions, each with its reason.
ALLOWED: set[tuple[str, str]] = {
    # The workflow loader compiles dynamic blocks (opt-in custom code) into unit classes;
    # the import is deferred to the call that needs it, never at import time.
    ("actorflow.graph._formats._workflow", "actorflow.compat.workflow"),
}


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.rsplit(".", node.level)[0]
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


@pytest.mark.parametrize("layer", list(FORBIDDEN))
def test_layer_imports_only_layers_to_its_left(layer: str) -> None:
    violations = []
    for module, path in _modules():
        if module != layer and not module.startswith(layer + "."):
            continue
        for name in _imports(path, module):
            for banned in FORBIDDEN[layer]:
                if (name == banned or name.startswith(banned + ".")) and (
                    module,
                    name,
                ) not in ALLOWED:
                    violations.append(f"{module} imports {name}")
    assert not violations, "\n".join(violations)


def test_importing_actorflow_pulls_in_no_heavy_dependency() -> None:
    heavy = ["cv2", "onnxruntime", "aiohttp", "numpy", "actorflow.flowunits"]
    code = f"import sys, actorflow; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
