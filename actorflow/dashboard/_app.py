"""The dashboard's routes: the page, its WebSocket, JSON snapshots and MJPEG streams.

Guarantees:

* No route ever makes the flow wait: viewers read the frame hub's latest-only slots
  and ``flow.statistics()``; a viewer that cannot keep up loses frames (counted as
  ``viewer_dropped``), never the flow.
* JPEGs are encoded only while some viewer (WebSocket or MJPEG) watches a stream.
* On app shutdown every viewer is closed: WebSockets with 1001, MJPEG responses end.
* The page, its script and its style ship in the package: no CDN, no build step.
"""

from __future__ import annotations

import asyncio
import html
import json
import weakref
from collections.abc import AsyncIterator
from importlib import resources

import anyio
from aiohttp import WSCloseCode, WSMsgType, web

from actorflow.dashboard._snapshot import Snapshots, hello
from actorflow.flowunits.dashboard.hub import FrameHub, Viewer, hub
from actorflow.runtime import Flow

STATIC_FILES = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
"""What ``static/`` holds and the content type each is served with."""

MAX_CLIENT_MESSAGE = 4096
"""Bytes a viewer may send in one message (it only ever sends ``subscribe``)."""


class _Dashboard:
    """One mounted dashboard: its flow, hub, viewers and feed tasks."""

    def __init__(self, flow: Flow, frames: FrameHub, prefix: str, interval: float) -> None:
        self.flow, self.hub, self.prefix, self.interval = flow, frames, prefix, interval
        self.snapshots = Snapshots(flow, frames, prefix)
        self.latest: str | None = None
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self.viewers: set[Viewer] = set()
        """WebSocket viewers: they receive the stats messages."""
        self.all_viewers: set[Viewer] = set()
        self.static = {
            name: (resources.files(__package__).joinpath("static", name).read_bytes(), kind)
            for name, kind in STATIC_FILES.items()
        }
        page, kind = self.static["index.html"]  # relative URLs resolve under the prefix
        base = f'<base href="{html.escape(prefix)}/">'.encode()
        self.static["index.html"] = (page.replace(b'<base href="/dashboard/">', base), kind)

    def stats_text(self) -> str:
        """A fresh stats message (also remembered for newcomers)."""
        self.latest = json.dumps(self.snapshots.take(), separators=(",", ":"))
        return self.latest


DASHBOARD = web.AppKey("actorflow.dashboard", _Dashboard)


def mount(
    app: web.Application,
    flow: Flow,
    *,
    prefix: str = "/dashboard",
    hub_name: str = "default",
    interval: float = 0.5,
) -> None:
    """Add the dashboard's routes to ``app`` under ``prefix``; it watches ``flow``.

    The flow's lifetime is not the dashboard's business: run it yourself or with
    ``actorflow.integrations.aiohttp.attach``. The frame encoder and the stats feed run
    for as long as the app does.

    Args:
        app: the application to add routes to (before it starts).
        flow: the flow whose statistics the page shows.
        prefix: where the page lives (``GET {prefix}``).
        hub_name: the frame hub the graph's ``dashboard`` sinks publish to.
        interval: seconds between statistics messages (0.5: 2 Hz).
    """
    prefix = "/" + prefix.strip("/")
    state = _Dashboard(flow, hub(hub_name), prefix, interval)
    app[DASHBOARD] = state
    app.cleanup_ctx.append(_feeds)
    app.on_shutdown.append(_close_viewers)
    router = app.router
    router.add_get(prefix, page)
    router.add_get(prefix + "/", page)
    router.add_get(prefix + "/static/{name}", static)
    router.add_get(prefix + "/ws", websocket)
    router.add_get(prefix + "/stats", stats)
    router.add_get(prefix + "/streams", streams)
    router.add_get(prefix + "/mjpeg/{node}/{session}", mjpeg)


async def _feeds(app: web.Application) -> AsyncIterator[None]:
    state = app[DASHBOARD]
    loop = asyncio.get_running_loop()
    tasks = [
        loop.create_task(state.hub.run_encoder(), name="actorflow-dashboard-encoder"),
        loop.create_task(_stats_feed(state), name="actorflow-dashboard-stats"),
    ]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _stats_feed(state: _Dashboard) -> None:
    """Every ``interval``: one statistics message into each WebSocket viewer's slot."""
    while True:
        if state.viewers:
            text = state.stats_text()
            for viewer in list(state.viewers):
                viewer.offer("stats", text, frame=False)
        await anyio.sleep(state.interval)  # the page's refresh rate


async def _close_viewers(app: web.Application) -> None:
    state = app[DASHBOARD]
    for viewer in list(state.all_viewers):
        viewer.close()
    for ws in list(state.sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def _headers() -> dict[str, str]:
    return {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


async def page(request: web.Request) -> web.Response:
    """``GET /dashboard``: the page."""
    body, kind = request.app[DASHBOARD].static["index.html"]
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=_headers())


async def static(request: web.Request) -> web.Response:
    """``GET /dashboard/static/{name}``: the page's script and style (nothing else)."""
    found = request.app[DASHBOARD].static.get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound(text="no such dashboard file")
    body, kind = found
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=_headers())


