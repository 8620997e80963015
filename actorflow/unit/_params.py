"""A unit's parameters as declared (names, annotations, defaults), and checks against them.

Graph files carry parameter values without types (DOT has none), so a value that does
not fit the unit's annotation (``factor="two"`` for ``factor: float``) would otherwise
reach the unit and fail, or worse run, at run time. ``param_problems`` finds it at
``build()`` and in ``actorflow validate``, along with unknown and missing parameters.

Rules of the type check (``fits``):

* ``float`` takes ints and floats, ``int`` takes ints (not ``True``), ``bool`` takes
  ``true``/``false``; ``str`` takes strings and, since a DOT value like ``"7"`` reads as
  a number, numbers too;
* ``Path`` takes strings; ``Literal[...]`` takes its listed values; a union takes what
  any member takes; ``list``/``tuple``/``Sequence`` take lists and tuples (items checked
  the same way); ``dict``/``Mapping`` take mappings;
* an annotation it cannot judge (``Any``, a protocol, a string it cannot resolve)
  accepts everything: the check never refuses a value the unit might accept.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from actorflow.graph import RUNTIME_ATTRIBUTES, suggest
from actorflow.unit._base import FlowUnit, SourceUnit

__all__ = [
    "Param",
    "abstract_problem",
    "declared_params",
    "fits",
    "param_problems",
    "type_name",
    "unit_checker",
]


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a unit, as its signature declares it."""

    name: str
    annotation: Any
    """The resolved annotation; ``inspect.Parameter.empty`` when there is none."""
    default: Any
    """The default value; ``inspect.Parameter.empty`` for a required parameter."""

    @property
    def required(self) -> bool:
        """Whether a graph must set it."""
        return self.default is inspect.Parameter.empty


def declared_params(cls: type[FlowUnit]) -> tuple[list[Param], bool]:
    """The unit's keyword parameters, and whether it also takes any keyword (``**kw``).

    Annotations are resolved (``from __future__ import annotations`` included); one
    that cannot be resolved is left as ``empty`` (not checked).
    """
    signature = inspect.signature(cls)
    hints = _hints(cls)
    params = [
        Param(name, hints.get(name, inspect.Parameter.empty), p.default)
        for name, p in signature.parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    any_keyword = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    return params, any_keyword


def _hints(cls: type[FlowUnit]) -> dict[str, Any]:
    target = getattr(cls, "_fn", None) or cls.__init__  # @flowunit/@source: the function
    try:
        return typing.get_type_hints(target)
    except Exception:
        return {}


def param_problems(cls: type[FlowUnit], params: Mapping[str, Any]) -> list[str]:
    """Every problem with ``params`` for ``cls``: unknown, missing, or of the wrong type.

    Each message names the parameter, what was expected and the fix; the caller adds
    the node and the location.
    """
    declared, any_keyword = declared_params(cls)
    by_name = {p.name: p for p in declared}
    problems = []
    if not any_keyword:
        accepted = ", ".join(by_name) or "none"
        for key in params:
            if key not in by_name:
                near = suggest(key, [*by_name, *RUNTIME_ATTRIBUTES])
                problems.append(f"unknown parameter {key!r}{near} (accepted: {accepted})")
    for param in declared:
        if param.required and param.name not in params:
            problems.append(f"missing required parameter {param.name!r}")
        elif param.name in params and fits(params[param.name], param.annotation) is False:
            value = params[param.name]
            problems.append(
                f"parameter {param.name!r} expects {type_name(param.annotation)}, got "
                f"{value!r} ({type(value).__name__}); write {param.name}={_example(param)}"
            )
    return problems


def unit_checker(
    cls: type[FlowUnit], *, params: bool = True
) -> Callable[[Mapping[str, Any]], list[str]]:
    """The graph validator's check for nodes of ``cls`` (``Contract.check``).

    Args:
        cls: the unit class.
        params: check the node's parameters too; ``False`` for nodes holding a ready
            instance (Python builder), whose constructor ran already.
    """

    def check(values: Mapping[str, Any]) -> list[str]:
        abstract = abstract_problem(cls)
        if abstract is not None:
            return [abstract]
        return param_problems(cls, values) if params else []

    return check


def abstract_problem(cls: type[FlowUnit]) -> str | None:
    """Why ``cls`` cannot run (it defines no ``process``/``generate``), or ``None``."""
    name = cls.__qualname__
    if issubclass(cls, SourceUnit):
        if cls.generate is SourceUnit.generate:
            return (
                f"{name} is a SourceUnit without generate(); define "
                "'async def generate(self, ctx)' yielding payloads"
            )
        return None
    if cls.process is FlowUnit.process and not cls.has_batch():
        return (
            f"{name} defines no process(); define "
            "'async def process(self, ctx, packet)' (or process_batch)"
        )
    return None


def fits(value: Any, annotation: Any) -> bool | None:
    """Whether ``value`` fits ``annotation``; ``None`` when the annotation cannot be judged."""
    if annotation in (inspect.Parameter.empty, Any, object):
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        verdicts = [fits(value, a) for a in args]
        if any(v is True for v in verdicts):
            return True
        return None if any(v is None for v in verdicts) else False
    if origin is not None:
        return _fits_generic(value, origin, args)
    return _fits_class(value, annotation)


def _fits_class(value: Any, annotation: Any) -> bool | None:
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return isinstance(value, str | PurePath)
    if isinstance(annotation, type) and not _is_protocol(annotation):
        return isinstance(value, annotation)
    return None


def _fits_generic(value: Any, origin: Any, args: tuple[Any, ...]) -> bool | None:
    sequences = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
    if origin in sequences:
        if not isinstance(value, list | tuple):
            return False
        item = args[0] if args and (origin is not tuple or args[-1] is Ellipsis) else None
        if item is None:
            return None if origin is tuple and args else True
        verdicts = [fits(v, item) for v in value]
        return not any(v is False for v in verdicts)
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, Mapping)
    return None


def _is_protocol(cls: type) -> bool:
    return bool(getattr(cls, "_is_protocol", False))


def type_name(annotation: Any) -> str:
    """A readable name for an annotation (``float``, ``'cpu' | 'cuda'``, ``list[int]``)."""
    if annotation is inspect.Parameter.empty:
        return "any"
    if typing.get_origin(annotation) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("collections.abc.", "")


def _example(param: Param) -> str:
    if param.default is not inspect.Parameter.empty and param.default is not None:
        return repr(param.default)
    examples = {int: "1", float: "1.0", bool: "true", str: '"text"'}
    annotation = param.annotation
    if typing.get_origin(annotation) is Literal:
        return repr(typing.get_args(annotation)[0])
    return examples.get(annotation, f"<{type_name(annotation)}>")
