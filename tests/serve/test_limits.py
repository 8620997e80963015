"""Resource limits on every door, tried as an attacker would, on real 127.0.0.1 sockets.

No timing is asserted: each test checks that the attacking socket gets closed (or the
refusal arrives) and that a normal request is still answered.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
import pytest

import actorflow.serve._app as serve_app
from actorflow.runtime import Flow
from actorflow.serve import GuardedRunner, Limits, build_app, start
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


class Echo(FlowUnit):
    """Echoes its input (repeated ``times`` times when it is a string)."""

    name: ClassVar[str] = "test_limits_echo"
    x: ClassVar[Input[Any]] = Input("x", object)
    y: ClassVar[Output[Any]] = Output("y", object)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit(self.y, packet.replace(packet.data))


GRAPH = {
    "name": "echo",
    "nodes": {
        "x": {"type": "input"},
        "echo": {"flowunit": "test_limits_echo"},
        "y": {"type": "output"},
    },
    "edges": ["x -> echo:x", "echo:y -> y"],
}


async def serving(limits: Limits) -> tuple[GuardedRunner, int, Flow]:
    flow = Flow(GRAPH)
    runner = await start(build_app(flow, limits=limits), "127.0.0.1", 0, limits)
    return runner, runner.addresses[0][1], flow


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def infer(http: aiohttp.ClientSession, port: int, x: Any = 1) -> Any:
    async with http.post(f"http://127.0.0.1:{port}/v1/infer", json={"inputs": {"x": x}}) as r:
        assert r.status == 200
        return await r.json()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Read until the server closes; True when it did (EOF or reset)."""
    try:
        async with asyncio.timeout(60):  # a safety net, not a timing assert
            while await reader.read(65536):
                pass
    except ConnectionResetError:
        pass
    return True


async def dribble(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """Slowloris: a request head a byte at a time, never finished."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 10_000
    for byte in head:
        if stop.is_set() or writer.is_closing():
            return
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(0.05)  # the attack's pace, not a synchronisation


async def test_slowloris_sockets_are_closed_and_others_answered(
    http: aiohttp.ClientSession,
) -> None:
    runner, port, _ = await serving(Limits(header_timeout=0.5))
    stop = asyncio.Event()
    try:
        sockets = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        tasks = [asyncio.ensure_future(dribble(w, stop)) for _, w in sockets]
        assert await infer(http, port) == {"outputs": {"y": [1]}, "errors": []}
        assert all([await closed_by_server(r) for r, _ in sockets])
        assert runner.guard.head_timeouts == 5
        assert await infer(http, port, 2) == {"outputs": {"y": [2]}, "errors": []}
    finally:
        stop.set()
        for _, w in sockets:
            w.close()
        await asyncio.gather(*tasks)
        await runner.cleanup()


async def test_silent_connection_is_closed_after_the_head_timeout() -> None:
    runner, port, _ = await serving(Limits(header_timeout=0.2))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_by_server(reader)
        writer.close()
        assert runner.guard.head_timeouts == 1
    finally:
        await runner.cleanup()


async def request_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """One keep-alive ``GET /healthz`` on a raw connection; returns the body."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return await reader.readexactly(length)


async def test_idle_keepalive_connection_is_closed() -> None:
    runner, port, _ = await serving(Limits(keepalive_timeout=0.2, header_timeout=60))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert json.loads(await request_on(reader, writer)) == {"status": "ok", "flow": "running"}
        assert await closed_by_server(reader)
        writer.close()
    finally:
        await runner.cleanup()


async def test_half_open_sockets_past_the_cap_evict_the_oldest_idle_ones(
    http: aiohttp.ClientSession,
) -> None:
    runner, port, _ = await serving(Limits(max_connections=8, header_timeout=60))
    try:
        half_open = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        for _, w in half_open:
            w.write(b"GET /healthz HTTP/1.1\r\n")  # a head that never ends
        # accepted after the 20 (the listen queue is FIFO), so answered after they were
        assert await infer(http, port) == {"outputs": {"y": [1]}, "errors": []}
        assert runner.guard.evicted == 13  # 21 connections, cap 8
        assert all([await closed_by_server(r) for r, _ in half_open[:13]])
        assert len(runner.guard.open) <= 8
    finally:
        for _, w in half_open:
            w.close()
        await runner.cleanup()


async def start_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> None:
    """Send a POST head and wait until its handler runs (``100 Continue`` says so)."""
    writer.write(
        b"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")


async def test_connection_serving_a_request_is_never_evicted(
    http: aiohttp.ClientSession,
) -> None:
    runner, port, _ = await serving(Limits(max_connections=2, header_timeout=60))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"inputs": {"x": 5}}).encode()
        await start_request(reader, writer, body)
        writer.write(body[:5])  # head complete, body pending: a request in progress
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        assert await infer(http, port) == {"outputs": {"y": [1]}, "errors": []}
        writer.write(body[5:])
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert runner.guard.evicted >= 2
    finally:
        writer.close()
        for _, w in idle:
            w.close()
        await runner.cleanup()


