"""Serving a wrapper: what ``actorflow serve wrapper.py`` runs.

A served wrapper is a one-node graph, ``input -> wrapper -> output``, whose ``wrapper``
node is ``WrapperUnit`` with ``replicas = concurrency`` (one shared instance), served
by ``serve/_app.py`` like any graph: the same middleware, limits, admission,
``/metrics``, ``/healthz``, ``/readyz``, shutdown. Only ``/v1/infer`` and
``/v1/stream`` speak the wrapper's shapes (aiges's ``{"parameter", "payload"}``
requests and ``{"code", "message", "payload"}`` answers), and ``/v1/jsonschema`` is
added.

Endpoints:

* ``POST /v1/infer``: one request, validated against the declared fields on the event
  loop, then one ``wrapperOnceExec`` on the node's threads (one flow session). JSON
  (``{"parameter": {...}, "payload": {...}}``, binary values base64),
  ``multipart/form-data`` (parameters as fields, body data as parts) or, for a wrapper
  with one body field, the raw body with parameters in the query string.
* ``GET /v1/stream`` (WebSocket, wrappers with session hooks): see ``stream``.
* ``GET /v1/schema`` (OpenAPI 3.1, from ``serve/_schema.py``), ``GET /v1/jsonschema``.

Guarantees:

* every error answer is the JSON body of ``actorflow serve`` (``error``, ``reason``,
  ``status``, ``field``) plus aiges's ``code`` and ``message``: a request that breaks
  a declaration gets 400 naming the field and the rule; a wrapper error code gets
  ``error_status`` (500) with the ``wrapperError`` text (reason ``wrapper_error``);
  an exception in a hook gets 500 with its type and message (reason ``unit_failed``);
* ``wrapperInit`` runs once before the first request is accepted (``/readyz`` says
  when), ``wrapperFini`` once at shutdown after the last exec;
* at most ``concurrency`` execs run at once, on threads ``actorflow-wrapper-<name>-<i>``;
  past ``concurrency + max_queue`` requests and streams in flight the answer is 429
  with ``Retry-After``; bodies past ``Limits.max_body`` get 413;
* hooks never run on the event loop; body bytes are handed over without copies.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import structlog
from aiohttp import BodyPartReader, WSMsgType, web

from actorflow.graph import graph_from_dict
from actorflow.integrations.aiohttp import ADMISSION, FLOW, Overloaded, run_session
from actorflow.runtime import Flow
from actorflow.serve._app import STATE, Endpoints, Handler, build_app, refuse_when_draining
from actorflow.serve._errors import BadRequest, dumps, loads
from actorflow.serve._limits import Limits
from actorflow.serve._ratelog import RateLimitedLog
from actorflow.serve._schema import wrapper_openapi, wrapper_schema
from actorflow.wrapper._base import WrapperBase
from actorflow.wrapper._dto import TYPE_NAMES, DataContinue, DataEnd, DataText, Response
from actorflow.wrapper._errors import WrapperExecError, WrapperRequestError
from actorflow.wrapper._load import load_wrapper
from actorflow.wrapper._request import check_params
from actorflow.wrapper._unit import SessionCall

logger = RateLimitedLog(structlog.get_logger(__name__))

INPUT = "input"
"""The serving graph's input node (and port)."""
DEFAULT_CONCURRENCY = 32
"""Exec threads when the wrapper does not say (``concurrency``): sized for hooks that
wait on I/O or release the GIL; see docs/benchmarks.md "Wrapper serving"."""
DEFAULT_MAX_BODY = 64 * 1024 * 1024
"""Request body limit (64 MiB: audio and images, base64-inflated)."""
DEFAULT_LIMITS = Limits(
    max_body=DEFAULT_MAX_BODY, max_part=DEFAULT_MAX_BODY, ws_max_message=DEFAULT_MAX_BODY
)
"""``Limits`` of a served wrapper unless told otherwise (larger bodies than graphs)."""


@dataclass(frozen=True)
class _Wrapper:
    checker: WrapperBase  # not initialised: validates requests only
    error_status: int
    schemas: dict[str, Any]


WRAPPER = web.AppKey("actorflow.serve.wrapper", _Wrapper)


