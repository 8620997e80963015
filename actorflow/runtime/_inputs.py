"""Boundary checks: values entering a session must match the input port's declared type.

A graph's ``input`` node feeds unit input ports that declare a payload type
(``Input("number", float)``). Checking at the boundary turns a wrong-typed request into
an ``InputTypeError`` naming the port, the expected and the received type, before
anything enters the graph — instead of a failure deep inside a unit.

The check is one ``isinstance`` per value. Numbers follow the numeric tower (an ``int``
is a valid ``float``; NumPy scalars count); generic aliases check their origin
(``dict[str, Any]`` checks ``dict``); ``Any``, ``object``, type variables and string
annotations accept everything.
"""

from __future__ import annotations

import numbers
import types
import typing
from collections.abc import Callable
from typing import Any

from actorflow.errors import InputTypeError

_TOWER: dict[type, type] = {
    float: numbers.Real,
    int: numbers.Integral,
    complex: numbers.Complex,
}


def runtime_classes(annotation: Any) -> tuple[type, ...] | None:
    """The classes ``isinstance`` should check for ``annotation``; ``None``: anything."""
    if annotation is Any or annotation is object or annotation is None:
        return None
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        found: list[type] = []
        for arg in typing.get_args(annotation):
            classes = runtime_classes(arg)
            if classes is None:
                return None
            found.extend(classes)
        return tuple(found)
    if origin is typing.Annotated:
        return runtime_classes(typing.get_args(annotation)[0])
    if origin is not None:
        return (origin,) if isinstance(origin, type) else None
    if isinstance(annotation, type):
        return (_TOWER.get(annotation, annotation),)
    return None


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


def input_check(port: str, consumers: list[tuple[str, Any]]) -> Callable[[Any], None] | None:
    """A checker for values sent into input node ``port``.

    Args:
        port: the input node's id.
        consumers: ``(node:port, declared type)`` of every unit port it feeds.

    Returns:
        A function raising ``InputTypeError`` on a wrong value, or ``None`` when every
        consumer accepts anything.
    """
    checks = [
        (where, annotation, classes)
        for where, annotation in consumers
        if (classes := runtime_classes(annotation)) is not None
    ]
    if not checks:
        return None

    def check(value: Any) -> None:
        for where, annotation, classes in checks:
            if not isinstance(value, classes):
                raise InputTypeError(port, _type_name(annotation), type(value).__name__, where)

    return check
