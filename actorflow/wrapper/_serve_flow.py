"""Serving a wrapper through the runtime (``build_app(..., via="flow")``).

The wrapper runs as a ``wrapper`` node of a three-node graph (``input -> wrapper ->
output``) with ``replicas = concurrency``; each HTTP request is one session of that
flow. Requests are validated on the event loop before they enter the graph (so a bad
request never fails a packet, which would restart the node), the node runs
``wrapperOnceExec`` on its threads ``actorflow-wrapper-<i>``, and the response is
encoded on the loop. ``docs/benchmarks.md`` compares this path with the default
thread-pool path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from actorflow.errors import FlowFailed
from actorflow.graph import graph_from_dict
from actorflow.runtime import Flow
from actorflow.wrapper._errors import WrapperExecError, WrapperRequestError

if TYPE_CHECKING:
    from actorflow.wrapper._base import WrapperBase

logger = structlog.get_logger(__name__)

NODE = "wrapper"
"""The node id of the wrapper in the serving graph (its threads: ``actorflow-wrapper-<i>``)."""


def make_flow(cls: type[WrapperBase], concurrency: int, config: Mapping[str, Any] | None) -> Flow:
    """A flow with ``cls`` as a node of ``concurrency`` replicas (one shared instance)."""
    node: dict[str, Any] = {
        "flowunit": "wrapper",
        "wrapper": cls,
        "replicas": concurrency,
        "queue_size": max(32, 2 * concurrency),
    }
    if config is not None:
        node["config"] = dict(config)
    graph = graph_from_dict(
        {
            "name": f"serve-{cls.service_name()}",
            "nodes": {"input": {"type": "input"}, NODE: node, "output": {"type": "output"}},
            "edges": [f"input -> {NODE}", f"{NODE} -> output"],
        },
        source=f"<wrapper {cls.service_name()}>",
    )
    flow = Flow(graph)
    flow.build()
    return flow


async def flow_lifetime(app: web.Application) -> AsyncIterator[None]:
    """Start the flow (the node's open runs ``wrapperInit``); stop it at cleanup."""
    from actorflow.wrapper._serve import STATE

    state = app[STATE]
    flow = state.flow
    assert flow is not None
    await flow.run_async()
    state.ready = True
    try:
        yield
    finally:
        state.ready = False
        await flow.stop()
        try:
            await flow.wait()
        except FlowFailed:
            logger.exception("wrapper_flow_failed", wrapper=type(state.wrapper).service_name())


async def run_via_flow(
    flow: Flow, wrapper: WrapperBase, params: Any, payload: Any, from_text: bool, error_status: int
) -> tuple[int, dict[str, Any]]:
    """Validate on the loop, run one session through the flow, encode the response."""
    from actorflow.wrapper._serve import (
        JsonBody,
        exec_failed,
        parse_json,
        request_error,
        response_payload,
        wrapper_error,
    )

    try:
        if isinstance(payload, JsonBody):
            params, payload = parse_json(payload.raw, payload.max_depth)
        checked, req = wrapper.check_request(params, payload, from_text=from_text)
    except WrapperRequestError as exc:
        return 400, request_error(exc)
    session = flow.create_external_data_map()
    async with session:
        await session.send("input", {"parameter": checked, "payload": req})
        await session.close()
        results = [result async for result in session]
    (result,) = results
    if result.error is not None:
        cause = result.error.__cause__
        if isinstance(cause, WrapperExecError):
            return error_status, wrapper_error(cause.code, cause.message, error_status)
        logger.error(
            "wrapper_exec_failed",
            wrapper=type(wrapper).service_name(),
            error=repr(cause or result.error),
        )
        return 500, exec_failed(cause or result.error)
    response = result.data
    if response.error_code:
        return error_status, wrapper_error(response.error_code, response.message, error_status)
    return 200, {"code": 0, "message": "success", "payload": response_payload(response)}
