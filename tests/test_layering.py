"""The dependency rule of DESIGN §2: each layer imports only the layers to its left.

graph <- unit <- ray <- runtime <- flowunits <- integrations/serve/wrapper <- cli

``actorflow.ray`` (Ray placement) needs only the graph and unit layers; the runtime
imports it lazily, for graphs that place a node on Ray.

Checked statically on every module's imports (including deferred ones inside
functions), plus a subprocess check that ``import actorflow`` stays light.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import actorflow

PACKAGE = Path(actorflow.__file__).parent

LAYERS: list[tuple[str, ...]] = [
    ("actorflow.graph",),
    ("actorflow.unit",),
    ("actorflow.ray",),
    ("actorflow.runtime",),
    ("actorflow.flowunits",),
    ("actorflow.dashboard",),
    ("actorflow.integrations", "actorflow.serve", "actorflow.wrapper", "actorflow.compat"),
    ("actorflow.cli",),
]
"""Left to right: each layer may import only the layers before it (and its own)."""

THIRD_PARTY: dict[str, tuple[str, ...]] = {
    "actorflow.graph": ("anyio", "cv2", "onnxruntime", "aiohttp", "ray"),
    "actorflow.unit": ("cv2", "onnxruntime", "aiohttp", "ray"),
    "actorflow.ray": ("cv2", "onnxruntime", "aiohttp"),
    "actorflow.runtime": ("cv2", "onnxruntime", "aiohttp", "ray"),
}
"""Heavy or backend-specific libraries a layer must not import."""

# package -> imports it must never make (prefix match); the layers right of flowunits
# may use each other (compat wraps serve and wrapper), never the CLI.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    package: THIRD_PARTY.get(package, ())
    + tuple(higher for later in LAYERS[i + 1 :] for higher in later)
    for i, layer in enumerate(LAYERS[:-2])  # every layer left of the servers
    for package in layer
}

# Deliberate exceptions, each with its reason.
ALLOWED: set[tuple[str, str]] = set()

TARGET = re.compile(r"^(actorflow(?:\.[A-Za-z_]\w*)+):[A-Za-z_][\w.]*$")
"""A ``"module:Class"`` string (entry-point values, lazy tables)."""
IMPORTERS = {"import_module", "__import__", "find_spec"}
"""Calls whose first argument is a module imported through a string."""


def _imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports: statements, deferred ones, and names in strings."""
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
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name in IMPORTERS and isinstance(first, ast.Constant):
                found.add(str(first.value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = TARGET.match(node.value)
            if match:
                found.add(match.group(1))
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
    heavy = [
        "cv2",
        "onnxruntime",
        "aiohttp",
        "numpy",
        "ray",
        "actorflow.flowunits",
        "actorflow.ray",
    ]
    code = f"import sys, actorflow; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_string_imports_are_seen() -> None:
    """The check sees modules named in strings, as entry-point tables and import_module do."""
    found = _imports(Path(__file__), "tests.test_layering")
    assert "actorflow.flowunits.inference.onnx" in found  # from the string below
    assert "actorflow.flowunits.inference.onnx:OnnxInference"
    assert "actorflow.serve" in found  # from the call below, never made
    if not found:
        importlib.import_module("actorflow.serve")


def test_builtin_units_register_through_the_entry_point_group() -> None:
    from importlib.metadata import entry_points

    from actorflow.unit import default_registry

    names = {ep.name for ep in entry_points(group="actorflow.flowunits")}
    assert {"onnx_inference", "resize", "http_sink", "wrapper"} <= names
    assert names <= set(default_registry.names())