async def stats(request: web.Request) -> web.Response:
    """``GET /dashboard/stats``: the latest stats message, plus the graph, as JSON."""
    state = request.app[DASHBOARD]
    doc = json.loads(state.stats_text())
    doc["graph"] = hello(state.flow, state.hub, interval=state.interval, prefix=state.prefix)[
        "graph"
    ]
    return web.json_response(doc, headers=_headers())


async def streams(request: web.Request) -> web.Response:
    """``GET /dashboard/streams``: every stream with its MJPEG URL."""
    state = request.app[DASHBOARD]
    return web.json_response(
        [
            {**s.describe(), "mjpeg": f"{state.prefix}/mjpeg/{s.node}/{s.session}"}
            for s in state.hub.streams.values()
        ],
        headers=_headers(),
    )


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """``GET /dashboard/ws``: hello, then stats (text) and frames (binary); see the docs."""
    state = request.app[DASHBOARD]
    ws = web.WebSocketResponse(  # JPEGs do not deflate: no per-message compression
        heartbeat=30, max_msg_size=MAX_CLIENT_MESSAGE, compress=False
    )
    await ws.prepare(request)
    state.sockets.add(ws)
    with state.hub.watch() as viewer:
        state.viewers.add(viewer)
        state.all_viewers.add(viewer)
        try:
            greeting = hello(state.flow, state.hub, interval=state.interval, prefix=state.prefix)
            await ws.send_str(json.dumps(greeting, separators=(",", ":")))
            viewer.offer("stats", state.stats_text(), frame=False)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_send, ws, viewer)
                await _receive(ws, viewer, state.hub)
                tg.cancel_scope.cancel()
        finally:
            state.viewers.discard(viewer)
            state.all_viewers.discard(viewer)
            await ws.close()
    return ws


async def _send(ws: web.WebSocketResponse, viewer: Viewer) -> None:
    """Hand the viewer's slots to the socket; waits on a slow client, never the flow."""
    try:
        while not ws.closed:
            _, item = await viewer.next()
            if isinstance(item, str):
                await ws.send_str(item)
            else:
                await ws.send_bytes(item[0])
    except (anyio.EndOfStream, ConnectionError):
        return


SUBSCRIBE_HELP = 'send {"type": "subscribe", "streams": ["node/session", ...] or null}'


async def _receive(ws: web.WebSocketResponse, viewer: Viewer, frames: FrameHub) -> None:
    """``{"type": "subscribe", "streams": [ids] | null}`` picks the tiles to receive.

    Anything else is answered with an ``error`` message (through the viewer's slots, so
    only ``_send`` writes to the socket) and the connection stays open.
    """
    async for msg in ws:
        if msg.type is not WSMsgType.TEXT:
            continue
        try:
            wanted = _subscription(msg.data)
        except ValueError as exc:
            error = {"type": "error", "error": f"{exc}; {SUBSCRIBE_HELP}"}
            viewer.offer("error", json.dumps(error), frame=False)
            continue
        viewer.streams = wanted
        frames.resend(viewer)


def _subscription(text: str) -> set[str] | None:
    try:
        doc = json.loads(text)
    except ValueError:
        msg = "not JSON"
        raise ValueError(msg) from None
    if not isinstance(doc, dict) or doc.get("type") != "subscribe" or "streams" not in doc:
        msg = "unknown message"
        raise ValueError(msg)
    streams = doc["streams"]
    if streams is None:
        return None
    if not isinstance(streams, list) or not all(isinstance(x, str) for x in streams):
        msg = "'streams' must be a list of stream ids or null"
        raise ValueError(msg)
    return set(streams)


async def mjpeg(request: web.Request) -> web.StreamResponse:
    """``GET /dashboard/mjpeg/{node}/{session}``: one stream as ``multipart/x-mixed-replace``."""
    state = request.app[DASHBOARD]
    stream_id = f"{request.match_info['node']}/{request.match_info['session']}"
    if stream_id not in state.hub.streams:
        known = ", ".join(sorted(state.hub.streams)) or "none yet"
        raise web.HTTPNotFound(text=f"no stream {stream_id!r} (streams: {known})")
    response = web.StreamResponse(
        headers={
            "Content-Type": "multipart/x-mixed-replace; boundary=frame",
            **_headers(),
        }
    )
    await response.prepare(request)
    with state.hub.watch({stream_id}) as viewer:
        state.all_viewers.add(viewer)
        try:
            while True:
                _, item = await viewer.next()
                jpeg: bytes = item[1]
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                await response.write(head.encode() + jpeg + b"\r\n")
        except (anyio.EndOfStream, ConnectionError):
            pass  # the client left (aiohttp#3966) or the server is shutting down
        finally:
            state.all_viewers.discard(viewer)
    return response
