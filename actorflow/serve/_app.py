"""The aiohttp application behind ``actorflow serve``.

Endpoints: ``POST /v1/infer``, ``GET /v1/stream`` (WebSocket), ``GET /v1/schema``,
``GET /metrics``, ``GET /healthz``, ``GET /readyz``, and the live page under
``GET /dashboard`` (``actorflow.dashboard``).

Guarantees:

* every request is one session and receives exactly its own results;
* admission never queues without bound: past ``max_sessions`` concurrent sessions, or
  when the graph's input edges are full, the answer is 429 with ``Retry-After``;
* every error answer is a JSON body naming the problem (``serve/_errors.py``); a
  request whose items failed in a unit is answered 500 with each failure's node, type
  and message next to the outputs that were produced;
* every limit of ``Limits`` is enforced (body size, multipart parts, JSON depth, body
  read time, WebSocket message size and send buffer);
* a WebSocket client that does not read its results is closed (1008, with a reason)
  once ``ws_send_buffer`` bytes wait for it: it never holds back other sessions;
* a client that disconnects aborts its session (work counted as cancelled);
* on shutdown, new requests get 503 while the ones in flight finish, within the
  runner's ``shutdown_timeout``; WebSocket clients are closed with 1001 (going away);
* the server never accepts a graph document over HTTP.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from actorflow.dashboard import DASHBOARD, mount
from actorflow.dashboard import collector as dashboard_collector
from actorflow.errors import FlowFailed, FlowStateError, InputTypeError, SessionClosed
from actorflow.integrations.aiohttp import (
    ADMISSION,
    FLOW,
    Admission,
    ClientGone,
    Overloaded,
    attach,
    failure,
    results_to_json,
    run_session,
)
from actorflow.runtime import FLOW_RESTARTS, Flow, RestartPolicy
from actorflow.serve._codec import (
    RAW_IMAGE_TYPES,
    OutputOptions,
    decode_image,
    decode_json,
    decode_multipart,
    decode_raw,
    encode_value,
    output_options,
    port_kind,
)
from actorflow.serve._errors import (
    BadRequest,
    body,
    describe_http,
    dumps,
    from_bad_request,
    json_response,
    loads,
    problem,
)
from actorflow.serve._limits import Limits
from actorflow.serve._metrics import ServerMetrics
from actorflow.serve._mux import Multiplexer
from actorflow.serve._outbox import Outbox, send_outbox
from actorflow.serve._ratelog import RateLimitedLog
from actorflow.serve._schema import openapi, port_types
from actorflow.serve._streams import add_routes

logger = structlog.get_logger(__name__)
quiet_logger = RateLimitedLog(logger)

SLOW_CLIENT = b"results not read: send buffer full"
"""Close reason (with 1008) for a WebSocket client that does not read its results."""
DEFAULT_MAX_BODY = Limits().max_body
"""Default request body limit (8 MiB: a few encoded images)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoints:
    """What a served graph answers with instead of the generated defaults.

    A served wrapper (``serve/_wrapper.py``) is a one-node graph whose ``/v1/infer`` and
    ``/v1/stream`` speak aiges's request and response shapes; everything else (limits,
    admission, middleware, health, metrics, shutdown) is this module's.

    Attributes:
        infer: the ``POST /v1/infer`` handler.
        stream: the ``GET /v1/stream`` handler, or ``None`` for no such route.
        schema: the OpenAPI document served at ``/v1/schema``.
        routes: further ``GET`` routes, by path.
    """

    infer: Handler
    stream: Handler | None
    schema: dict[str, Any]
    routes: Mapping[str, Handler] = field(default_factory=dict)


class _State:
    """Per-app serving state (kept under one AppKey)."""

    def __init__(self, flow: Flow, *, limits: Limits, retry_after: float) -> None:
        self.flow = flow
        self.limits = limits
        self.max_body = limits.max_body
        self.retry_after = retry_after
        self.draining = False
        self.kinds: dict[str, str] = {}
        self.schema: dict[str, Any] = {}
        self.metrics = ServerMetrics(flow.statistics)
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.mux: Multiplexer | None = None
        self.shared_session: bool | None = None


STATE = web.AppKey("actorflow.serve.state", _State)


