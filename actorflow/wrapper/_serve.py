"""Serving a wrapper over HTTP: what ``actorflow serve wrapper.py`` runs.

Endpoints (the same layout as a served graph):

* ``POST /v1/infer``: one request, validated against the declared fields, then one
  ``wrapperOnceExec`` on the wrapper's thread pool. JSON (``{"parameter": {...},
  "payload": {...}}``, binary values base64), ``multipart/form-data`` (parameters as
  fields, body data as parts) or, for a wrapper with one body field, the raw body
  with parameters in the query string.
* ``GET /v1/schema`` (OpenAPI 3.1), ``GET /v1/jsonschema``, ``GET /metrics``,
  ``GET /healthz``, ``GET /readyz``; ``GET /v1/stream`` (WebSocket) for wrappers
  with session hooks.

Guarantees:

* every error answer is the JSON body of ``actorflow serve`` (``error``, ``reason``,
  ``status``, ``field``) plus aiges's ``code`` and ``message``: a request that breaks
  a declaration gets 400 naming the field and the rule; a wrapper error code gets
  ``error_status`` (500) with the ``wrapperError`` text (reason ``wrapper_error``);
  an exception in a hook gets 500 with its type and message (reason ``unit_failed``;
  the traceback goes to the log);
* the limits of ``actorflow.serve.Limits`` hold here too (body size and read time,
  multipart parts, JSON depth, WebSocket message size); results are strict JSON
  (NaN and ±Infinity become ``null``);
* ``wrapperInit`` runs once before the first request is accepted (``/readyz`` says
  when), ``wrapperFini`` once at shutdown after the last exec;
* at most ``concurrency`` execs run at once, on threads ``actorflow-wrapper-<name>_<i>``;
  past ``concurrency + max_queue`` requests in flight the answer is 429 with
  ``Retry-After``; bodies past ``max_body`` bytes get 413;
* hooks never run on the event loop; body bytes are handed over without copies.

This is the only module of ``actorflow.wrapper`` that imports aiohttp.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import structlog
from aiohttp import BodyPartReader, web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from actorflow.serve._errors import BadRequest, describe_http, loads
from actorflow.serve._errors import dumps as _dumps
from actorflow.serve._limits import Limits
from actorflow.wrapper._base import WrapperBase
from actorflow.wrapper._dto import TYPE_NAMES, DataText, Response
from actorflow.wrapper._errors import WrapperExecError, WrapperRequestError
from actorflow.wrapper._load import load_wrapper
from actorflow.wrapper._schema import INFER_PATH, JSONSCHEMA_PATH, SCHEMA_PATH, wrapper_schema

if TYPE_CHECKING:
    from actorflow.runtime import Flow

logger = structlog.get_logger(__name__)

DEFAULT_CONCURRENCY = 32
"""Exec threads when the wrapper does not say (``concurrency``): sized for hooks that
wait on I/O or release the GIL; see docs/benchmarks.md "Wrapper serving"."""
DEFAULT_MAX_BODY = 64 * 1024 * 1024
"""Request body limit (64 MiB: audio and images, base64-inflated)."""
DEFAULT_LIMITS = Limits(
    max_body=DEFAULT_MAX_BODY, max_part=DEFAULT_MAX_BODY, ws_max_message=DEFAULT_MAX_BODY
)
"""``Limits`` of a served wrapper unless told otherwise (larger bodies than graphs)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _State:
    wrapper: WrapperBase
    config: Mapping[str, Any] | None
    concurrency: int
    max_queue: int
    retry_after: float
    error_status: int
    limits: Limits = DEFAULT_LIMITS
    pool: ThreadPoolExecutor | None = None
    flow: Flow | None = None
    ready: bool = False
    in_flight: int = 0
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    metrics: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)


STATE = web.AppKey("actorflow.wrapper.state", _State)


