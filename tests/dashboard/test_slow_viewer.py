"""A viewer that stops reading loses frames (counted), never slows or changes the flow."""

from __future__ import annotations

import asyncio
import base64
import os
import socket

import pytest
from support.frames import Frames

import actorflow as af
from actorflow.dashboard import serve_dashboard
from actorflow.flowunits.dashboard.hub import FrameHub
from actorflow.flowunits.dashboard.sink import DashboardSink

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]

CAP = 3000
"""Frames the source may send while waiting for the stuck viewer's first drops."""


async def stuck_viewer(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket client that completes the handshake and then never reads again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window fills fast
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /dashboard/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert b" 101 " in status, status
    return reader, writer


async def test_a_stuck_viewer_loses_frames_and_the_flow_delivers_everything(
    hub_name: str, frame_hub: FrameHub
) -> None:
    async def paced(sent: int) -> None:  # each frame is encoded before the next is sent
        await frame_hub.wait_handled(sent)

    src = Frames(count=CAP, noise=True, size=(640, 480), after_each=paced)
    sink = DashboardSink(hub=hub_name, max_fps=0, quality=95)(src)
    flow = af.Flow([src], [sink])
    await flow.run_async()
    async with serve_dashboard(flow, port=0, hub_name=hub_name) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        _, writer = await stuck_viewer(port)
        try:
            while frame_hub.counters()["viewer_dropped"] < 5 and src.sent < CAP:
                await frame_hub.wait_handled(frame_hub.counters()["encoded"] + 1)
            src.stop.set()
            assert await flow.wait(30) is af.Status.STOP
            counts = frame_hub.counters()
        finally:
            writer.close()
    assert counts["viewer_dropped"] >= 5, counts
    stats = flow.statistics()
    node = stats.nodes["dashboard"]
    assert node.processed == src.sent == stats.nodes["frames"].emitted
    assert (node.dropped, node.failed, node.cancelled) == (0, 0, 0)
    session = stats.sessions[1]
    assert session.sent == session.delivered == src.sent
    assert session.dropped == 0
    assert stats.balanced