def build_app(
    flow: Flow,
    *,
    max_body: int | None = None,
    max_sessions: int = 64,
    retry_after: float = 1.0,
    shared_session: bool | None = None,
    restart: RestartPolicy | None = FLOW_RESTARTS,
    on_give_up: Callable[[FlowFailed], None] | None = None,
    limits: Limits | None = None,
    streams: bool = False,
    dashboard: bool = True,
    endpoints: Endpoints | None = None,
) -> web.Application:
    """An ``aiohttp`` app serving ``flow`` (started with the app, stopped at cleanup).

    Args:
        flow: a flow with a graph (not yet running).
        max_body: request body limit in bytes (``client_max_size``; multipart counted
            too); overrides ``limits.max_body``.
        max_sessions: concurrent sessions (HTTP requests plus WebSocket connections).
        retry_after: seconds suggested in ``Retry-After`` when rejecting.
        shared_session: send ``/v1/infer`` requests through one shared session
            (``Multiplexer``) so that they batch together; ``None`` decides: on when
            the graph is eligible and some node has ``batch_size > 1``.
        restart: how often a failed flow is rebuilt and restarted (``None``: never).
        on_give_up: called when the flow failed more often than the flow-level
            restart policy allows (``actorflow serve`` shuts down and exits non-zero).
        limits: every other resource limit (``Limits`` defaults when ``None``).
        streams: serve ``/v1/streams`` (add and remove sources while running: clients
            then name files and URLs the server opens, so only for trusted clients).
        dashboard: serve the live page at ``/dashboard`` (its frames come from the
            graph's ``dashboard`` sinks, hub ``default``).
        endpoints: handlers and schema replacing the graph's own (a served wrapper).
    """
    limits = (limits or Limits()).replace(max_body=max_body)
    app = web.Application(client_max_size=limits.max_body, middlewares=[_errors])
    state = _State(flow, limits=limits, retry_after=retry_after)
    state.shared_session = shared_session
    app[STATE] = state
    attach(
        app,
        flow,
        max_sessions=max_sessions,
        retry_after=retry_after,
        restart=restart,
        on_give_up=on_give_up,
    )
    app.on_startup.append(_describe)
    app.cleanup_ctx.append(_mux_lifetime)  # after the flow's: starts after, stops before
    app.on_shutdown.append(_shutdown)
    if streams:
        add_routes(app, flow)
    if endpoints is None:
        app.router.add_post("/v1/infer", infer)
        app.router.add_get("/v1/stream", stream)
    else:
        state.schema = endpoints.schema
        app.router.add_post("/v1/infer", endpoints.infer)
        if endpoints.stream is not None:
            app.router.add_get("/v1/stream", endpoints.stream)
        for path, handler in endpoints.routes.items():
            app.router.add_get(path, handler)
    app.router.add_get("/v1/schema", schema)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if dashboard:
        mount(app, flow)
        state.metrics.registry.register(dashboard_collector(app[DASHBOARD].hub))
    return app


async def _describe(app: web.Application) -> None:
    state = app[STATE]
    graph = state.flow.graph
    if graph is None:
        return
    inputs, _ = port_types(graph)
    state.kinds = {port: port_kind(t) for port, t in inputs.items()}
    if not state.schema:  # not given with Endpoints
        state.schema = openapi(graph)


