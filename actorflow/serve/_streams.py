"""``/v1/streams``: add, list and remove the sources of a served flow while it runs.

* ``POST /v1/streams`` ``{"source": "video_source", "params": {"uri": "rtsp://..."},
  "id": "gate-3", "input": "frames"}`` starts a stream (``id`` and ``input`` optional)
  and answers 201 with its id and status.
* ``GET /v1/streams`` lists every stream with its status, items, results, errors,
  drops and mean latency (``StreamStatistics``).
* ``DELETE /v1/streams/{id}`` (``?drain=false`` to cancel what it queued) stops one.

Adding a stream opens files or URLs named by the client, so the routes exist only when
the server was started with ``streams=True`` (``actorflow serve --streams``); only
registered *source* units are accepted, with their parameters checked like a graph's.
Mistakes are 400 (unknown unit, not a source, bad parameters), 404 (no such stream)
or 409 (the id is in use), with the JSON error body of every endpoint.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from actorflow.errors import FlowStateError, UnitConfigError, UnitNotFoundError
from actorflow.runtime import Flow
from actorflow.serve._errors import json_response, loads, problem
from actorflow.unit import SourceUnit, default_registry, instantiate

FLOW_KEY = web.AppKey("actorflow.serve.streams.flow", Flow)


def add_routes(app: web.Application, flow: Flow) -> None:
    """Serve ``/v1/streams`` for ``flow`` on ``app``."""
    app[FLOW_KEY] = flow
    app.router.add_get("/v1/streams", list_streams)
    app.router.add_post("/v1/streams", add_stream)
    app.router.add_delete("/v1/streams/{id}", remove_stream)


async def list_streams(request: web.Request) -> web.Response:
    """``GET /v1/streams``."""
    streams = request.app[FLOW_KEY].statistics().streams
    return json_response({"streams": [dataclasses.asdict(s) for s in streams.values()]})


async def add_stream(request: web.Request) -> web.Response:
    """``POST /v1/streams``."""
    doc = loads(await request.text(), 8)
    if not isinstance(doc, dict) or not isinstance(doc.get("source"), str):
        return problem(400, 'the body must be {"source": "<source unit>", "params": {...}}', "body")
    name, params = doc["source"], doc.get("params", {})
    if not isinstance(params, dict):
        return problem(400, '"params" must be an object', "type", "params")
    try:
        cls = default_registry.get(name)
    except UnitNotFoundError as exc:
        return problem(400, str(exc), "unknown_unit", "source")
    if not issubclass(cls, SourceUnit):
        return problem(400, f"unit {name!r} is not a source; streams need one", "type", "source")
    stream_id = doc.get("id")
    try:
        unit = instantiate(cls, params, node=f"stream:{stream_id or name}")
        assert isinstance(unit, SourceUnit)
        flow = request.app[FLOW_KEY]
        stream = flow.add_source(unit, input=doc.get("input"), stream_id=stream_id)
    except UnitConfigError as exc:
        return problem(400, str(exc), "params", "params")
    except FlowStateError as exc:
        status = 409 if "already running" in str(exc) else 400
        return problem(status, str(exc), "conflict" if status == 409 else "input", "id")
    return json_response({"id": stream.id, "status": stream.status}, status=201)


async def remove_stream(request: web.Request) -> web.Response:
    """``DELETE /v1/streams/{id}``."""
    stream_id = request.match_info["id"]
    drain = request.query.get("drain", "true").lower() not in ("0", "false", "no")
    try:
        stream = await request.app[FLOW_KEY].remove_source(stream_id, drain=drain)
    except KeyError as exc:
        return problem(404, str(exc.args[0]), "not_found", "id")
    body: dict[str, Any] = {"id": stream.id, "status": stream.status}
    return json_response(body)
