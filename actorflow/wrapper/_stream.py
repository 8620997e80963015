"""``GET /v1/stream``: a WebSocket session mapped to the wrapper's session hooks.

Protocol (one WebSocket = one session):

1. the client sends ``{"parameter": {...}}``; the server calls
   ``wrapperCreate(params, sid)`` and answers ``{"code": 0, "sid": ...}``;
2. each chunk is ``{"payload": {...}, "status": 0|1|2}`` as text (binary values
   base64) or, for a wrapper with one body field, a binary frame (status
   ``DataContinue``); the server calls ``wrapperWrite`` then ``wrapperRead`` and
   answers with the response (same shape as ``POST /v1/infer``);
3. a chunk with ``status = 2`` (``DataEnd``), ``{"end": true}``, or closing the socket
   ends the session: ``wrapperDestroy(handle)`` runs exactly once and the server
   sends ``{"end": true}``.

A request that breaks a declaration or an error code ends the session with the
error body of ``POST /v1/infer`` (``code``, ``message``, ``error``, ``reason``,
``status``, and ``field`` for 400). A stream holds one of the ``concurrency +
max_queue`` request slots while it lasts (past them the upgrade is answered 429);
messages past ``Limits.ws_max_message`` close it with 1009, JSON nested past
``max_json_depth`` is a 400 error message. Each answer is sent before the next chunk is
read, so a client that does not read holds back only its own session.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from actorflow.serve._errors import BadRequest, loads
from actorflow.serve._errors import dumps as _dumps
from actorflow.wrapper._base import WrapperBase
from actorflow.wrapper._dto import DataContinue, DataEnd, Response, SessionCreateResponse
from actorflow.wrapper._errors import WrapperExecError, WrapperRequestError
from actorflow.wrapper._hooks import call_hook
from actorflow.wrapper._request import check_params, check_payload
from actorflow.wrapper._serve import (
    STATE,
    error_body,
    overloaded,
    request_error,
    response_payload,
    wrapper_error,
)

logger = structlog.get_logger(__name__)


async def stream(request: web.Request) -> web.StreamResponse:
    """Run one wrapper session over a WebSocket (module docstring)."""
    state = request.app[STATE]
    if state.in_flight >= state.concurrency + state.max_queue:
        return overloaded(state)
    state.in_flight += 1
    state.metrics["in_flight"].inc()
    try:
        return await _session(request, state)
    finally:
        state.in_flight -= 1
        state.metrics["in_flight"].dec()


async def _session(request: web.Request, state: Any) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=state.limits.ws_message_cap())
    await ws.prepare(request)
    if not state.ready or state.pool is None:
        body = error_body(503, "wrapper not initialised yet", status=503, reason="not_ready")
        await ws.send_str(_dumps(body))
        await ws.close()
        return ws
    depth = state.limits.max_json_depth
    loop = asyncio.get_running_loop()
    pool, wrapper = state.pool, state.wrapper
    sid = uuid.uuid4().hex
    handle: Any = None
    try:
        first = await ws.receive()
        if first.type is not WSMsgType.TEXT:
            return ws  # closed (or a binary hello): nothing was created
        hello = loads(first.data, depth, where="first message")
        params = hello.get("parameter") if isinstance(hello, dict) else None
        handle = await loop.run_in_executor(pool, _create, wrapper, params, sid)
        await ws.send_json({"code": 0, "message": "session created", "sid": sid}, dumps=_dumps)
        async for message in ws:
            payload, status, end = _chunk(wrapper, message, depth)
            if payload is not None:
                body = await loop.run_in_executor(
                    pool, _step, wrapper, handle, payload, status, sid
                )
                await ws.send_json(body, dumps=_dumps)
            if end or status == DataEnd:
                break
    except WrapperRequestError as exc:
        await ws.send_str(_dumps(request_error(exc)))
    except WrapperExecError as exc:
        await ws.send_str(_dumps(wrapper_error(exc.code, exc.message, state.error_status)))
    except BadRequest as exc:
        body = error_body(400, str(exc), status=400, reason=exc.reason)
        await ws.send_str(_dumps(body))
    except (ValueError, TypeError) as exc:
        body = error_body(400, f"bad message: {exc}", status=400, reason="body")
        await ws.send_str(_dumps(body))
    finally:
        if handle is not None:
            await loop.run_in_executor(pool, call_hook, wrapper, "wrapperDestroy", handle)
        if not ws.closed:
            await ws.send_json({"end": True})
            await ws.close()
    return ws


def _chunk(wrapper: WrapperBase, message: Any, depth: int) -> tuple[Any, int, bool]:
    """``(payload or None, status, end)`` from one WebSocket message."""
    if message.type == WSMsgType.BINARY:
        bodies = type(wrapper).body_fields()
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


def _create(wrapper: WrapperBase, params: Any, sid: str) -> Any:
    checked = check_params(type(wrapper).param_fields(), params)
    created = call_hook(wrapper, "wrapperCreate", checked, sid)
    if isinstance(created, SessionCreateResponse):
        if created.error_code:
            raise WrapperExecError(
                created.error_code, wrapper.error_message(created.error_code), hook="wrapperCreate"
            )
        return created.handle
    return created


def _step(wrapper: WrapperBase, handle: Any, payload: Any, status: int, sid: str) -> dict[str, Any]:
    req = check_payload(type(wrapper).body_fields(), payload, status=status)
    code = call_hook(wrapper, "wrapperWrite", handle, req, sid)
    if code:
        raise WrapperExecError(int(code), wrapper.error_message(int(code)), hook="wrapperWrite")
    response = call_hook(wrapper, "wrapperRead", handle, sid)
    if not isinstance(response, Response):
        msg = f"{type(wrapper).__name__}.wrapperRead must return a Response"
        raise TypeError(msg)
    if response.error_code:
        raise WrapperExecError(
            response.error_code, wrapper.error_message(response.error_code), hook="wrapperRead"
        )
    return {"code": 0, "message": "success", "payload": response_payload(response)}
