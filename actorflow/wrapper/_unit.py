"""``WrapperUnit``: a wrapper standing as a node of a graph.

Every hook runs on the node's executor thread (``ctx.run_blocking``), never on the
event loop. Concurrency comes from node replicas: with ``replicas = 4`` four execs
run at once, on threads ``actorflow-<node>-0..3``, against one shared wrapper
instance (aiges semantics: init once, concurrent execs, fini once), or against one
instance per replica with ``shared = false`` for wrappers that are not thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from actorflow.errors import UnitConfigError
from actorflow.unit import Context, FlowUnit, Input, Output, Packet
from actorflow.wrapper._base import WrapperBase
from actorflow.wrapper._dto import (
    DataBegin,
    DataContinue,
    DataEnd,
    DataListCls,
    Response,
    SessionCreateResponse,
)
from actorflow.wrapper._errors import WrapperExecError, WrapperRequestError
from actorflow.wrapper._hooks import call_hook
from actorflow.wrapper._load import load_wrapper
from actorflow.wrapper._request import check_params, check_payload

Mode = Literal["once", "session"]


class WrapperUnit(FlowUnit):
    """Run a wrapper's ``wrapperOnceExec`` (or its session hooks) per packet.

    Ports:
        in (in): a request: ``{"parameter": {...}, "payload": {key: value}}`` (values
            as in the JSON form of the HTTP API, or bytes), or, for a wrapper with one
            body field, that field's value alone (bytes, str or a JSON value). A
            request whose ``payload`` is already a ``DataListCls`` is taken as
            validated (``WrapperBase.check_request`` made it). A ``SessionCall``
            runs one session hook whatever the mode (``shared`` nodes only).
        out (out): the ``Response``. A non-zero ``error_code`` is emitted as data with
            ``message`` set from ``wrapperError`` (``on_error = "emit"``), or fails the
            packet with ``WrapperExecError`` (``on_error = "raise"``).

    Parameters:
        path: the wrapper file (relative to the graph file).
        wrapper: the class name in that file (default ``Wrapper`` or the only one),
            or, from Python, the wrapper class itself (then ``path`` is not needed).
        config: passed to ``wrapperInit`` instead of the class attribute ``config``.
        shared: one wrapper instance for all replicas of the node (default), or one
            per replica.
        mode: ``once`` (default) calls ``wrapperOnceExec``; ``session`` maps each
            session of the flow to ``wrapperCreate`` / ``wrapperWrite`` +
            ``wrapperRead`` per packet / ``wrapperDestroy``.
        on_error: ``emit`` or ``raise`` (see the ``out`` port).

    Runs in a thread: every hook goes through ``ctx.run_blocking``.

    Example::

        [nodes.recognise]
        unit = "wrapper"
        path = "wrapper.py"
        replicas = 8
    """

    name = "wrapper"
    request_in: Input[object] = Input("in", object)
    response_out: Output[Response] = Output("out", Response)

    def __init__(
        self,
        *,
        path: str | None = None,
        wrapper: str | type[WrapperBase] | None = None,
        config: Mapping[str, Any] | None = None,
        shared: bool = True,
        mode: Mode = "once",
        on_error: Literal["emit", "raise"] = "emit",
    ) -> None:
        if path is None and not isinstance(wrapper, type):
            msg = "wrapper: give path= (the wrapper file) or, from Python, wrapper=<class>"
            raise UnitConfigError(msg)
        if isinstance(wrapper, type) and not issubclass(wrapper, WrapperBase):
            msg = f"wrapper: {wrapper.__qualname__} is not a WrapperBase subclass"
            raise UnitConfigError(msg)
        if mode not in ("once", "session"):
            msg = f"wrapper: mode must be 'once' or 'session', got {mode!r}"
            raise UnitConfigError(msg)
        if on_error not in ("emit", "raise"):
            msg = f"wrapper: on_error must be 'emit' or 'raise', got {on_error!r}"
            raise UnitConfigError(msg)
        self._path, self._wrapper, self._shared = path, wrapper, shared
        self._config = dict(config) if config is not None else None
        self._mode, self._on_error = mode, on_error
        self._instance: WrapperBase | None = None
        self._key: tuple[Any, ...] = ()
        self._sessions: dict[Any, _Session] = {}

    async def open(self, ctx: Context) -> None:
        """Load the wrapper class and init the (shared) instance on the node's thread."""
        cls = await ctx.run_blocking(self._load_class, ctx)
        if self._mode == "session" and not cls.supports_sessions():
            msg = (
                f"node {ctx.node!r}: mode='session' needs the session hooks "
                f"wrapperCreate/Write/Read/Destroy, which {cls.__name__} does not define"
            )
            raise UnitConfigError(msg)
        self._key = (
            cls,
            ctx.node,
            repr(sorted((self._config or {}).items())),
            None if self._shared else ctx.replica,
        )
        self._instance = await ctx.run_blocking(_acquire, self._key, cls, self._config)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Run one request through the wrapper on the node's thread and emit the result."""
        if isinstance(packet.data, SessionCall):
            response = await ctx.run_blocking(self._session_call, packet.data)
        elif self._mode == "session":
            response = await ctx.run_blocking(self._session_step, packet.session, packet.data)
        else:
            response = await ctx.run_blocking(self._exec_once, packet.data)
        await ctx.emit(self.response_out, packet.replace(response))

    async def close(self, ctx: Context) -> None:
        """Destroy open sessions, then fini the instance when its last user closes."""
        if self._instance is None:
            return
        try:
            for sid in list(self._sessions):
                await ctx.run_blocking(self._destroy, sid)
        finally:
            self._instance = None
            await ctx.run_blocking(_release, self._key)

    # -- on the executor thread ------------------------------------------------------

    def _load_class(self, ctx: Context) -> type[WrapperBase]:
        if isinstance(self._wrapper, type):
            return self._wrapper
        assert self._path is not None
        return load_wrapper(ctx.resolve_path(self._path), self._wrapper)

    def _exec_once(self, data: Any) -> Response:
        wrapper = self._require()
        if isinstance(data, Mapping) and isinstance(data.get("payload"), DataListCls):
            params, req = dict(data.get("parameter") or {}), data["payload"]  # validated
        else:
            params, req = wrapper.check_request(*_split(type(wrapper), data))
        return self._checked(wrapper, wrapper.exec(params, req), "wrapperOnceExec")

    def _session_step(self, sid: Any, data: Any) -> Response:
        wrapper = self._require()
        parameter, payload = _split(type(wrapper), data)
        session = self._sessions.get(sid)
        if session is None:
            params = check_params(type(wrapper).param_fields(), parameter)
            created = call_hook(wrapper, "wrapperCreate", params, str(sid))
            if isinstance(created, SessionCreateResponse):
                if created.error_code:
                    self._fail(wrapper, created.error_code, "wrapperCreate")
                created = created.handle
            session = self._sessions[sid] = _Session(created)
        status = data.get("status") if isinstance(data, Mapping) else None
        status = (
            status
            if isinstance(status, int)
            else (DataBegin if session.chunks == 0 else DataContinue)
        )
        session.chunks += 1
        req = check_payload(type(wrapper).body_fields(), payload, status=status)
        code = call_hook(wrapper, "wrapperWrite", session.handle, req, str(sid))
        if code:
            self._fail(wrapper, int(code), "wrapperWrite")
        response = call_hook(wrapper, "wrapperRead", session.handle, str(sid))
        if not isinstance(response, Response):
            msg = f"{type(wrapper).__name__}.wrapperRead must return a Response"
            raise TypeError(msg)
        ended = status == DataEnd or any(item.status == DataEnd for item in response.list)
        if ended:
            self._destroy(sid)
        return self._checked(wrapper, response, "wrapperRead")

    def _session_call(self, call: SessionCall) -> Response:
        if not self._shared:
            msg = "session calls need a node with shared = true (one wrapper instance)"
            raise UnitConfigError(msg)
        wrapper = self._require()
        sessions = _shared[self._key].sessions
        if call.hook == "create":
            created = call_hook(wrapper, "wrapperCreate", call.parameter, call.sid)
            if isinstance(created, SessionCreateResponse):
                if created.error_code:
                    self._fail(wrapper, created.error_code, "wrapperCreate")
                created = created.handle
            sessions[call.sid] = created
            return Response()
        if call.hook == "destroy":
            if call.sid in sessions:
                call_hook(wrapper, "wrapperDestroy", sessions.pop(call.sid))
            return Response()
        handle = sessions[call.sid]
        req = check_payload(type(wrapper).body_fields(), call.payload, status=call.status)
        code = call_hook(wrapper, "wrapperWrite", handle, req, call.sid)
        if code:
            self._fail(wrapper, int(code), "wrapperWrite")
        response = call_hook(wrapper, "wrapperRead", handle, call.sid)
        if not isinstance(response, Response):
            msg = f"{type(wrapper).__name__}.wrapperRead must return a Response"
            raise TypeError(msg)
        if response.error_code:
            self._fail(wrapper, response.error_code, "wrapperRead")
        return response

    def _destroy(self, sid: Any) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None and self._instance is not None:
            call_hook(self._instance, "wrapperDestroy", session.handle)

    def _checked(self, wrapper: WrapperBase, response: Response, hook: str) -> Response:
        if response.error_code:
            response.message = wrapper.error_message(response.error_code)
            if self._on_error == "raise":
                raise WrapperExecError(response.error_code, response.message, hook=hook)
        return response

    def _fail(self, wrapper: WrapperBase, code: int, hook: str) -> None:
        raise WrapperExecError(code, wrapper.error_message(code), hook=hook)

    def _require(self) -> WrapperBase:
        if self._instance is None:
            msg = "wrapper unit used before open() or after close()"
            raise RuntimeError(msg)
        return self._instance