def build_app(
    path: str | Path | type[WrapperBase],
    *,
    wrapper: str | None = None,
    config: Mapping[str, Any] | None = None,
    concurrency: int | None = None,
    max_queue: int | None = None,
    max_body: int | None = None,
    max_sessions: int | None = None,
    retry_after: float = 1.0,
    error_status: int = 500,
    via: Literal["pool", "flow"] = "pool",
    allow_custom_code: bool = False,
    limits: Limits | None = None,
) -> web.Application:
    """Build the aiohttp application serving the wrapper in file ``path``.

    Args:
        path: the wrapper file (or, from Python, a wrapper class).
        wrapper: the class name in the file (default ``Wrapper`` or the only one).
        config: passed to ``wrapperInit`` instead of the class attribute ``config``.
        concurrency: exec threads (default: the class attribute ``concurrency``, else
            ``DEFAULT_CONCURRENCY``).
        max_queue: requests that may wait for a thread before 429 (default
            ``4 * concurrency``).
        max_body: the largest request body accepted, in bytes (413 past it); overrides
            ``limits.max_body``.
        max_sessions: cap on requests in flight (waiting or running); overrides
            ``concurrency + max_queue`` (the option ``actorflow serve`` passes).
        retry_after: seconds advertised in ``Retry-After`` with 429.
        error_status: HTTP status of responses carrying a wrapper error code.
        via: ``pool`` (default) runs validation, exec and encoding in one hop on a
            thread pool; ``flow`` runs the wrapper as a graph node (``WrapperUnit``,
            ``replicas = concurrency``), one flow session per request, without the
            WebSocket session endpoint. docs/benchmarks.md compares the two.
        allow_custom_code: accepted for ``actorflow serve``; a wrapper file is code the
            operator chose to run, so it changes nothing here.
        limits: resource limits (``DEFAULT_LIMITS`` when ``None``).

    Raises:
        WrapperLoadError: the file cannot be loaded (at build time, before binding).
    """
    del allow_custom_code
    if via not in ("pool", "flow"):
        msg = f"via must be 'pool' or 'flow', got {via!r}"
        raise ValueError(msg)
    cls = path if isinstance(path, type) else load_wrapper(path, wrapper)
    threads = concurrency or cls.concurrency or DEFAULT_CONCURRENCY
    if threads < 1:
        msg = f"concurrency must be at least 1, got {threads}"
        raise ValueError(msg)
    queue = max_queue if max_queue is not None else 4 * threads
    if max_sessions is not None:
        queue = max(0, max_sessions - threads)
    limits = (limits or DEFAULT_LIMITS).replace(max_body=max_body)
    state = _State(cls(), config, threads, queue, retry_after, error_status, limits)
    state.schema = wrapper_schema(cls)
    _make_metrics(state)
    app = web.Application(client_max_size=limits.max_body, middlewares=[_errors])
    app[STATE] = state
    if via == "flow":
        from actorflow.wrapper._serve_flow import flow_lifetime, make_flow

        state.flow = make_flow(cls, threads, config)
        app.cleanup_ctx.append(flow_lifetime)
    else:
        app.cleanup_ctx.append(_lifetime)
    app.router.add_post(INFER_PATH, infer)
    app.router.add_get(SCHEMA_PATH, openapi)
    app.router.add_get(JSONSCHEMA_PATH, jsonschema)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if cls.supports_sessions() and via == "pool":
        from actorflow.wrapper._stream import stream

        app.router.add_get("/v1/stream", stream)
    return app


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    """Init on startup (on the pool), fini at cleanup after the last exec."""
    state = app[STATE]
    name = type(state.wrapper).service_name()
    state.pool = ThreadPoolExecutor(
        state.concurrency, thread_name_prefix=f"actorflow-wrapper-{name}"
    )
    loop = asyncio.get_running_loop()
    initialised = False
    try:
        started = time.perf_counter()
        await loop.run_in_executor(state.pool, state.wrapper.init, state.config)
        initialised = state.ready = True
        logger.info(
            "wrapper_initialised",
            wrapper=name,
            threads=state.concurrency,
            init_s=round(time.perf_counter() - started, 3),
        )
        yield
    finally:
        state.ready = False
        # Execs still running finish first (a thread cannot be interrupted); only then
        # does fini run, so it never overlaps an exec.
        await asyncio.to_thread(state.pool.shutdown, True)
        if initialised:
            code = await asyncio.to_thread(_fini, state.wrapper)
            logger.info("wrapper_finished", wrapper=name, code=code)


