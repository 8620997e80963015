"""``WrapperBase``: the class a wrapper author subclasses (aiges-style).

A wrapper implements four hooks and declares its request and response as classes
of fields::

    class UserRequest:
        mode = StringParamField("mode", enums=["music", "humming"], value="humming")
        data = AudioBodyField("data", path="test.wav")

    class UserResponse:
        text = StringBodyField("output_text")

    class Wrapper(WrapperBase):
        requestCls = UserRequest()
        responseCls = UserResponse()
        config = {"threshold": 0.5}          # what the local debug run passes to init

        def wrapperInit(self, config): ...          # -> 0 on success
        def wrapperOnceExec(self, params, reqData): ...  # -> Response
        def wrapperFini(self): ...                  # -> 0 on success
        def wrapperError(self, code): ...           # -> message for an error code

    if __name__ == "__main__":
        m = Wrapper(); m.schema(); m.run()

The same class runs as a graph node (``WrapperUnit``) and over HTTP
(``actorflow serve wrapper.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from actorflow.wrapper._dto import DataListCls, Response, response_err
from actorflow.wrapper._errors import WrapperExecError, WrapperRequestError
from actorflow.wrapper._fields import BodyField, Field, ParamField
from actorflow.wrapper._hooks import call_hook
from actorflow.wrapper._request import check_params, check_payload

STREAM_HOOKS = ("wrapperCreate", "wrapperWrite", "wrapperRead", "wrapperDestroy")
"""The session hooks; a wrapper implements all of them or none."""


class WrapperBase:
    """Base class of wrappers; subclasses implement the ``wrapper*`` hooks.

    Hooks (each may be written with ``self`` or ``cls`` as its first parameter):

    * ``wrapperInit(config) -> int``: once, before any exec; ``0`` means success.
    * ``wrapperOnceExec(params, reqData) -> Response``: once per request, possibly
      from several threads at once (``concurrency`` bounds how many). ``params`` is
      a dict of validated parameters; ``reqData`` a ``DataListCls`` of body data.
    * ``wrapperFini() -> int``: once, after the last exec, if init succeeded.
    * ``wrapperError(code) -> str``: the message for an error code.
    * Optional session hooks ``wrapperCreate(params, sid)``, ``wrapperWrite(handle,
      reqData, sid)``, ``wrapperRead(handle, sid)``, ``wrapperDestroy(handle)``.

    A hook that is called but not implemented raises ``NotImplementedError`` naming it.

    Class attributes:
        requestCls: an instance (or class) declaring parameter and body fields.
        responseCls: an instance (or class) declaring the response's body fields.
        config: the configuration the local debug run passes to ``wrapperInit``.
        serviceId: the service name in schemas (default: the class name).
        version: the service version in schemas.
        concurrency: how many execs may run at once when served (``None``: a default
            sized for I/O-bound or GIL-releasing work).
    """

    requestCls: ClassVar[Any] = None
    responseCls: ClassVar[Any] = None
    config: ClassVar[dict[str, Any]] = {}
    serviceId: ClassVar[str] = ""
    version: ClassVar[str] = "1.0.0"
    concurrency: ClassVar[int | None] = None

    _param_fields: ClassVar[tuple[ParamField, ...]] = ()
    _body_fields: ClassVar[tuple[BodyField, ...]] = ()
    _response_fields: ClassVar[tuple[BodyField, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        request = _declared_fields(cls, "requestCls")
        cls._param_fields = tuple(f for f in request if isinstance(f, ParamField))
        cls._body_fields = tuple(f for f in request if isinstance(f, BodyField))
        response = _declared_fields(cls, "responseCls")
        stray = [f.key for f in response if not isinstance(f, BodyField)]
        if stray:
            msg = (
                f"{cls.__qualname__}.responseCls declares parameters {stray}; a response "
                "carries body fields only (StringBodyField, ImageBodyField, ...)"
            )
            raise TypeError(msg)
        cls._response_fields = tuple(f for f in response if isinstance(f, BodyField))

    # -- hooks -----------------------------------------------------------------------

    def wrapperInit(self, config: dict[str, Any]) -> int:
        """Initialise (load models, read configuration); return 0 on success."""
        raise _missing_hook(self, "wrapperInit(config)", "return 0 on success")

    def wrapperOnceExec(self, params: dict[str, Any], reqData: DataListCls) -> Response:
        """Handle one request; return a ``Response`` (or ``response_err(code)``)."""
        raise _missing_hook(self, "wrapperOnceExec(params, reqData)", "return a Response")

    def wrapperFini(self) -> int:
        """Release what init acquired; return 0 on success."""
        raise _missing_hook(self, "wrapperFini()", "return 0 when there is nothing to release")

    def wrapperError(self, code: int) -> str:
        """Return the message for error ``code``."""
        raise _missing_hook(self, "wrapperError(code)", "return a message for each code")

    def wrapperCreate(self, params: dict[str, Any], sid: str) -> Any:
        """Open a session; return its handle (or a ``SessionCreateResponse``)."""
        raise _missing_hook(self, "wrapperCreate(params, sid)", "return a session handle")

    def wrapperWrite(self, handle: Any, reqData: DataListCls, sid: str) -> int:
        """Feed one chunk of a session; return 0 on success."""
        raise _missing_hook(self, "wrapperWrite(handle, reqData, sid)", "return 0")

    def wrapperRead(self, handle: Any, sid: str) -> Response:
        """Return the results a session has ready."""
        raise _missing_hook(self, "wrapperRead(handle, sid)", "return a Response")

    def wrapperDestroy(self, handle: Any) -> int:
        """Close a session; return 0 on success."""
        raise _missing_hook(self, "wrapperDestroy(handle)", "return 0")

    # -- helpers for wrapper authors ---------------------------------------------------

    def response_err(self, code: int) -> Response:
        """Return a failed ``Response`` carrying ``code`` (aiges allows ``self.response_err``)."""
        return response_err(code)

    # -- declarations --------------------------------------------------------------

    @classmethod
    def param_fields(cls) -> tuple[ParamField, ...]:
        """The declared request parameters, in declaration order."""
        return cls._param_fields

    @classmethod
    def body_fields(cls) -> tuple[BodyField, ...]:
        """The declared request body fields, in declaration order."""
        return cls._body_fields

    @classmethod
    def response_fields(cls) -> tuple[BodyField, ...]:
        """The declared response fields, in declaration order."""
        return cls._response_fields

    @classmethod
    def service_name(cls) -> str:
        """``serviceId``, or the class name."""
        return cls.serviceId or cls.__name__

    @classmethod
    def supports_sessions(cls) -> bool:
        """Whether the class implements the session hooks."""
        return all(getattr(cls, h) is not getattr(WrapperBase, h) for h in STREAM_HOOKS)

    def schema(self) -> dict[str, Any]:
        """The request/response JSON Schemas and the OpenAPI 3.1 document.

        Returns:
            ``{"request": ..., "response": ..., "error": ..., "openapi": ...}``.
        """
        from actorflow.serve._schema import wrapper_schema

        return wrapper_schema(type(self))

    def run(self) -> None:
        """Local debug run: init -> once-exec with the declared test values -> fini.

        Prints the parameters, the response and the time taken. A non-zero error
        code is printed with its ``wrapperError`` message and ends the process with
        exit status 1 (``SystemExit``); so does an exception from a hook.
        """
        from actorflow.wrapper._debug import run_and_print

        run_and_print(self)

    # -- what the runtime calls ---------------------------------------------------------

    def check_request(
        self,
        params: Mapping[str, Any] | None,
        payload: Mapping[str, Any] | None,
        *,
        from_text: bool = False,
    ) -> tuple[dict[str, Any], DataListCls]:
        """Validate a request against the declared fields.

        Raises:
            WrapperRequestError: naming the field and the violated rule.
        """
        problems: list[WrapperRequestError] = []
        checked: dict[str, Any] = {}
        req = DataListCls()
        try:
            checked = check_params(self._param_fields, params, from_text=from_text)
        except WrapperRequestError as exc:
            problems.extend(exc.problems)
        try:
            req = check_payload(self._body_fields, payload)
        except WrapperRequestError as exc:
            problems.extend(exc.problems)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            message = "; ".join(str(p) for p in problems)
            raise WrapperRequestError(
                message,
                field=problems[0].field,
                reason=problems[0].reason,
                problems=tuple(problems),
            )
        return checked, req

    def init(self, config: Mapping[str, Any] | None = None) -> None:
        """Call ``wrapperInit`` (``config`` defaults to the class attribute).

        Raises:
            WrapperExecError: init returned a non-zero code.
        """
        config = dict(self.config if config is None else config)
        code = call_hook(self, "wrapperInit", config)
        if code:
            raise WrapperExecError(int(code), self.error_message(int(code)), hook="wrapperInit")

    def exec(self, params: dict[str, Any], req: DataListCls) -> Response:
        """Call ``wrapperOnceExec`` and check it returned a ``Response``.

        Raises:
            TypeError: the hook returned something else (``None`` included).
        """
        response = call_hook(self, "wrapperOnceExec", params, req)
        if not isinstance(response, Response):
            msg = (
                f"{type(self).__name__}.wrapperOnceExec returned {type(response).__name__}; "
                "it must return a Response (use response_err(code) for errors)"
            )
            raise TypeError(msg)
        return response

    def fini(self) -> int:
        """Call ``wrapperFini``; return its code."""
        return int(call_hook(self, "wrapperFini") or 0)

    def error_message(self, code: int) -> str:
        """``wrapperError(code)``, or a generic text when it is missing or fails."""
        try:
            text = call_hook(self, "wrapperError", code)
        except NotImplementedError:
            text = ""
        except Exception as exc:
            return f"error code {code} (wrapperError({code}) raised {exc!r})"
        return str(text) if text else f"error code {code}"


def _declared_fields(cls: type, attr: str) -> list[Field]:
    holder = getattr(cls, attr, None)
    if holder is None:
        return []
    klass = holder if isinstance(holder, type) else type(holder)
    found: dict[str, Field] = {}
    for base in reversed(klass.__mro__):
        found.update({n: v for n, v in vars(base).items() if isinstance(v, Field)})
    if not isinstance(holder, type):
        found.update(
            {n: v for n, v in getattr(holder, "__dict__", {}).items() if isinstance(v, Field)}
        )
    keys: dict[str, str] = {}
    for name, field in found.items():
        if field.key in keys:
            msg = (
                f"{cls.__qualname__}.{attr} declares the key {field.key!r} twice "
                f"({keys[field.key]} and {name}); keys must be unique"
            )
            raise TypeError(msg)
        keys[field.key] = name
    return list(found.values())


def _missing_hook(obj: object, hook: str, hint: str) -> NotImplementedError:
    return NotImplementedError(
        f"{type(obj).__name__} does not implement {hook}; define it in your wrapper class ({hint})"
    )
