"""Run a flow inside an ``aiohttp.web.Application`` and turn requests into sessions.

::

    app = web.Application()
    attach(app, Flow("graphs/detect_faces.toml"))  # started at startup, stopped at cleanup

    async def detect(request: web.Request) -> web.Response:
        image = decode(await request.read())        # yours: bytes to a BGR array
        try:
            results = await run_session(request, {"input": image})
        except Overloaded as exc:
            raise web.HTTPTooManyRequests(headers={"Retry-After": "1"}) from exc
        return web.json_response(results_to_json(results))

(docs/how-to/embed-in-aiohttp.md has the whole program, ``ClientGone`` included.)

Guarantees:

* the flow starts before the app serves its first request and is stopped (drained for
  the flow's grace period, then cancelled) when the app cleans up;
* a flow that fails (a node past its restart intensity) is rebuilt and restarted with
  backoff (``keep_running``, OTP's next level up); while it is down its ``state`` is
  ``failed``, which health endpoints report. Past the flow-level intensity
  ``on_give_up`` is called (``actorflow serve`` then exits non-zero);
* one call of ``run_session`` is one session: it receives exactly its own results;
* admission never queues without bound: with ``nowait=True`` a full graph raises
  ``Overloaded`` (answer 429), and ``Admission`` caps concurrent sessions;
* a client that disconnects (or a cancelled handler) aborts its session: the work still
  queued for it is cancelled and counted as cancelled in ``flow.statistics()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import anyio
import structlog
from aiohttp import web

from actorflow.errors import ActorFlowError, FlowFailed
from actorflow.runtime import FLOW_RESTARTS, Flow, RestartPolicy, keep_running

__all__ = [
    "ADMISSION",
    "FLOW",
    "Admission",
    "ClientGone",
    "Overloaded",
    "attach",
    "failure",
    "results_to_json",
    "run_session",
]

logger = structlog.get_logger(__name__)

FLOW = web.AppKey("actorflow.flow", Flow)
"""Where ``attach`` keeps the flow: ``request.app[FLOW]``."""


class Overloaded(ActorFlowError):
    """The flow or the session limit is full; answer 429 with ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: float = 1.0) -> None:
        self.reason, self.retry_after = reason, retry_after
        super().__init__(f"overloaded: {reason}; retry after {retry_after:g} s")


class ClientGone(ActorFlowError, ConnectionResetError):
    """The client disconnected before its results were ready; its session was aborted."""


class Admission:
    """Caps concurrent sessions; ``acquire`` fails fast instead of queueing."""

    def __init__(self, max_sessions: int, *, retry_after: float = 1.0) -> None:
        if max_sessions < 1:
            msg = f"max_sessions must be at least 1, got {max_sessions}"
            raise ValueError(msg)
        self.max_sessions, self.retry_after = max_sessions, retry_after
        self.active = 0
        self.rejected = 0

    @contextlib.contextmanager
    def slot(self) -> Any:
        """Hold one session slot; raises ``Overloaded`` when all are taken."""
        if self.active >= self.max_sessions:
            self.rejected += 1
            reason = f"{self.active} sessions running (limit {self.max_sessions})"
            raise Overloaded(reason, self.retry_after)
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


ADMISSION = web.AppKey("actorflow.admission", Admission)
"""Optional session cap used by ``run_session`` when present in the app."""


def attach(
    app: web.Application,
    flow: Flow,
    *,
    max_sessions: int | None = None,
    retry_after: float = 1.0,
    restart: RestartPolicy | None = FLOW_RESTARTS,
    on_give_up: Callable[[FlowFailed], None] | None = None,
) -> None:
    """Run ``flow`` for as long as ``app`` runs: started at startup, stopped at cleanup.

    Args:
        app: the application.
        flow: a flow with a graph, not started.
        max_sessions: caps concurrent ``run_session`` calls (excess requests get
            ``Overloaded``).
        retry_after: seconds suggested to rejected clients.
        restart: how often a failed flow is rebuilt and restarted (``None``: never).
        on_give_up: called with the last failure when the flow failed more often than
            ``restart`` allows (the flow then stays failed).
    """
    app[FLOW] = flow
    app[_KEEPER] = _Keeper(restart, on_give_up)
    if max_sessions is not None:
        app[ADMISSION] = Admission(max_sessions, retry_after=retry_after)
    app.cleanup_ctx.append(_flow_lifetime)


class _Keeper:
    """The flow-level restart settings of one app."""

    def __init__(
        self, policy: RestartPolicy | None, on_give_up: Callable[[FlowFailed], None] | None
    ) -> None:
        self.policy, self.on_give_up = policy, on_give_up


_KEEPER = web.AppKey("actorflow.keeper", _Keeper)


async def _flow_lifetime(app: web.Application) -> AsyncIterator[None]:
    flow, keeper = app[FLOW], app[_KEEPER]
    await flow.run_async()
    logger.info("flow_attached", flow=getattr(flow, "name", None))
    stopping = anyio.Event()
    watcher = None
    if keeper.policy is not None:
        watcher = asyncio.create_task(
            _keep(flow, keeper, stopping), name=f"actorflow-{flow.name}-keeper"
        )
    try:
        yield
    finally:
        stopping.set()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await flow.stop()
        await flow.wait()
        if flow.exception is not None and watcher is None:  # into aiohttp's cleanup: logged
            raise flow.exception  # (with a keeper, the failure went to on_give_up and the log)