async def _mux_lifetime(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    graph = state.flow.graph
    use = state.shared_session
    if use is None:
        use = graph is not None and any(n.batch_size > 1 for n in graph.nodes)
    if use and graph is not None and Multiplexer.eligible(graph):
        state.mux = Multiplexer(state.flow, graph.inputs[0], retry_after=state.retry_after)
        await state.mux.start()
    try:
        yield
    finally:
        if state.mux is not None:
            await state.mux.stop()


async def _shutdown(app: web.Application) -> None:
    state = app[STATE]
    state.draining = True
    for ws in list(state.sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map known failures to JSON error bodies; record latency; never leak tracebacks."""
    state = request.app[STATE]
    endpoint = request.path
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        if status < 400:
            raise
        return http_problem(exc)
    except BadRequest as exc:
        status = exc.status
        return from_bad_request(exc)
    except Overloaded as exc:
        status = 429
        state.metrics.rejected.labels("sessions" if "sessions" in exc.reason else "full").inc()
        retry = f"{max(1, round(exc.retry_after))}"
        return problem(429, str(exc), "overloaded", **{"Retry-After": retry})
    except InputTypeError as exc:  # a wrong-typed input: nothing of it entered the graph
        status = 400
        doc = body(400, str(exc), "type", exc.port)
        return json_response(
            {**doc, "expected": exc.expected, "received": exc.received}, status=400
        )
    except ClientGone:
        status = 499
        return web.Response(status=499)
    except (ConnectionError, SessionClosed, FlowStateError) as exc:  # the flow is not running
        status = 503
        retry = f"{max(1, round(state.retry_after))}"
        return problem(503, f"flow not running: {exc}", "not_running", **{"Retry-After": retry})
    except Exception:
        quiet_logger.exception("request_failed", path=endpoint)
        return problem(500, "internal error (see the server log)", "internal")
    finally:
        if endpoint in ("/v1/infer", "/v1/stream"):
            state.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
            state.metrics.requests.labels(endpoint, str(status)).inc()


def http_problem(exc: web.HTTPException) -> web.Response:
    """The JSON error body for an aiohttp ``HTTPException`` (413 from aiohttp included)."""
    message, reason, headers = describe_http(exc)
    return problem(exc.status, message, reason, **headers)


def refuse_when_draining(state: _State) -> None:
    """503 (``HTTPServiceUnavailable``, with ``Retry-After``) once shutdown began."""
    if state.draining:
        raise web.HTTPServiceUnavailable(
            text="server shutting down",
            headers={"Retry-After": f"{max(1, round(state.retry_after))}"},
        )


async def read_items(request: web.Request, state: _State) -> list[tuple[str, Any]]:
    """The request's ``(port, payload)`` items, within the body limits and read timeout.

    Raises:
        BadRequest: the body breaks a limit (413, 408) or is wrong (400).
    """
    limits = state.limits
    if request.content_length is not None and request.content_length > limits.max_body:
        msg = f"request body of {request.content_length} bytes exceeds {limits.max_body}"
        raise BadRequest(msg, reason="size", status=413)
    try:
        with anyio.fail_after(limits.body_timeout):
            if _is_raw(request.content_type, state.kinds):
                return await decode_raw(request, state.kinds, limits.max_body)
            if request.content_type.startswith("multipart/"):
                return await decode_multipart(
                    request,
                    state.kinds,
                    limits.max_body,
                    max_parts=limits.max_parts,
                    max_part=limits.max_part,
                )
            raw = await request.read()
    except TimeoutError:
        msg = f"request body not received within {limits.body_timeout:g} s"
        raise BadRequest(msg, reason="timeout", status=408) from None
    return decode_json(loads(raw, limits.max_json_depth), state.kinds)


def _is_raw(content_type: str, kinds: Mapping[str, str]) -> bool:
    """A raw body: an image type, or octet-stream for a graph that takes images or bytes.

    Clients that post JSON without a content type send ``application/octet-stream``;
    for a graph whose inputs are JSON values such a body is parsed as JSON.
    """
    if content_type.startswith("image/"):
        return True
    return content_type.startswith(RAW_IMAGE_TYPES) and any(
        kind in ("image", "bytes") for kind in kinds.values()
    )


def answer(results: list[Any], options: OutputOptions) -> web.Response:
    """200 with the outputs; 500 naming each failed item when any item failed.

    Images and detections are written as ``options`` say (``output_options``).
    """
    doc = results_to_json(results, convert=partial(encode_value, options=options))
    if not doc["errors"]:
        return json_response(doc)
    first = doc["errors"][0]
    doc.update(
        error=f"{len(doc['errors'])} item(s) failed; first: {first['error']} "
        f"(node {first['node']!r}, port {first['port']!r})",
        reason="unit_failed",
        status=500,
    )
    return json_response(doc, status=500)


async def infer(request: web.Request) -> web.Response:
    """``POST /v1/infer``: JSON (base64 images) or multipart; one request, one session."""
    state = request.app[STATE]
    refuse_when_draining(state)
    options = output_options(request)
    items = await read_items(request, state)
    state.metrics.active.inc()
    try:
        if state.mux is not None:
            with request.app[ADMISSION].slot():
                results = await state.mux.infer(items)
        else:
            results = await run_session(request, items, retry_after=state.retry_after)
    finally:
        state.metrics.active.dec()
    return answer(results, options)


async def stream(request: web.Request) -> web.WebSocketResponse:
    """``GET /v1/stream``: one session per connection; frames in, results out.

    Text frames are ``{"inputs": {port: value}}``; binary frames go to the graph's only
    input port. ``{"end": true}`` ends the input: the remaining results arrive, then
    ``{"end": true}`` and a normal close. Results are ``{"port", "seq", "lineage",
    "data"}`` or, for an item that failed, ``{"port", "seq", "lineage", "node", "type",
    "message", "error"}``. A frame the client got wrong is answered with the error
    body of ``/v1/infer`` and the stream goes on. A message past ``ws_max_message``
    closes the socket with 1009; a client that leaves ``ws_send_buffer`` bytes of
    results unread is closed with 1008 and its session aborted.
    """
    state = request.app[STATE]
    refuse_when_draining(state)
    admission: Admission = request.app[ADMISSION]
    with admission.slot():
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=state.limits.ws_message_cap())
        await ws.prepare(request)
        state.sockets.add(ws)
        state.metrics.active.inc()
        session = request.app[FLOW].session()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_write_results, ws, session, state, request, output_options(request))
                await _read_frames(ws, session, state)  # reads the socket while _write writes
                if ws.closed:
                    tg.cancel_scope.cancel()
        finally:
            state.metrics.active.dec()
            with anyio.CancelScope(shield=True):
                if not session.finished:
                    await session.abort()
                await ws.close()
    return ws


async def _read_frames(ws: web.WebSocketResponse, session: Any, state: _State) -> None:
    single = next(iter(state.kinds)) if len(state.kinds) == 1 else None
    depth = state.limits.max_json_depth
    async for msg in ws:
        try:
            if msg.type is WSMsgType.BINARY:
                if single is None:
                    msg_ = "binary frames need a graph with exactly one input port"
                    raise BadRequest(msg_)
                items = [(single, _binary(msg.data, state.kinds[single], depth))]
            elif msg.type is WSMsgType.TEXT:
                doc = loads(msg.data, depth, where="frame")
                if isinstance(doc, dict) and doc.get("end"):
                    await session.close()
                    return
                items = decode_json(doc, state.kinds)
            else:
                continue
        except BadRequest as exc:  # report, keep the stream
            await ws.send_str(dumps(body(exc.status, str(exc), exc.reason, exc.field)))
            continue
        try:
            for port, data in items:
                await session.send(port, data)  # waits while the graph is full: backpressure
        except InputTypeError as exc:  # nothing of the wrong item was sent: keep the stream
            await ws.send_str(dumps(body(400, str(exc), "type", exc.port)))
        except SessionClosed:  # aborted: the client stopped reading and was closed
            return


def _binary(data: bytes, kind: str, depth: int) -> Any:
    if kind == "image":
        return decode_image(data, where="binary frame")
    if kind == "bytes":
        return data
    return loads(data, depth, where="binary frame")


def _frame(r: Any, options: OutputOptions) -> dict[str, Any]:
    if r.error is not None:
        return failure(r)
    data = encode_value(r.data, options)
    return {"port": r.port, "seq": r.seq, "lineage": list(r.lineage), "data": data}


async def _write_results(
    ws: web.WebSocketResponse,
    session: Any,
    state: _State,
    request: web.Request,
    options: OutputOptions,
) -> None:
    """Move results from the session to the client without ever waiting on the client.

    Results are encoded into a per-connection ``Outbox`` that a second task sends; the
    session is always read at once, so its output nodes never wait on this socket.
    """
    outbox = Outbox(state.limits.ws_send_buffer)
    async with anyio.create_task_group() as tg:
        tg.start_soon(send_outbox, ws, outbox)
        async for r in session:
            if ws.closed:
                break
            if not outbox.put(dumps(_frame(r, options))):
                await _close_slow(ws, session, state, request, outbox)
                tg.cancel_scope.cancel()
                return
        outbox.finish()


async def _close_slow(
    ws: web.WebSocketResponse, session: Any, state: _State, request: web.Request, outbox: Outbox
) -> None:
    """Close a client that does not read: abort its session, count what it never got."""
    dropped = outbox.discard()
    state.metrics.slow_clients.inc()
    state.metrics.dropped_results.inc(dropped)
    quiet_logger.warning(
        "slow_client_closed", dropped=dropped, send_buffer=state.limits.ws_send_buffer
    )
    await session.abort()
    with anyio.move_on_after(1.0):  # a client that does not read may not read a close
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=SLOW_CLIENT)
    if request.transport is not None and not request.transport.is_closing():
        request.transport.abort()


async def schema(request: web.Request) -> web.Response:
    """``GET /v1/schema``: the OpenAPI document generated from the graph's ports."""
    return json_response(request.app[STATE].schema)


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text exposition."""
    body = request.app[STATE].metrics.exposition()
    return web.Response(
        body=body,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: 200 while the flow runs; 503 while it is down (failed, restarting).

    A flow that failed is rebuilt and restarted (``keep_running``); when that gives up,
    ``actorflow serve`` exits non-zero so an orchestrator restarts the process.
    """
    flow = request.app[STATE].flow
    if flow.state in ("running", "draining"):
        return web.json_response({"status": "ok", "flow": flow.state})
    failure = flow.exception
    doc = {"status": "unhealthy", "flow": flow.state}
    if failure is not None:
        doc["error"] = str(failure)
    return web.json_response(doc, status=503)


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 while the flow runs and the server is not draining."""
    state = request.app[STATE]
    flow_state = state.flow.state
    if flow_state == "running" and not state.draining:
        return web.json_response({"status": "ready", "flow": flow_state})
    return web.json_response(
        {"status": "not ready", "flow": flow_state, "draining": state.draining}, status=503
    )
