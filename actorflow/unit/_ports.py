"""Typed port declarations, written as class attributes of a unit."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
"""The payload type a port carries."""


class Input(Generic[T]):
    """An input port.

    Args:
        name: the port's name in graph files (``node:name``).
        type: the payload type, for documentation and schemas (not checked per packet).
        optional: the graph may leave this port unconnected.
        collapse: gather the children of one expanded parent into one list; the unit
            then receives the list, in child order, with the parent's lineage.
    """

    __slots__ = ("collapse", "name", "optional", "type")

    @overload
    def __init__(
        self: Input[Any], name: str, *, optional: bool = ..., collapse: bool = ...
    ) -> None: ...
    @overload
    def __init__(
        self, name: str, type: type[T], *, optional: bool = ..., collapse: bool = ...
    ) -> None: ...

    def __init__(
        self,
        name: str,
        type: type[T] | Any = object,
        *,
        optional: bool = False,
        collapse: bool = False,
    ) -> None:
        self.name, self.type, self.optional, self.collapse = name, type, optional, collapse

    def __repr__(self) -> str:
        return f"Input({self.name!r})"


class Output(Generic[T]):
    """An output port.

    Args:
        name: the port's name in graph files (``node:name``).
        type: the payload type, for documentation and schemas.
        expand: each packet emitted on this port is a child of the input being processed
            (lineage one level deeper); the runtime closes the group when ``process``
            returns, so a collapsing input downstream knows it has every child.
    """

    __slots__ = ("expand", "name", "type")

    @overload
    def __init__(self: Output[Any], name: str, *, expand: bool = ...) -> None: ...
    @overload
    def __init__(self, name: str, type: type[T], *, expand: bool = ...) -> None: ...

    def __init__(self, name: str, type: type[T] | Any = object, *, expand: bool = False) -> None:
        self.name, self.type, self.expand = name, type, expand

    def __repr__(self) -> str:
        return f"Output({self.name!r})"