async def _keep(flow: Flow, keeper: _Keeper, stopping: anyio.Event) -> None:
    assert keeper.policy is not None
    try:
        await keep_running(flow, keeper.policy, stopping=stopping)
    except FlowFailed as failure:
        if keeper.on_give_up is not None:
            keeper.on_give_up(failure)


def _items(inputs: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    if isinstance(inputs, Mapping):
        return list(inputs.items())
    return list(inputs)


async def run_session(
    request: web.Request | None,
    inputs: Mapping[str, Any] | Iterable[tuple[str, Any]],
    *,
    flow: Flow | None = None,
    nowait: bool = True,
    retry_after: float = 1.0,
    disconnect_poll: float = 0.05,
) -> list[Any]:
    """Send ``inputs`` as one session and return that session's results, in order.

    Args:
        request: the request being served; its app holds the flow (``FLOW``) and an
            optional ``Admission``. ``None`` is allowed when ``flow`` is given.
        inputs: ``{port: payload}`` or ``(port, payload)`` pairs, sent in order.
        flow: the flow to use instead of ``request.app[FLOW]``.
        nowait: fail with ``Overloaded`` when the graph's input edges are full, instead
            of waiting (admission control; never an unbounded queue).
        retry_after: seconds suggested to a rejected client.
        disconnect_poll: how often the client connection is checked while waiting.

    Returns:
        The session's ``Result`` objects (``.port``, ``.data``, ``.seq``, ``.error``).

    Raises:
        Overloaded: the flow or the session limit is full; nothing was processed.
        ClientGone: the client disconnected; the session was aborted.
    """
    if flow is None:
        if request is None:
            msg = "run_session needs a request whose app holds the flow, or flow="
            raise TypeError(msg)
        flow = request.app[FLOW]
    admission = request.app.get(ADMISSION) if request is not None else None
    with admission.slot() if admission is not None else contextlib.nullcontext():
        return await _run(flow, request, _items(inputs), nowait, retry_after, disconnect_poll)


async def _run(
    flow: Flow,
    request: web.Request | None,
    items: list[tuple[str, Any]],
    nowait: bool,
    retry_after: float,
    poll: float,
) -> list[Any]:
    session = flow.session()
    results: list[Any] = []
    done = False
    try:
        for port, data in items:
            if nowait:
                try:
                    session.send_nowait(port, data)
                except anyio.WouldBlock:
                    reason = f"input {port!r} of the graph is full"
                    raise Overloaded(reason, retry_after) from None
            else:
                await session.send(port, data)
        await session.close()
        async with anyio.create_task_group() as tg:
            if request is not None:
                tg.start_soon(_watch, request, session, poll, tg.cancel_scope)
            results.extend([result async for result in session])
            tg.cancel_scope.cancel()
        if request is not None and _gone(request):
            msg = "client disconnected; session aborted"
            raise ClientGone(msg)
        done = True
        return results
    finally:
        if not done:
            with anyio.CancelScope(shield=True):
                await session.abort()


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _watch(request: web.Request, session: Any, poll: float, scope: anyio.CancelScope) -> None:
    """Abort ``session`` once the client's connection closes, and stop waiting for it."""
    # aiohttp offers no disconnect event unless handlers are cancelled: poll the transport
    while not _gone(request):  # noqa: ASYNC110
        await asyncio.sleep(poll)
    logger.info("client_disconnected", session=getattr(session, "id", None))
    await session.abort()
    scope.cancel()  # the stream ends when the abort reaches the outputs; do not wait


def results_to_json(results: Iterable[Any], *, convert: Any = None) -> dict[str, Any]:
    """``{"outputs": {port: [data, ...]}, "errors": [...]}`` from a session's results.

    ``convert`` turns payloads into JSON values (default: arrays to lists, bytes to
    base64). Error entries are ``failure(result)``: they never carry tracebacks.
    """
    if convert is None:
        from actorflow.flowunits.sinks._delivery import jsonable as convert
    outputs: dict[str, list[Any]] = {}
    errors: list[dict[str, Any]] = []
    for r in results:
        if r.error is not None:
            errors.append(failure(r))
        else:
            outputs.setdefault(r.port, []).append(convert(r.data))
    return {"outputs": outputs, "errors": errors}


MAX_MESSAGE = 1000
"""Characters of an exception's message kept in an error entry."""


def failure(result: Any) -> dict[str, Any]:
    """A failed result as JSON, without traceback.

    ``{"port", "seq", "lineage", "node", "type", "message", "error"}``: ``type`` and
    ``message`` are the root cause's (the message cut at ``MAX_MESSAGE``), ``error``
    joins them.
    """
    cause = result.error.__cause__ or result.error
    message = str(cause)
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    kind = type(cause).__name__
    return {
        "port": result.port,
        "seq": result.seq,
        "lineage": list(result.lineage),
        "node": getattr(result.error, "node", None),
        "type": kind,
        "message": message,
        "error": f"{kind}: {message}" if message else kind,
    }