@dataclass(frozen=True)
class SessionCall:
    """One call of a wrapper's session hooks, carried by a packet (``GET /v1/stream``).

    ``create`` calls ``wrapperCreate(parameter, sid)`` with parameters already checked
    and keeps the handle under ``sid``; ``write`` calls ``wrapperWrite`` (with
    ``payload`` checked here, at ``status``) then ``wrapperRead`` and emits the read
    ``Response``; ``destroy`` calls ``wrapperDestroy`` once for a live ``sid`` (again:
    nothing). Handles live with the shared wrapper instance, so any replica of the
    node serves any call; an error code fails the packet with ``WrapperExecError``.
    """

    hook: Literal["create", "write", "destroy"]
    sid: str
    parameter: Mapping[str, Any] | None = None
    payload: Any = None
    status: int = DataContinue


@dataclass
class _Session:
    handle: Any
    chunks: int = 0


@dataclass
class _SharedWrapper:
    lock: threading.Lock
    instance: WrapperBase | None = None
    users: int = 0
    sessions: dict[str, Any] = field(default_factory=dict)


_registry_lock = threading.Lock()
_shared: dict[tuple[Any, ...], _SharedWrapper] = {}


def _acquire(
    key: tuple[Any, ...], cls: type[WrapperBase], config: Mapping[str, Any] | None
) -> WrapperBase:
    """Return the instance for ``key``, creating and initialising it on first use.

    Replicas of one node wait for the first one's ``wrapperInit``; other nodes do not
    (one lock per key).
    """
    with _registry_lock:
        entry = _shared.setdefault(key, _SharedWrapper(threading.Lock()))
        entry.users += 1
    try:
        with entry.lock:
            if entry.instance is None:
                instance = cls()
                instance.init(config)
                entry.instance = instance
            return entry.instance
    except BaseException:
        _release(key, fini=False)
        raise


def _release(key: tuple[Any, ...], *, fini: bool = True) -> None:
    """Drop one user of ``key``'s instance; the last one calls ``wrapperFini``."""
    with _registry_lock:
        entry = _shared.get(key)
        if entry is None:
            return
        entry.users -= 1
        if entry.users > 0:
            return
        del _shared[key]
    with entry.lock:
        if fini and entry.instance is not None:
            for handle in entry.sessions.values():
                call_hook(entry.instance, "wrapperDestroy", handle)
            entry.sessions.clear()
            entry.instance.fini()
        entry.instance = None


def _split(cls: type[WrapperBase], data: Any) -> tuple[Any, Any]:
    """``(parameter, payload)`` from a packet payload (see the ``in`` port)."""
    if isinstance(data, Mapping) and set(data) <= {"parameter", "payload", "status"} and data:
        return data.get("parameter"), data.get("payload")
    bodies = cls.body_fields()
    if len(bodies) == 1:
        return None, {bodies[0].key: data}
    msg = (
        f"{cls.__name__} takes {{'parameter': ..., 'payload': ...}} packets (it has "
        f"{len(bodies)} body fields), got {type(data).__name__}"
    )
    raise WrapperRequestError(msg, reason="body")