def build_wrapper_app(
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
    allow_custom_code: bool = False,
    limits: Limits | None = None,
) -> web.Application:
    """Build the aiohttp application serving the wrapper in file ``path``.

    Args:
        path: the wrapper file (or, from Python, a wrapper class).
        wrapper: the class name in the file (default ``Wrapper`` or the only one).
        config: passed to ``wrapperInit`` instead of the class attribute ``config``.
        concurrency: execs at once, the node's replicas (default: the class attribute
            ``concurrency``, else ``DEFAULT_CONCURRENCY``).
        max_queue: requests that may wait for a replica before 429 (default
            ``4 * concurrency``).
        max_body: the largest request body accepted, in bytes (413 past it); overrides
            ``limits.max_body``.
        max_sessions: cap on requests and streams in flight (waiting or running);
            overrides ``concurrency + max_queue`` (the option ``actorflow serve`` passes).
        retry_after: seconds advertised in ``Retry-After`` with 429.
        error_status: HTTP status of responses carrying a wrapper error code.
        allow_custom_code: accepted for ``actorflow serve``; a wrapper file is code the
            operator chose to run, so it changes nothing here.
        limits: resource limits (``DEFAULT_LIMITS`` when ``None``).

    Raises:
        WrapperLoadError: the file cannot be loaded (at build time, before binding).
        ValueError: ``concurrency`` below 1.
    """
    del allow_custom_code
    cls = path if isinstance(path, type) else load_wrapper(path, wrapper)
    replicas = concurrency or cls.concurrency or DEFAULT_CONCURRENCY
    if replicas < 1:
        msg = f"concurrency must be at least 1, got {replicas}"
        raise ValueError(msg)
    queue = max_queue if max_queue is not None else 4 * replicas
    slots = max_sessions if max_sessions is not None else replicas + queue
    endpoints = Endpoints(
        infer=infer,
        stream=stream if cls.supports_sessions() else None,
        schema=wrapper_openapi(cls),
        routes={"/v1/jsonschema": jsonschema},
    )
    app = build_app(
        wrapper_flow(cls, replicas, config),
        max_body=max_body,
        max_sessions=max(1, slots),
        retry_after=retry_after,
        limits=limits or DEFAULT_LIMITS,
        dashboard=False,
        endpoints=endpoints,
    )
    app.middlewares.insert(0, _aiges_fields)
    schemas = wrapper_schema(cls)
    app[WRAPPER] = _Wrapper(
        cls(), error_status, {k: schemas[k] for k in ("request", "response", "error")}
    )
    return app


def wrapper_flow(cls: type[WrapperBase], replicas: int, config: Mapping[str, Any] | None) -> Flow:
    """The one-node graph of a served wrapper, built (not started).

    The node is ``wrapper-<service name>`` (its threads ``actorflow-wrapper-<name>-<i>``).
    """
    node: dict[str, Any] = {
        "flowunit": "wrapper",
        "wrapper": cls,
        "replicas": replicas,
        "queue_size": max(32, 2 * replicas),
    }
    if config is not None:
        node["config"] = dict(config)
    name = f"wrapper-{cls.service_name()}"
    graph = graph_from_dict(
        {
            "name": f"serve-{cls.service_name()}",
            "nodes": {INPUT: {"type": "input"}, name: node, "output": {"type": "output"}},
            "edges": [f"{INPUT} -> {name}", f"{name} -> output"],
        },
        source=f"<wrapper {cls.service_name()}>",
    )
    flow = Flow(graph)
    flow.build()
    return flow