async def test_slow_body_is_408_json() -> None:
    runner, port, _ = await serving(Limits(body_timeout=0.2, header_timeout=60))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        doc = json.loads(await reader.readexactly(length))
        assert (doc["status"], doc["reason"]) == (408, "timeout")
        writer.close()
    finally:
        await runner.cleanup()


async def test_malformed_http_is_a_json_400() -> None:
    runner, port, _ = await serving(Limits())
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"400"
        assert b"application/json" in head
        doc = json.loads(await reader.read())
        assert doc["status"] == 400
        writer.close()
    finally:
        await runner.cleanup()


MOST_FRAMES = 20_000
"""Frames (of 30 kB) the never-reading client sends at most before giving up."""


def never_reading_client(port: int, text: str, sent: threading.Event) -> socket.socket:
    """A WebSocket client that sends text frames until the server closes it, never reading.

    It sends until closed, not a fixed number of frames: how many results the kernel's
    socket buffers absorb before the server's own send buffer fills depends on the
    machine, so a fixed count may never reach ``ws_send_buffer``. ``MOST_FRAMES`` only
    bounds a server that never closes it (the test then fails on its timeout).
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    payload = json.dumps({"inputs": {"x": text}}).encode()
    n = len(payload)
    length = (
        bytes([0x80 | 126]) + n.to_bytes(2, "big")
        if n < 65536
        else bytes([0x80 | 127]) + n.to_bytes(8, "big")
    )
    frame = b"\x81" + length + b"\0\0\0\0" + payload  # a zero mask leaves the payload as is
    try:
        for _ in range(MOST_FRAMES):
            sock.sendall(frame)
    except (ConnectionResetError, BrokenPipeError):
        pass  # the server closed this slow client: the behaviour under test
    sent.set()
    return sock


async def test_a_websocket_client_that_never_reads_is_closed_and_blocks_nobody(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = asyncio.Event()
    original = serve_app._close_slow

    async def close_slow(*args: Any) -> None:
        await original(*args)
        closed.set()

    monkeypatch.setattr(serve_app, "_close_slow", close_slow)
    runner, port, flow = await serving(Limits(ws_send_buffer=256 * 1024, header_timeout=60))
    sent = threading.Event()
    try:
        sock = await asyncio.to_thread(never_reading_client, port, "a" * 30_000, sent)
        await closed.wait()
        assert await infer(http, port) == {"outputs": {"y": [1]}, "errors": []}
        async with http.ws_connect(f"http://127.0.0.1:{port}/v1/stream") as ws:
            await ws.send_json({"inputs": {"x": 3}})
            assert (await ws.receive_json())["data"] == 3
            await ws.send_json({"end": True})
            assert await ws.receive_json() == {"end": True}
        text = (await http.get(f"http://127.0.0.1:{port}/metrics")).content
        metrics = (await text.read()).decode()
        assert "actorflow_ws_slow_clients_closed_total 1.0" in metrics
        assert await asyncio.to_thread(drained_to_eof, sock)
    finally:
        await runner.cleanup()
    assert all(s.balanced for s in flow.statistics().sessions.values())


def drained_to_eof(sock: socket.socket) -> bool:
    """Read what the server sent until it closed the socket."""
    sock.settimeout(60)  # a safety net, not a timing assert
    try:
        while sock.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return True


async def test_at_the_cap_with_every_connection_busy_the_new_one_is_closed() -> None:
    runner, port, _ = await serving(Limits(max_connections=1, header_timeout=60))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"inputs": {"x": 7}}).encode()
        await start_request(reader, writer, body)
        writer.write(body[:3])  # a request in progress: never evicted
        late_reader, late_writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_by_server(late_reader)
        late_writer.close()
        assert runner.guard.refused == 1
        writer.write(body[3:])
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        await runner.cleanup()
