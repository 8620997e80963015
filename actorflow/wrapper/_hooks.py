"""Calling wrapper hooks whatever their exact signature.

aiges wrappers declare hooks in several shapes: ``def wrapperInit(cls, config)``
without ``@classmethod``, ``def wrapperFini()`` with no parameter at all, or
``wrapperOnceExec(self, params, reqData, persId=0)`` with extra optional
parameters. ``call_hook`` passes as many of the positional arguments as the hook
accepts, so code written for aiges runs unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import lru_cache
from typing import Any


def call_hook(obj: Any, name: str, *args: Any) -> Any:
    """Call hook ``name`` of wrapper ``obj`` with the leading ``args`` it accepts."""
    raw = inspect.getattr_static(type(obj), name)
    if isinstance(raw, staticmethod | classmethod):
        fn: Callable[..., Any] = getattr(obj, name)
        return fn(*args[: _arity(fn)])
    if inspect.isfunction(raw):
        total = _arity(raw)
        if total == 0:  # declared without self: call it as a plain function
            return raw()
        return raw(obj, *args[: total - 1])
    fn = getattr(obj, name)
    return fn(*args[: _arity(fn)])


@lru_cache(maxsize=256)
def _arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` accepts (a large number for ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 64
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return 64
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count
