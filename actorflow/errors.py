"""Every exception actorflow raises on purpose.

::

    ActorFlowError
    ├── GraphError (ValueError)
    │   ├── GraphSyntaxError          the file cannot be parsed (path, line, column)
    │   ├── GraphValidationError      it parses but is wrong (unknown unit, bad port, cycle)
    │   │   └── GraphCycleError       the graph has a cycle; ``cycle`` names it
    │   └── CustomCodeDisabled        a workflow carries Python code and custom code is off
    ├── UnitNotFoundError (LookupError)
    ├── UnitConfigError (ValueError)  a unit rejected its parameters
    ├── FlowStateError (RuntimeError) API called in the wrong lifecycle state
    ├── FlowTimeout (TimeoutError)    a deadline expired; the flow was stopped
    ├── SessionClosed (RuntimeError)  send() on a session that was closed or aborted
    ├── InputTypeError (TypeError)    a session input does not match the port's type
    ├── EmitError (TypeError)         ctx.emit() with an unknown port or a non-Packet
    ├── NodeFailed                    a node's open/process/close raised; cause in __cause__
    └── FlowFailed (ExceptionGroup)   the flow ended because nodes failed

Messages name the thing, what was expected and what was received, and suggest a fix
where one exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Phase = Literal["open", "process", "close", "source"]
"""Where in a unit's lifecycle a failure happened."""


class ActorFlowError(Exception):
    """Base class of every exception actorflow raises on purpose."""


class GraphError(ActorFlowError, ValueError):
    """A graph description is unusable; ``problems`` lists every problem found."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems: tuple[str, ...] = tuple(problems) or (message,)
        super().__init__(message)


class GraphSyntaxError(GraphError):
    """A graph document cannot be parsed.

    Attributes:
        path: the file (or ``"<string>"``) that failed to parse.
        line: 1-based line of the problem, when the format reports one.
        column: 1-based column of the problem, when the format reports one.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "<string>",
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        where = path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        self.path, self.line, self.column = path, line, column
        super().__init__(f"{where}: {message}")


class GraphValidationError(GraphError):
    """A graph parses but is wrong; the message lists every problem, one per line."""

    def __init__(self, problems: Sequence[str], *, source: str | None = None) -> None:
        head = f"{source}: " if source else ""
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        message = f"{head}invalid graph ({count} {noun}):\n" + "\n".join(
            f"  - {p}" for p in problems
        )
        self.source = source
        super().__init__(message, problems)


class GraphCycleError(GraphValidationError):
    """The graph has a cycle; ``cycle`` holds the node ids along it, first repeated last."""

    def __init__(
        self,
        cycle: Sequence[str],
        *,
        source: str | None = None,
        others: Sequence[str] = (),
        where: str | None = None,
    ) -> None:
        self.cycle = tuple(cycle)
        at = f" ({where})" if where else ""
        first = f"cycle: {' -> '.join(self.cycle)}{at}; flow graphs must be acyclic: remove an edge"
        super().__init__([first, *others], source=source)


class CustomCodeDisabled(GraphError):
    """A workflow carries Python code (a dynamic block) and custom code is not enabled."""

    def __init__(self, block_type: str, *, path: str = "<string>") -> None:
        self.block_type, self.path = block_type, path
        msg = (
            f"{path}: dynamic block {block_type!r} carries Python code, and custom code is "
            "disabled; enable it only for files you trust, with allow_custom_code=True or "
            "the environment variable ACTORFLOW_ALLOW_CUSTOM_CODE=1"
        )
        super().__init__(msg)


class UnitNotFoundError(ActorFlowError, LookupError):
    """No unit is registered under a name."""

    def __init__(self, message: str, name: str = "") -> None:
        self.name = name
        super().__init__(message)

    def __str__(self) -> str:  # LookupError would repr() the message
        return str(self.args[0])


class UnitConfigError(ActorFlowError, ValueError):
    """A unit rejected its parameters (raised at ``build()``, before any I/O)."""


class FlowStateError(ActorFlowError, RuntimeError):
    """A Flow method was called in a lifecycle state that does not allow it."""


class FlowTimeout(ActorFlowError, TimeoutError):
    """A deadline expired; the flow was stopped."""


class SessionClosed(ActorFlowError, RuntimeError):
    """``send()`` was called on a session that was closed, aborted, or whose flow stopped."""


class EmitError(ActorFlowError, TypeError, ValueError):
    """A unit called ``ctx.emit`` with an unknown port or a value that is not a ``Packet``.

    It fails the packet being processed, like any exception from ``process``; the
    message names the node, the port and the fix.
    """


class InputTypeError(ActorFlowError, TypeError):
    """A value sent into a session does not match the input port's declared type.

    Attributes:
        port: the input node the value was sent to.
        expected: the declared type's name.
        received: the value's type name.
    """

    def __init__(self, port: str, expected: str, received: str, consumer: str = "") -> None:
        self.port, self.expected, self.received = port, expected, received
        where = f" (it feeds {consumer})" if consumer else ""
        super().__init__(
            f"input {port!r}{where} expects {expected}, got {received}; "
            f"send a value of type {expected}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.port, self.expected, self.received))


class NodeFailed(ActorFlowError):
    """A node's ``open``, ``process`` or ``close`` raised; the cause is ``__cause__``.

    Attributes:
        node: the node id.
        unit: the unit's registry name.
        phase: where it failed.
    """

    def __init__(self, node: str, unit: str, phase: Phase, detail: str = "") -> None:
        self.node, self.unit, self.phase = node, unit, phase
        suffix = f": {detail}" if detail else ""
        super().__init__(f"node {node!r} ({unit}) failed in {phase}(){suffix}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.node, self.unit, self.phase))

    @property
    def error_type(self) -> str:
        """The class name of the exception that caused this failure (``""`` if none)."""
        return type(self.__cause__).__name__ if self.__cause__ is not None else ""

    @property
    def error_message(self) -> str:
        """The message of the exception that caused this failure."""
        return str(self.__cause__) if self.__cause__ is not None else str(self)


class FlowFailed(ExceptionGroup, ActorFlowError):
    """One or more nodes failed; ``exceptions`` holds the ``NodeFailed`` root causes.

    Collateral errors (a neighbour that saw its channel break) are never included.
    """

    def derive(self, excs: Sequence[Exception]) -> FlowFailed:  # type: ignore[override]
        """Keep the type through ``split()`` and ``except*``."""
        return FlowFailed(self.message, excs)
