"""``@flowunit`` and ``@source``: units from functions.

A function's positional parameters receive the input ports' payloads; its keyword-only
parameters are the unit's graph parameters. Async functions run on the event loop;
plain functions run on the node's executor thread.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from typing import Any, overload

from actorflow.errors import UnitConfigError
from actorflow.unit._base import Context, FlowUnit, SourceUnit
from actorflow.unit._packet import Packet
from actorflow.unit._params import param_problems
from actorflow.unit._ports import Input, Output
from actorflow.unit._registry import default_registry

PortSpec = Mapping[str, Any] | Iterable[str] | str | None
"""Ports as ``{"name": type}``, one name, a list of names, or ``None`` for the defaults."""


class FunctionUnit(FlowUnit):
    """A unit wrapping a function; built by ``@flowunit``."""

    _fn: Callable[..., Any]
    _is_async: bool
    _multi_in: bool
    _multi_out: bool
    _expand: bool

    def __init__(self, **params: Any) -> None:
        self._params = params

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Call the function and emit what it returns (``None`` emits nothing)."""
        result = await self.call(ctx, packet.data)
        await self.emit_result(ctx, packet, result)

    async def call(self, ctx: Context, data: Any) -> Any:
        """Call the wrapped function on one payload (a dict of ports for multi-input units)."""
        if self._multi_in:
            if self._is_async:
                return await self._fn(**data, **self._params)
            return await ctx.run_blocking(_call_kw, self._fn, data, self._params)
        if self._is_async:
            return await self._fn(data, **self._params)
        return await ctx.run_blocking(_call_one, self._fn, data, self._params)

    async def emit_result(self, ctx: Context, packet: Packet[Any], result: Any) -> None:
        """Emit a function result following the unit's output shape."""
        if result is None:
            return
        if self._multi_out:
            for port, value in result.items():
                await ctx.emit(port, packet.replace(value))
        elif self._expand:
            port = self.outputs[0]
            for value in result:
                await ctx.emit(port, packet.replace(value))
        else:
            await ctx.emit(self.outputs[0], packet.replace(result))


class FunctionSource(SourceUnit):
    """A source wrapping a generator function; built by ``@source``."""

    _fn: Callable[..., Any]
    _wants_ctx: bool

    def __init__(self, **params: Any) -> None:
        self._params = params

    def generate(self, ctx: Context) -> AsyncIterator[Any]:
        """The wrapped generator; a plain one is stepped on the executor thread.

        An async generator is returned as it is, with no extra layer per item.
        """
        args = (ctx,) if self._wants_ctx else ()
        gen = self._fn(*args, **self._params)
        if inspect.isasyncgen(gen):
            return gen
        return self._step(ctx, gen)

    async def _step(self, ctx: Context, gen: Generator[Any, None, None]) -> AsyncIterator[Any]:
        done = object()
        try:
            while (item := await ctx.run_blocking(next, gen, done)) is not done:
                yield item
        finally:
            gen.close()


@overload
def flowunit(fn: Callable[..., Any], /) -> type[FunctionUnit]: ...
@overload
def flowunit(
    *,
    name: str | None = ...,
    inputs: PortSpec = ...,
    outputs: PortSpec = ...,
    expand: bool = ...,
    register: bool = ...,
    fatal_errors: tuple[type[BaseException], ...] = ...,
) -> Callable[[Callable[..., Any]], type[FunctionUnit]]: ...