@web.middleware
async def _aiges_fields(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every JSON error answer aiges's ``code`` (the status) and ``message``."""
    response = await handler(request)
    if (
        response.status >= 400
        and isinstance(response, web.Response)
        and response.content_type == "application/json"
        and isinstance(response.body, bytes)
    ):
        doc = json.loads(response.body)
        if isinstance(doc, dict) and "code" not in doc:
            doc = {"code": response.status, "message": doc.get("error", ""), **doc}
            response.body = dumps(doc).encode()
    return response


async def infer(request: web.Request) -> web.Response:
    """``POST /v1/infer``: read, validate, run one exec as one session, answer JSON."""
    state, served = request.app[STATE], request.app[WRAPPER]
    refuse_when_draining(state)
    limits = state.limits
    if request.content_length is not None and request.content_length > limits.max_body:
        msg = f"request body of {request.content_length} bytes exceeds {limits.max_body}"
        raise BadRequest(msg, reason="size", status=413)
    try:
        with anyio.fail_after(limits.body_timeout):
            params, payload, from_text = await _read_request(request, served.checker, limits)
        checked, req = served.checker.check_request(params, payload, from_text=from_text)
    except TimeoutError:
        msg = f"request body not received within {limits.body_timeout:g} s"
        raise BadRequest(msg, reason="timeout", status=408) from None
    except WrapperRequestError as exc:
        return _json(400, request_error(exc))
    state.metrics.active.inc()
    try:
        with request.app[ADMISSION].slot():
            result = await _exec(
                request.app[FLOW], {"parameter": checked, "payload": req}, state.retry_after
            )
    finally:
        state.metrics.active.dec()
    if result.error is not None:
        cause = result.error.__cause__ or result.error
        if isinstance(cause, WrapperExecError):
            return _json(served.error_status, wrapper_error(cause, served.error_status))
        logger.warning("wrapper_exec_failed", error=repr(cause))
        return _json(500, exec_failed(cause))
    response: Response = result.data
    if response.error_code:
        body = error_body(
            response.error_code,
            response.message,
            status=served.error_status,
            reason="wrapper_error",
        )
        return _json(served.error_status, body)
    return _json(200, {"code": 0, "message": "success", "payload": response_payload(response)})


async def _exec(flow: Flow, data: Any, retry_after: float) -> Any:
    """One session of one packet: its ``Result``.

    Unlike ``run_session`` nothing watches the client's connection: the one exec runs
    to its end either way (a thread cannot be interrupted), and that saves the event
    loop a task per request.

    Raises:
        Overloaded: the graph's input is full; nothing was sent.
    """
    session = flow.session()
    done = False
    try:
        try:
            session.send_nowait(INPUT, data)
        except anyio.WouldBlock:
            msg = f"input {INPUT!r} of the graph is full"
            raise Overloaded(msg, retry_after) from None
        await session.close()
        results = [result async for result in session]
        done = True
    finally:
        if not done:
            with anyio.CancelScope(shield=True):
                await session.abort()
    (result,) = results
    return result


def _json(status: int, doc: Any) -> web.Response:
    return web.Response(
        body=dumps(doc).encode(), status=status, content_type="application/json", charset="utf-8"
    )


async def stream(request: web.Request) -> web.StreamResponse:
    """``GET /v1/stream``: one WebSocket, one wrapper session.

    Protocol:

    1. the client sends ``{"parameter": {...}}``; the server checks the parameters,
       calls ``wrapperCreate(params, sid)`` and answers ``{"code": 0, "sid": ...}``;
    2. each chunk is ``{"payload": {...}, "status": 0|1|2}`` as text (binary values
       base64) or, for a wrapper with one body field, a binary frame (status
       ``DataContinue``); the server calls ``wrapperWrite`` then ``wrapperRead`` and
       answers with the response (same shape as ``POST /v1/infer``);
    3. a chunk with ``status = 2`` (``DataEnd``), ``{"end": true}``, or closing the
       socket ends the session: ``wrapperDestroy(handle)`` runs exactly once and the
       server sends ``{"end": true}``.

    A request that breaks a declaration or an error code ends the session with the
    error body of ``POST /v1/infer``. A stream holds one request slot while it lasts
    (past them the upgrade is answered 429); messages past ``Limits.ws_max_message``
    close it with 1009; JSON nested past ``max_json_depth`` is a 400 error message.
    Each answer is sent before the next chunk is read, so a client that does not read
    holds back only its own session. Hooks run on the node's threads, one flow session
    per hook call.
    """
    state = request.app[STATE]
    refuse_when_draining(state)
    with request.app[ADMISSION].slot():
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=state.limits.ws_message_cap())
        await ws.prepare(request)
        state.sockets.add(ws)
        state.metrics.active.inc()
        try:
            await _session(ws, request)
        finally:
            state.metrics.active.dec()
    return ws


