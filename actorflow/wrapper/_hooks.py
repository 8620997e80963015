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
    if isinstance(raw, staticmethod):
        return raw.__func__(*args[: _arity(raw.__func__)])
    if isinstance(raw, classmethod):
        return raw.__func__(type(obj), *args[: _arity(raw.__func__) - 1])
    if inspect.isfunction(raw):
        total = _arity(raw)
        if total == 0:  # declared without self: call it as a plain function
            return raw()
        return raw(obj, *args[: total - 1])
    fn: Callable[..., Any] = getattr(obj, name)  # some other callable: no cache
    return fn(*args[: _arity.__wrapped__(fn)])


@lru_cache(maxsize=512)
def _arity(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` accepts (a large number for ``*args``).

    Cached per plain function (never per bound method, which would keep instances alive).
    """
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
