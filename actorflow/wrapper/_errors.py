"""Exceptions of the wrapper SDK.

::

    ActorFlowError
    ├── WrapperRequestError (ValueError)   a request violates the declared fields
    ├── WrapperLoadError (ImportError)     a wrapper file cannot be loaded
    └── WrapperExecError                   a hook returned a non-zero error code
"""

from __future__ import annotations

from actorflow.errors import ActorFlowError


class WrapperRequestError(ActorFlowError, ValueError):
    """A request (or a declared test value) violates a field declaration.

    Attributes:
        field: the offending field's key (``""`` when the request's shape is wrong).
        reason: the violated rule: ``enum``, ``length``, ``range``, ``type``,
            ``missing`` or ``unknown``.
        problems: every problem found, this one included (a request may break several
            rules; ``field`` and ``reason`` are the first one's).
    """

    def __init__(
        self,
        message: str,
        *,
        field: str = "",
        reason: str = "type",
        problems: tuple[WrapperRequestError, ...] = (),
    ) -> None:
        self.field, self.reason = field, reason
        self.problems: tuple[WrapperRequestError, ...] = problems or (self,)
        super().__init__(message)


class WrapperLoadError(ActorFlowError, ImportError):
    """A wrapper file is missing, fails to import, or defines no wrapper class."""


class WrapperExecError(ActorFlowError):
    """A wrapper hook returned a non-zero error code.

    Attributes:
        code: the error code.
        message: what ``wrapperError(code)`` says about it.
        hook: which hook returned it.
    """

    def __init__(self, code: int, message: str, *, hook: str = "wrapperOnceExec") -> None:
        self.code, self.message, self.hook = code, message, hook
        super().__init__(f"{hook} returned error {code}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.code, self.message), {"hook": self.hook})
