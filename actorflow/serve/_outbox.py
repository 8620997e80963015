"""A per-connection send buffer: the session is read at once, the client at its own pace.

``Outbox.put`` never waits: it accepts an encoded message while the bytes waiting
stay within the limit and refuses it (``False``) past that, so the caller can close
a client that does not read instead of letting it hold back shared output nodes.
``send_outbox`` sends what is queued, in order, then ``{"end": true}`` and a normal
close once ``finish`` was called.
"""

from __future__ import annotations

from collections import deque

import anyio
from aiohttp import web

END = '{"end": true}'


class Outbox:
    """Encoded messages waiting for one WebSocket client, bounded in bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0
        self._messages: deque[str] = deque()
        self._finished = False
        self._ready = anyio.Event()

    def put(self, text: str) -> bool:
        """Queue ``text``; ``False`` (nothing queued) when it would pass the limit."""
        size = len(text)
        if self._messages and self.waiting + size > self.limit:
            return False
        self._messages.append(text)
        self.waiting += size
        self._ready.set()
        return True

    def finish(self) -> None:
        """No more messages: the sender ends the stream once the queue is sent."""
        self._finished = True
        self._ready.set()

    def discard(self) -> int:
        """Drop every queued message; returns how many were dropped."""
        dropped = len(self._messages)
        self._messages.clear()
        self.waiting = 0
        return dropped

    async def get(self) -> str | None:
        """The next message, or ``None`` once finished and empty."""
        while not self._messages:
            if self._finished:
                return None
            self._ready = anyio.Event()
            await self._ready.wait()
        text = self._messages.popleft()
        self.waiting -= len(text)
        return text


async def send_outbox(ws: web.WebSocketResponse, outbox: Outbox) -> None:
    """Send ``outbox`` to ``ws`` until finished, then end the stream and close."""
    try:
        while (text := await outbox.get()) is not None:
            if ws.closed:
                return
            await ws.send_str(text)
        if not ws.closed:
            await ws.send_str(END)
            await ws.close()
    except ConnectionError:  # the client went away; the handler cleans up
        return
