"""The aiohttp application behind ``actorflow serve``.

Endpoints: ``POST /v1/infer``, ``GET /v1/stream`` (WebSocket), ``GET /v1/schema``,
``GET /metrics``, ``GET /healthz``, ``GET /readyz``.

Guarantees:

* every request is one session and receives exactly its own results;
* admission never queues without bound: past ``max_sessions`` concurrent sessions, or
  when the graph's input edges are full, the answer is 429 with ``Retry-After``;
* bodies past ``max_body`` bytes get 413 (JSON and multipart alike);
* a client that disconnects aborts its session (work counted as cancelled);
* on shutdown, new requests get 503 while the ones in flight finish, within the
  runner's ``shutdown_timeout``; WebSocket clients are closed with 1001 (going away);
* the server never accepts a graph document over HTTP.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from actorflow.errors import FlowStateError, SessionClosed
from actorflow.integrations.aiohttp import (
    ADMISSION,
    FLOW,
    Admission,
    ClientGone,
    Overloaded,
    attach,
    results_to_json,
    run_session,
)
from actorflow.runtime import Flow
from actorflow.serve._codec import (
    BadRequest,
    OutputOptions,
    decode_body,
    decode_image,
    decode_json,
    encode_value,
    output_options,
    port_kind,
)
from actorflow.serve._metrics import ServerMetrics
from actorflow.serve._mux import Multiplexer
from actorflow.serve._schema import openapi, port_types

logger = structlog.get_logger(__name__)

DEFAULT_MAX_BODY = 8 * 1024 * 1024
"""Default request body limit (8 MiB: a few encoded images)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _State:
    """Per-app serving state (kept under one AppKey)."""

    def __init__(self, flow: Flow, *, max_body: int, retry_after: float) -> None:
        self.flow = flow
        self.max_body = max_body
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
    max_body: int = DEFAULT_MAX_BODY,
    max_sessions: int = 64,
    retry_after: float = 1.0,
    shared_session: bool | None = None,
) -> web.Application:
    """An ``aiohttp`` app serving ``flow`` (started with the app, stopped at cleanup).

    Args:
        flow: a flow with a graph (not yet running).
        max_body: request body limit in bytes (``client_max_size``; multipart counted too).
        max_sessions: concurrent sessions (HTTP requests plus WebSocket connections).
        retry_after: seconds suggested in ``Retry-After`` when rejecting.
        shared_session: send ``/v1/infer`` requests through one shared session
            (``Multiplexer``) so that they batch together; ``None`` decides: on when
            the graph is eligible and some node has ``batch_size > 1``.
    """
    app = web.Application(client_max_size=max_body, middlewares=[_errors])
    state = _State(flow, max_body=max_body, retry_after=retry_after)
    state.shared_session = shared_session
    app[STATE] = state
    attach(app, flow, max_sessions=max_sessions, retry_after=retry_after)
    app.on_startup.append(_describe)
    app.cleanup_ctx.append(_mux_lifetime)  # after the flow's: starts after, stops before
    app.on_shutdown.append(_shutdown)
    app.router.add_post("/v1/infer", infer)
    app.router.add_get("/v1/stream", stream)
    app.router.add_get("/v1/schema", schema)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def _describe(app: web.Application) -> None:
    state = app[STATE]
    graph = state.flow.graph
    if graph is None:
        return
    inputs, _ = port_types(graph)
    state.kinds = {port: port_kind(t) for port, t in inputs.items()}
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