async def _session(ws: web.WebSocketResponse, request: web.Request) -> None:
    state, served, flow = request.app[STATE], request.app[WRAPPER], request.app[FLOW]
    depth = state.limits.max_json_depth
    cls = type(served.checker)
    sid = uuid.uuid4().hex
    created = False
    try:
        first = await ws.receive()
        if first.type is not WSMsgType.TEXT:
            return  # closed (or a binary hello): nothing was created
        hello = loads(first.data, depth, where="first message")
        params = hello.get("parameter") if isinstance(hello, dict) else None
        checked = check_params(cls.param_fields(), params)
        await _call(flow, SessionCall("create", sid, parameter=checked))
        created = True
        await ws.send_str(dumps({"code": 0, "message": "session created", "sid": sid}))
        async for message in ws:
            payload, status, end = _chunk(cls, message, depth)
            if payload is not None:
                response = await _call(
                    flow, SessionCall("write", sid, payload=payload, status=status)
                )
                doc = {"code": 0, "message": "success", "payload": response_payload(response)}
                await ws.send_str(dumps(doc))
            if end or status == DataEnd:
                break
    except WrapperRequestError as exc:
        await ws.send_str(dumps(request_error(exc)))
    except WrapperExecError as exc:
        await ws.send_str(dumps(wrapper_error(exc, served.error_status)))
    except BadRequest as exc:
        await ws.send_str(dumps(error_body(400, str(exc), status=400, reason=exc.reason)))
    except (ValueError, TypeError) as exc:
        body = error_body(400, f"bad message: {exc}", status=400, reason="body")
        await ws.send_str(dumps(body))
    finally:
        with anyio.CancelScope(shield=True):
            if created:
                await _call(flow, SessionCall("destroy", sid))
            if not ws.closed:
                await ws.send_str(dumps({"end": True}))
                await ws.close()


async def _call(flow: Flow, call: SessionCall) -> Response:
    """Run one session hook call on the wrapper node; its failure is raised here."""
    (result,) = await run_session(None, [(INPUT, call)], flow=flow, nowait=False)
    if result.error is not None:
        raise result.error.__cause__ or result.error
    response: Response = result.data
    return response


def _chunk(cls: type[WrapperBase], message: Any, depth: int) -> tuple[Any, int, bool]:
    """``(payload or None, status, end)`` from one WebSocket message."""
    if message.type == WSMsgType.BINARY:
        bodies = cls.body_fields()
        if len(bodies) != 1:
            msg = "binary frames need a wrapper with exactly one body field; send JSON"
            raise WrapperRequestError(msg, reason="body")
        return {bodies[0].key: message.data}, DataContinue, False
    if message.type != WSMsgType.TEXT:
        return None, DataContinue, True
    doc = loads(message.data, depth, where="message")
    if not isinstance(doc, dict):
        msg = f"expected a JSON object, got {type(doc).__name__}"
        raise TypeError(msg)
    if doc.get("end"):
        return None, DataEnd, True
    status = doc.get("status", DataContinue)
    if not isinstance(status, int) or not 0 <= status <= 3:
        msg = f"status must be 0, 1, 2 or 3, got {status!r}"
        raise WrapperRequestError(msg, field="status", reason="range")
    return doc.get("payload") or {}, status, False


async def jsonschema(request: web.Request) -> web.Response:
    """``GET /v1/jsonschema``: the request, response and error JSON Schemas."""
    return web.json_response(request.app[WRAPPER].schemas)


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


def wrapper_error(exc: WrapperExecError, status: int) -> dict[str, Any]:
    """The body for a wrapper error code (answered with ``error_status``)."""
    return error_body(exc.code, exc.message, status=status, reason="wrapper_error")


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


async def _read_request(
    request: web.Request, checker: WrapperBase, limits: Limits
) -> tuple[Any, Any, bool]:
    """``(parameter, payload, params_are_text)`` from a JSON, multipart or raw body."""
    cls = type(checker)
    content_type = request.content_type
    if content_type == "application/json":
        return (*parse_json(await request.read(), limits.max_json_depth), False)
    if content_type == "multipart/form-data":
        return (*await _read_multipart(request, cls, limits), True)
    bodies = cls.body_fields()
    if len(bodies) != 1:
        msg = (
            f"unsupported content type {content_type!r}: send application/json or "
            "multipart/form-data (a raw body needs a wrapper with exactly one body field)"
        )
        raise WrapperRequestError(msg, reason="body")
    return dict(request.query), {bodies[0].key: await request.read()}, True


def parse_json(raw: bytes, max_depth: int) -> tuple[Any, Any]:
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