def _fini(wrapper: WrapperBase) -> int:
    try:
        return wrapper.fini()
    except NotImplementedError:
        return 0


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map request, wrapper and body-size failures to JSON error responses."""
    state = request.app[STATE]
    try:
        return await handler(request)
    except WrapperRequestError as exc:
        state.metrics["requests"].labels("400").inc()
        return _problem(400, 400, str(exc), field=exc.field, reason=exc.reason)
    except BadRequest as exc:
        state.metrics["requests"].labels(str(exc.status)).inc()
        return _problem(exc.status, exc.status, str(exc), field=exc.field, reason=exc.reason)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        state.metrics["requests"].labels(str(exc.status)).inc()
        message, reason, headers = describe_http(exc)
        response = _problem(exc.status, exc.status, message, reason=reason)
        response.headers.update(headers)
        return response


def _problem(status: int, code: int, message: str, *, reason: str, **extra: Any) -> web.Response:
    doc = error_body(code, message, status=status, reason=reason, **extra)
    return web.Response(
        text=_dumps(doc), status=status, content_type="application/json", charset="utf-8"
    )


async def infer(request: web.Request) -> web.Response:
    """``POST /v1/infer``: validate, run one exec on the pool, answer JSON."""
    state = request.app[STATE]
    if not state.ready:
        return _problem(503, 503, "wrapper not initialised yet", reason="not_ready")
    if state.in_flight >= state.concurrency + state.max_queue:
        return overloaded(state)
    max_body = state.limits.max_body
    if request.content_length is not None and request.content_length > max_body:
        msg = f"request body of {request.content_length} bytes exceeds {max_body}"
        raise BadRequest(msg, reason="size", status=413)
    state.in_flight += 1
    state.metrics["in_flight"].inc()
    started = time.perf_counter()
    try:
        try:
            with anyio.fail_after(state.limits.body_timeout):
                params, payload, from_text = await _read_request(request, state)
        except TimeoutError:
            msg = f"request body not received within {state.limits.body_timeout:g} s"
            raise BadRequest(msg, reason="timeout", status=408) from None
        if state.flow is not None:
            from actorflow.wrapper._serve_flow import run_via_flow

            status, doc = await run_via_flow(
                state.flow, state.wrapper, params, payload, from_text, state.error_status
            )
            body = _dumps(doc).encode()
        else:
            assert state.pool is not None
            loop = asyncio.get_running_loop()
            status, body = await loop.run_in_executor(
                state.pool, _handle, state.wrapper, params, payload, from_text, state.error_status
            )
    finally:
        state.in_flight -= 1
        state.metrics["in_flight"].dec()
        state.metrics["latency"].observe(time.perf_counter() - started)
    state.metrics["requests"].labels(str(status)).inc()
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def overloaded(state: _State) -> web.Response:
    """The 429 answer (with ``Retry-After``) when every request slot is taken."""
    state.metrics["requests"].labels("429").inc()
    response = _problem(
        429,
        429,
        f"{state.in_flight} requests in flight (limit "
        f"{state.concurrency + state.max_queue}); retry later",
        reason="overloaded",
    )
    response.headers["Retry-After"] = str(max(1, round(state.retry_after)))
    return response


class JsonBody:
    """The raw bytes of a JSON request body, parsed later by ``parse_json``."""

    __slots__ = ("max_depth", "raw")

    def __init__(self, raw: bytes, max_depth: int = DEFAULT_LIMITS.max_json_depth) -> None:
        self.raw, self.max_depth = raw, max_depth


def parse_json(raw: bytes, max_depth: int = DEFAULT_LIMITS.max_json_depth) -> tuple[Any, Any]:
    """``(parameter, payload)`` from a JSON request body.

    Raises:
        WrapperRequestError: not JSON (reason ``json``), nested deeper than
            ``max_depth`` (``depth``), or not ``{"parameter": {...}, "payload": {...}}``.
    """
    try:
        doc = loads(raw, max_depth, where="request body")
    except BadRequest as exc:
        raise WrapperRequestError(str(exc), reason=exc.reason) from None
    if not isinstance(doc, dict) or not set(doc) <= {"parameter", "payload"}:
        msg = (
            'a JSON request is {"parameter": {...}, "payload": {...}}; got '
            f"{sorted(doc) if isinstance(doc, dict) else type(doc).__name__}"
        )
        raise WrapperRequestError(msg, reason="body")
    for key in ("parameter", "payload"):
        if not isinstance(doc.get(key, {}), dict):
            msg = f'"{key}" must be a JSON object, got {type(doc[key]).__name__}'
            raise WrapperRequestError(msg, field=key, reason="body")
    return doc.get("parameter"), doc.get("payload")


def _handle(
    wrapper: WrapperBase, params: Any, payload: Any, from_text: bool, error_status: int
) -> tuple[int, bytes]:
    """On a pool thread: parse, validate, exec, encode: ``(HTTP status, JSON bytes)``.

    Everything a request costs besides reading its bytes happens here, in one hop, so
    that the event loop does as little per request as possible.
    """
    status, body = _run(wrapper, params, payload, from_text, error_status)
    return status, _dumps(body).encode()


def _run(
    wrapper: WrapperBase, params: Any, payload: Any, from_text: bool, error_status: int
) -> tuple[int, dict[str, Any]]:
    try:
        if isinstance(payload, JsonBody):
            params, payload = parse_json(payload.raw, payload.max_depth)
        checked, req = wrapper.check_request(params, payload, from_text=from_text)
    except WrapperRequestError as exc:
        return 400, request_error(exc)
    try:
        response = wrapper.exec(checked, req)
        if response.error_code:
            message = wrapper.error_message(response.error_code)
            return error_status, wrapper_error(response.error_code, message, error_status)
        return 200, {"code": 0, "message": "success", "payload": response_payload(response)}
    except WrapperExecError as exc:
        return error_status, wrapper_error(exc.code, exc.message, error_status)
    except Exception as exc:
        logger.exception("wrapper_exec_failed", wrapper=type(wrapper).service_name())
        return 500, exec_failed(exc)


def error_body(
    code: int, message: str, *, status: int, reason: str, **extra: Any
) -> dict[str, Any]:
    """The JSON body of an error answer.

    aiges's ``code`` and ``message`` plus the ``error``, ``reason``, ``status`` (and
    ``field``) that every served error carries.
    """
    return {
        "code": code,
        "message": message,
        "error": message,
        "reason": reason,
        "status": status,
        **extra,
    }


def request_error(exc: WrapperRequestError) -> dict[str, Any]:
    """The 400 body for a request that breaks a declaration."""
    return error_body(400, str(exc), status=400, reason=exc.reason, field=exc.field)


def wrapper_error(code: int, message: str, status: int) -> dict[str, Any]:
    """The body for a wrapper error code (answered with ``error_status``)."""
    return error_body(code, message, status=status, reason="wrapper_error")


def exec_failed(exc: BaseException) -> dict[str, Any]:
    """The 500 body for an exception raised by a hook: its type and message."""
    text = str(exc)
    if len(text) > 1000:
        text = text[:1000] + "..."
    kind = type(exc).__name__
    message = (
        f"wrapperOnceExec failed: {kind}: {text}" if text else f"wrapperOnceExec failed: {kind}"
    )
    return error_body(-1, message, status=500, reason="unit_failed", type=kind)


def response_payload(response: Response) -> dict[str, Any]:
    """A response's items as JSON: ``{key: {type, status, len, encoding, data}}``.

    Raises:
        ValueError: two items share a key.
    """
    out: dict[str, Any] = {}
    for item in response.list:
        if item.key in out:
            msg = f"response keys must be unique; {item.key!r} appears twice"
            raise ValueError(msg)
        out[item.key] = _item(item.data, item.type, item.status)
    return out


def _item(data: Any, type_code: int, status: int) -> dict[str, Any]:
    kind = TYPE_NAMES.get(type_code, "text")
    if isinstance(data, str):
        return {
            "type": kind,
            "status": status,
            "len": len(data.encode()),
            "encoding": "utf8",
            "data": data,
        }
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        if type_code == DataText:
            try:
                text = str(view, "utf-8")
            except UnicodeDecodeError:
                pass
            else:
                return {
                    "type": kind,
                    "status": status,
                    "len": view.nbytes,
                    "encoding": "utf8",
                    "data": text,
                }
        return {
            "type": kind,
            "status": status,
            "len": view.nbytes,
            "encoding": "base64",
            "data": base64.b64encode(view).decode("ascii"),
        }
    text = json.dumps(data, ensure_ascii=False)
    return {
        "type": kind,
        "status": status,
        "len": len(text.encode()),
        "encoding": "json",
        "data": data,
    }


async def _read_request(request: web.Request, state: _State) -> tuple[Any, Any, bool]:
    """``(parameter, payload, params_are_text)`` from a JSON, multipart or raw body.

    A JSON body is only read here: it is parsed with the rest of the request's work,
    off the event loop (``JsonBody``).
    """
    cls = type(state.wrapper)
    content_type = request.content_type
    if content_type == "application/json":
        return None, JsonBody(await request.read(), state.limits.max_json_depth), False
    if content_type == "multipart/form-data":
        return (*await _read_multipart(request, cls, state.limits), True)
    bodies = cls.body_fields()
    if len(bodies) != 1:
        msg = (
            f"unsupported content type {content_type!r}: send application/json or "
            "multipart/form-data (a raw body needs a wrapper with exactly one body field)"
        )
        raise WrapperRequestError(msg, reason="body")
    return dict(request.query), {bodies[0].key: await request.read()}, True


async def _read_multipart(
    request: web.Request, cls: type[WrapperBase], limits: Limits
) -> tuple[Any, Any]:
    """Parameters from text fields, body data from file parts.

    Raises:
        BadRequest: 413 past ``max_parts`` parts (before the next is read), or past
            ``max_part`` bytes in one part or ``max_body`` in all.
    """
    body_keys = {f.key for f in cls.body_fields()}
    params: dict[str, Any] = {}
    payload: dict[str, Any] = {}
    total = count = 0
    part_limit = min(limits.max_part, limits.max_body)
    reader = await request.multipart()
    async for part in reader:
        count += 1
        if count > limits.max_parts:
            msg = f"multipart body has more than {limits.max_parts} parts"
            raise BadRequest(msg, reason="parts", status=413)
        if not isinstance(part, BodyPartReader):
            msg = "nested multipart bodies are not supported"
            raise WrapperRequestError(msg, reason="body")
        name = part.name or ""
        data = await _read_part(part, name, part_limit)
        total += len(data)
        if total > limits.max_body:
            msg = f"multipart body exceeds {limits.max_body} bytes"
            raise BadRequest(msg, reason="size", status=413)
        if name in body_keys or part.filename is not None:
            payload[name] = memoryview(data)  # the part's bytearray, viewed, not copied
        else:
            params[name] = str(data, part.get_charset("utf-8"))
    return params, payload


async def _read_part(part: BodyPartReader, name: str, limit: int) -> bytearray:
    """A part's bytes, refused (413) as soon as they pass ``limit``."""
    data = bytearray()
    while chunk := await part.read_chunk(65536):
        data += chunk
        if len(data) > limit:
            msg = f"part {name!r} is larger than {limit} bytes"
            raise BadRequest(msg, field=name, reason="size", status=413)
    return data


async def openapi(request: web.Request) -> web.Response:
    """``GET /v1/schema``: the OpenAPI 3.1 document."""
    return web.json_response(request.app[STATE].schema["openapi"])


async def jsonschema(request: web.Request) -> web.Response:
    """``GET /v1/jsonschema``: the request, response and error JSON Schemas."""
    schema = request.app[STATE].schema
    return web.json_response({k: schema[k] for k in ("request", "response", "error")})


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text exposition."""
    body = generate_latest(request.app[STATE].registry)
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


async def healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 once ``wrapperInit`` succeeded, until shutdown."""
    state = request.app[STATE]
    if state.ready:
        return web.json_response({"status": "ready", "threads": state.concurrency})
    return web.json_response({"status": "not ready"}, status=503)


def _make_metrics(state: _State) -> None:
    registry = state.registry
    state.metrics = {
        "requests": Counter(
            "actorflow_wrapper_requests",
            "Requests answered, by HTTP status",
            ["status"],
            registry=registry,
        ),
        "in_flight": Gauge(
            "actorflow_wrapper_in_flight", "Requests waiting or running", registry=registry
        ),
        "latency": Histogram(
            "actorflow_wrapper_request_seconds", "Time from admission to answer", registry=registry
        ),
    }
