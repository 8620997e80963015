"""Misbehaving servers on 127.0.0.1 for the sink tests (real sockets, no mocks)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Scripted:
    """An HTTP server whose answer to each key's n-th attempt is scripted.

    Actions: ``"ok"`` (200, body recorded in ``accepted``), ``"slow"`` (waits for
    ``release``), ``"hang"`` (never answers), ``"cut"`` (closes the connection mid-body),
    ``"vanish"`` (closes the connection before any response), ``"stall_body"`` (sends
    the headers and 10 of 100 bytes, then nothing), ``"429 N"`` / ``"503 N"`` (that
    status with ``Retry-After: N``), or any other status code.
    """

    def __init__(self, script: Callable[[str, int], str]) -> None:
        self.script = script
        self.attempts: Counter[str] = Counter()
        self.accepted: dict[str, Any] = {}
        self.keys_seen: list[str] = []
        self.active = self.peak = 0
        self.release = asyncio.Event()
        self.arrived = asyncio.Condition()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait (10 s at most) until ``predicate()`` holds after a request arrived."""
        async with asyncio.timeout(10):
            async with self.arrived:
                await self.arrived.wait_for(predicate)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = request.headers["Idempotency-Key"]
        self.keys_seen.append(key)
        n = self.attempts[key]
        self.attempts[key] += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        async with self.arrived:
            self.arrived.notify_all()
        try:
            return await self._answer(request, key, self.script(key, n))
        finally:
            self.active -= 1

    async def _answer(self, request: web.Request, key: str, action: str) -> web.StreamResponse:
        if action == "ok":
            self.accepted[key] = await request.json()
            return web.json_response({"ok": True})
        if action == "slow":
            await asyncio.wait_for(self.release.wait(), 10)
            return web.Response(status=200)
        if action == "hang":
            await asyncio.Event().wait()
        if action == "stall_body":
            resp = web.StreamResponse(headers={"Content-Length": "100"})
            await resp.prepare(request)
            await resp.write(b"x" * 10)
            await asyncio.Event().wait()
        if action in ("cut", "vanish"):
            resp = web.StreamResponse(headers={"Content-Length": "100"})
            assert request.transport is not None
            if action == "vanish":
                request.transport.abort()
                return resp
            await resp.prepare(request)
            await resp.write(b"x" * 10)
            request.transport.close()
            return resp
        status, _, retry_after = action.partition(" ")
        if status in ("429", "503"):
            return web.Response(status=int(status), headers={"Retry-After": retry_after or "1"})
        return web.Response(status=int(status), text="no")


async def serve(handler: Handler) -> TestServer:
    """Start ``handler`` at ``/hook`` on 127.0.0.1 (use as ``async with await serve(h)``)."""
    app = web.Application()
    app.router.add_route("*", "/hook", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


class Stalling:
    """A TCP server that accepts connections and never answers (a stuck handshake)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.connected = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        self.connected.set()

    async def __aenter__(self) -> Stalling:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