def flowunit(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    inputs: PortSpec = None,
    outputs: PortSpec = None,
    expand: bool = False,
    register: bool = True,
    fatal_errors: tuple[type[BaseException], ...] = (),
) -> Any:
    """Turn a function into a unit class, registered under ``name`` (default: its name).

    One input: the function takes the payload as its first argument. Several inputs:
    one argument per port, by name. One output: the return value is emitted (``None``
    emits nothing, a filter, counted as ``filtered``). Several outputs: return a dict
    of port name to payload. ``expand=True``: return an iterable, one child packet per
    item. Raising fails that item only (its session receives the error); exceptions in
    ``fatal_errors`` also restart the unit (``FlowUnit.fatal_errors``).

    Raises:
        TypeError: the function is a generator (use ``@source``), or its parameters do
            not match the declared inputs.
    """

    def wrap(func: Callable[..., Any]) -> type[FunctionUnit]:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            msg = (
                f"@flowunit needs a function that returns, got generator {func.__qualname__}; "
                "use @source for generators"
            )
            raise TypeError(msg)
        positional = _positional(func)
        in_ports = _ports(inputs, positional if len(positional) > 1 else ["in"], Input)
        if len(in_ports) > 1 and [p.name for p in in_ports] != positional[: len(in_ports)]:
            msg = (
                f"@flowunit {func.__qualname__}: with several inputs the function's "
                f"positional parameters must be the port names {[p.name for p in in_ports]}, "
                f"got {positional}"
            )
            raise TypeError(msg)
        out_ports = _ports(outputs, ["out"], Output)
        if expand:
            out_ports = [Output(p.name, p.type, expand=True) for p in out_ports]
        attrs: dict[str, Any] = {
            "_fn": staticmethod(func),
            "_is_async": inspect.iscoroutinefunction(func),
            "_multi_in": len(in_ports) > 1,
            "_multi_out": len(out_ports) > 1,
            "_expand": expand,
            "fatal_errors": tuple(fatal_errors),
            "__doc__": func.__doc__,
            "__module__": func.__module__,
            "__init__": _init_with_signature(func, FunctionUnit),
        }
        attrs.update({f"_in_{p.name}": p for p in in_ports})
        attrs.update({f"_out_{p.name}": p for p in out_ports})
        cls: type[FunctionUnit] = type(func.__name__, (FunctionUnit,), attrs)
        cls.name = name or func.__name__
        cls.__qualname__ = func.__qualname__
        if register:
            default_registry.register(cls)
        return cls

    return wrap(fn) if fn is not None else wrap


@overload
def source(fn: Callable[..., Any], /) -> type[FunctionSource]: ...
@overload
def source(
    *,
    name: str | None = ...,
    outputs: PortSpec = ...,
    register: bool = ...,
) -> Callable[[Callable[..., Any]], type[FunctionSource]]: ...


def source(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    outputs: PortSpec = None,
    register: bool = True,
) -> Any:
    """Turn a generator function (async or plain) into a source unit class.

    A first positional parameter named ``ctx`` receives the ``Context``; keyword-only
    parameters are graph parameters. Returning from the generator ends the stream.

    Raises:
        TypeError: the function is not a generator function.
    """

    def wrap(func: Callable[..., Any]) -> type[FunctionSource]:
        if not (inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func)):
            msg = f"@source needs a generator function (with 'yield'), got {func.__qualname__}"
            raise TypeError(msg)
        out_ports = _ports(outputs, ["out"], Output)
        attrs: dict[str, Any] = {
            "_fn": staticmethod(func),
            "_wants_ctx": _positional(func)[:1] == ["ctx"],
            "__doc__": func.__doc__,
            "__module__": func.__module__,
            "__init__": _init_with_signature(func, FunctionSource),
        }
        attrs.update({f"_out_{p.name}": p for p in out_ports})
        cls: type[FunctionSource] = type(func.__name__, (FunctionSource,), attrs)
        cls.name = name or func.__name__
        cls.__qualname__ = func.__qualname__
        if register:
            default_registry.register(cls)
        return cls

    return wrap(fn) if fn is not None else wrap


def _positional(func: Callable[..., Any]) -> list[str]:
    return [
        n
        for n, p in inspect.signature(func).parameters.items()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _ports(spec: PortSpec, default: list[str], kind: type[Any]) -> list[Any]:
    if spec is None:
        return [kind(n) for n in default]
    if isinstance(spec, Mapping):
        return [v if isinstance(v, kind) else kind(k, v) for k, v in spec.items()]
    if isinstance(spec, str):  # one port by name, not one port per letter
        return [kind(spec)]
    return [kind(n) for n in spec]


def _init_with_signature(func: Callable[..., Any], base: type[Any]) -> Callable[..., None]:
    """An ``__init__`` whose signature is the function's keyword-only parameters.

    The registry inspects it to name unknown or missing graph parameters.
    """
    keyword = [p for p in inspect.signature(func).parameters.values() if p.kind is p.KEYWORD_ONLY]

    def __init__(self: Any, **params: Any) -> None:
        bound = inspect.Signature(keyword).bind(**params)
        bound.apply_defaults()
        wrong = param_problems(type(self), bound.arguments)
        if wrong:  # `scale(factor="two")` in Python fails here, as in a graph file
            raise UnitConfigError(f"{type(self).name}: " + "; ".join(wrong))
        base.__init__(self, **bound.arguments)

    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY), *keyword]
    )
    return __init__


def _call_one(fn: Callable[..., Any], data: Any, params: dict[str, Any]) -> Any:
    return fn(data, **params)


def _call_kw(fn: Callable[..., Any], data: dict[str, Any], params: dict[str, Any]) -> Any:
    return fn(**data, **params)