def _problem(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map known failures to status codes; record latency; never leak tracebacks."""
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
        raise
    except BadRequest as exc:
        status = 400
        return _problem(400, str(exc))
    except Overloaded as exc:
        status = 429
        state.metrics.rejected.labels("sessions" if "sessions" in exc.reason else "full").inc()
        return _problem(429, str(exc), **{"Retry-After": f"{max(1, round(exc.retry_after))}"})
    except ClientGone:
        status = 499
        return web.Response(status=499)
    except (ConnectionError, SessionClosed, FlowStateError) as exc:  # the flow is not running
        status = 503
        retry = f"{max(1, round(state.retry_after))}"
        return _problem(503, f"flow not running: {exc}", **{"Retry-After": retry})
    except Exception:
        logger.exception("request_failed", path=endpoint)
        return _problem(500, "internal error (see the server log)")
    finally:
        if endpoint in ("/v1/infer", "/v1/stream"):
            state.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
            state.metrics.requests.labels(endpoint, str(status)).inc()


def _refuse_when_draining(state: _State) -> None:
    if state.draining:
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "server shutting down"}),
            content_type="application/json",
            headers={"Retry-After": f"{max(1, round(state.retry_after))}"},
        )


async def infer(request: web.Request) -> web.Response:
    """``POST /v1/infer``: JSON (base64 images) or multipart; one request, one session."""
    state = request.app[STATE]
    _refuse_when_draining(state)
    if request.content_length is not None and request.content_length > state.max_body:
        raise web.HTTPRequestEntityTooLarge(
            max_size=state.max_body, actual_size=request.content_length
        )
    options = output_options(request)
    items = await decode_body(request, state.kinds, state.max_body)
    state.metrics.active.inc()
    try:
        if state.mux is not None:
            with request.app[ADMISSION].slot():
                results = await state.mux.infer(items)
        else:
            results = await run_session(request, items, retry_after=state.retry_after)
    finally:
        state.metrics.active.dec()
    return web.json_response(
        results_to_json(results, convert=partial(encode_value, options=options))
    )


async def stream(request: web.Request) -> web.WebSocketResponse:
    """``GET /v1/stream``: one session per connection; frames in, results out.

    Text frames are ``{"inputs": {port: value}}``; binary frames go to the graph's only
    input port. ``{"end": true}`` ends the input: the remaining results arrive, then
    ``{"end": true}`` and a normal close. Results are ``{"port", "seq", "lineage",
    "data"}`` or ``{"port", "seq", "error"}``.
    """
    state = request.app[STATE]
    _refuse_when_draining(state)
    admission: Admission = request.app[ADMISSION]
    with admission.slot():
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=state.max_body)
        await ws.prepare(request)
        state.sockets.add(ws)
        state.metrics.active.inc()
        session = request.app[FLOW].session()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_write_results, ws, session, output_options(request))
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
    async for msg in ws:
        try:
            if msg.type is WSMsgType.BINARY:
                if single is None:
                    msg_ = "binary frames need a graph with exactly one input port"
                    raise BadRequest(msg_)
                items = [(single, _binary(msg.data, state.kinds[single]))]
            elif msg.type is WSMsgType.TEXT:
                doc = json.loads(msg.data)
                if isinstance(doc, dict) and doc.get("end"):
                    await session.close()
                    return
                items = decode_json(doc, state.kinds)
            else:
                continue
        except ValueError as exc:  # BadRequest and JSON errors: report, keep the stream
            await ws.send_json({"error": str(exc)})
            continue
        for port, data in items:
            await session.send(port, data)  # waits while the graph is full: backpressure


def _binary(data: bytes, kind: str) -> Any:
    if kind == "image":
        return decode_image(data, where="binary frame")
    if kind == "bytes":
        return data
    return json.loads(data)


async def _write_results(ws: web.WebSocketResponse, session: Any, options: OutputOptions) -> None:
    async for r in session:
        if ws.closed:
            break
        if r.error is not None:
            await ws.send_json(
                {
                    "port": r.port,
                    "seq": r.seq,
                    "lineage": list(r.lineage),
                    "node": getattr(r.error, "node", None),
                    "error": type(r.error.__cause__ or r.error).__name__,
                }
            )
        else:
            await ws.send_json(
                {
                    "port": r.port,
                    "seq": r.seq,
                    "lineage": list(r.lineage),
                    "data": encode_value(r.data, options),
                }
            )
    if not ws.closed:
        await ws.send_json({"end": True})
        await ws.close()


async def schema(request: web.Request) -> web.Response:
    """``GET /v1/schema``: the OpenAPI document generated from the graph's ports."""
    return web.json_response(request.app[STATE].schema)


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
    """``GET /healthz``: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 while the flow runs and the server is not draining."""
    state = request.app[STATE]
    flow_state = state.flow.state
    if flow_state == "running" and not state.draining:
        return web.json_response({"status": "ready", "flow": flow_state})
    return web.json_response(
        {"status": "not ready", "flow": flow_state, "draining": state.draining}, status=503
    )
