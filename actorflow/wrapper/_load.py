"""Loading a wrapper class from a ``wrapper.py`` file.

The file is imported once per resolved path and process (under a module name of its
own, so its ``if __name__ == "__main__":`` block does not run); every node or
server that names the same file gets the same class.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

from actorflow.wrapper._base import WrapperBase
from actorflow.wrapper._errors import WrapperLoadError

_lock = threading.Lock()
_modules: dict[Path, ModuleType] = {}


def load_wrapper(path: str | Path, name: str | None = None) -> type[WrapperBase]:
    """Import ``path`` and return its wrapper class.

    Args:
        path: the wrapper file.
        name: the class to take; by default ``Wrapper`` if the file defines one,
            else the only ``WrapperBase`` subclass defined in the file.

    Raises:
        WrapperLoadError: the file is missing, fails to import, or has no (or several)
            wrapper classes and ``name`` does not pick one.
    """
    resolved = Path(path).expanduser().resolve()
    module = _import(resolved, path)
    if name is not None:
        cls = getattr(module, name, None)
        if not (isinstance(cls, type) and issubclass(cls, WrapperBase)):
            msg = f"{path}: no WrapperBase subclass called {name!r}{_found(module)}"
            raise WrapperLoadError(msg)
        return cls
    default = getattr(module, "Wrapper", None)
    if isinstance(default, type) and issubclass(default, WrapperBase):
        return default
    candidates = _candidates(module)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        msg = (
            f"{path}: defines no wrapper class; subclass WrapperBase (from "
            "actorflow.wrapper or actorflow.compat.aiges.sdk) in a class called Wrapper"
        )
    else:
        msg = f"{path}: several wrapper classes{_found(module)}; name the one to serve"
    raise WrapperLoadError(msg)


def _import(resolved: Path, given: str | Path) -> ModuleType:
    with _lock:
        module = _modules.get(resolved)
        if module is not None:
            return module
        if not resolved.is_file():
            msg = f"wrapper file not found: {given} (resolved to {resolved})"
            raise WrapperLoadError(msg)
        digest = hashlib.sha1(str(resolved).encode(), usedforsecurity=False).hexdigest()[:10]
        module_name = f"actorflow_wrapper_{resolved.stem}_{digest}"
        spec = importlib.util.spec_from_file_location(module_name, resolved)
        if spec is None or spec.loader is None:
            msg = f"{given}: cannot be imported as a Python module"
            raise WrapperLoadError(msg)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        # The wrapper's own directory first, as `python wrapper.py` would have it, so
        # that its sibling modules import.
        folder = str(resolved.parent)
        added = folder not in sys.path
        if added:
            sys.path.insert(0, folder)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            if added:
                sys.path.remove(folder)
            msg = f"{given}: importing the wrapper failed: {type(exc).__name__}: {exc}"
            raise WrapperLoadError(msg) from exc
        _modules[resolved] = module
        return module


def _candidates(module: ModuleType) -> list[type[WrapperBase]]:
    return [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, WrapperBase) and v.__module__ == module.__name__
    ]


def _found(module: ModuleType) -> str:
    names = [c.__name__ for c in _candidates(module)]
    return f" (found: {', '.join(names)})" if names else ""
