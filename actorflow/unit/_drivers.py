"""Driver directories: Python flowunit modules listed by a graph file's ``[driver] dir``.

Only the listed directories are scanned, and only the ``*.py`` files directly inside
them (no recursion). Each module is imported under a private name, so a driver file
called ``json.py`` never shadows the real package; the units in it register through
``name = ...`` or ``@flowunit`` as usual.

Rules (reliability.md §3.5):

* a directory given relative to the graph file must stay inside the graph's directory:
  a ``..`` component, or a symlink that leads out, is refused; a directory the user
  wrote as an absolute path is taken as written (ModelBox uses ``/usr/local/lib``);
* a module file that is a symlink pointing outside its directory is refused;
* module names must match ``^[a-z_][a-z0-9_]*$``; no import is attempted for a
  directory with any invalid entry, and every problem is listed at once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import structlog

from actorflow.errors import GraphValidationError

MODULE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
"""What a driver module's file name (without ``.py``) must look like."""
PRIVATE_PREFIX = "_actorflow_driver_"
"""Prefix of the names driver modules get in ``sys.modules``."""

logger = structlog.get_logger(__name__)
_LOCK = threading.Lock()
_loaded: dict[Path, tuple[int, ModuleType]] = {}


def load_driver_dirs(dirs: Sequence[Path], *, base_dir: Path, source: str) -> None:
    """Import every ``*.py`` module directly inside each directory of ``dirs``.

    A module already imported from the same real path, unchanged since, is not
    imported again, so building a flow twice keeps module-level state.

    Args:
        dirs: the graph's ``driver_dirs`` (already joined to ``base_dir`` when relative).
        base_dir: the graph file's directory; relative directories must stay inside it.
        source: the graph file, for messages.

    Raises:
        GraphValidationError: a directory is missing or escapes, a file name is not a
            valid module name or is a symlink out, or a module fails to import. Every
            problem is listed; nothing is imported when any path check fails.
    """
    problems: list[str] = []
    modules: list[Path] = []
    for directory in dirs:
        try:
            modules.extend(_scan(Path(directory), base_dir, problems))
        except (OSError, ValueError) as exc:  # a NUL byte, a name too long, no permission
            shown = str(directory)[:200]
            reason = getattr(exc, "strerror", None) or exc
            problems.append(f"driver dir {shown!r} cannot be read: {reason}")
    if problems:
        raise GraphValidationError(problems, source=source)
    with _LOCK:
        for path in modules:
            _import(path, problems)
    if problems:
        raise GraphValidationError(problems, source=source)


def _scan(directory: Path, base_dir: Path, problems: list[str]) -> list[Path]:
    shown = _shown(directory, base_dir)
    if ".." in directory.parts:
        problems.append(
            f"driver dir {shown!r} contains '..': driver directories may not "
            f"climb out of the graph's directory ({base_dir}); write an absolute "
            "path if you mean a directory elsewhere"
        )
        return []
    relative = not directory.is_absolute() or directory.is_relative_to(base_dir)
    real = Path(os.path.realpath(directory))
    if relative and not real.is_relative_to(Path(os.path.realpath(base_dir))):
        problems.append(
            f"driver dir {shown!r} resolves to {real}, outside the graph's "
            f"directory {base_dir} (a symlink leads out); write the absolute "
            "path if you trust it"
        )
        return []
    if not real.is_dir():
        what = "is not a directory" if real.exists() else "does not exist"
        problems.append(f"driver dir {shown!r} {what} (resolved from {base_dir} to {real})")
        return []
    found = []
    for entry in sorted(real.iterdir()):
        if entry.suffix != ".py" or entry.name.startswith("."):
            continue
        stem = entry.name[:-3]
        if not MODULE_NAME.match(stem):
            problems.append(
                f"driver module {str(entry)!r}: invalid module name {stem!r}; "
                "driver module names must match ^[a-z_][a-z0-9_]*$"
            )
            continue
        target = Path(os.path.realpath(entry))
        if entry.is_symlink() and target.parent != real:
            problems.append(
                f"driver module {str(entry)!r} is a symlink to {target}, outside "
                f"its driver dir {real}; copy the file into the directory"
            )
            continue
        if not target.is_file():
            continue
        if stem == "__init__":
            continue
        found.append(target)
    return found


def _import(path: Path, problems: list[str]) -> None:
    mtime = path.stat().st_mtime_ns
    cached = _loaded.get(path)
    if cached is not None and cached[0] == mtime:
        return
    digest = hashlib.sha1(str(path.parent).encode(), usedforsecurity=False).hexdigest()[:10]
    name = f"{PRIVATE_PREFIX}{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always have one
        problems.append(f"driver module {str(path)!r} cannot be imported")
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        problems.append(
            f"driver module {str(path)!r} failed to import: {type(exc).__name__}: {exc}"
        )
        return
    _loaded[path] = (mtime, module)
    logger.debug("driver_module_loaded", path=str(path), module=name)


def _shown(directory: Path, base_dir: Path) -> str:
    try:
        return str(directory.relative_to(base_dir))
    except ValueError:
        return str(directory)
