"""The HTTP server under ``actorflow serve``: aiohttp's, with the doors a client can hold.

aiohttp has no request-head timeout and no connection cap: a client sending its
headers a byte at a time (slowloris), or thousands of half-open sockets, keep file
descriptors until the process runs out and nobody is answered. ``GuardedRunner``
serves an application with ``GuardedHandler`` connections instead:

* **head timeout**: a connection must deliver a complete request head within
  ``Limits.header_timeout`` seconds of connecting, or of its first byte after a
  previous response; past it the connection is closed;
* **idle keep-alive**: a connection with no byte of a next request is closed after
  ``Limits.keepalive_timeout`` (aiohttp's own timer);
* **connection cap**: past ``Limits.connection_cap()`` open connections, the oldest
  connection that is not serving a request (still sending its head, or idle) is
  closed to admit the new one; when every connection is busy the new one is closed.
  So half-open sockets can never lock normal clients out, and the process never runs
  out of file descriptors (the cap stays below ``RLIMIT_NOFILE``);
* **malformed HTTP** is answered with the JSON error body, logged at most a few times
  per period (``RateLimitedLog``), like every event an attacker can repeat.

Counters of what was closed are in ``GuardedRunner.guard`` (``head_timeouts``,
``evicted``, ``refused``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from actorflow.serve._errors import body, dumps
from actorflow.serve._limits import Limits
from actorflow.serve._ratelog import RateLimitedLog

logger = RateLimitedLog(structlog.get_logger(__name__))


class Guard:
    """Open connections of one server, in the order they were accepted.

    Attributes:
        cap: the most connections open at once.
        header_timeout: seconds for a complete request head.
        head_timeouts: connections closed for a late request head.
        evicted: idle connections closed to admit a new one at the cap.
        refused: new connections closed at the cap because every other was busy.
    """

    def __init__(self, limits: Limits) -> None:
        self.cap = limits.connection_cap()
        self.header_timeout = limits.header_timeout
        self.open: dict[GuardedHandler, None] = {}
        self.head_timeouts = self.evicted = self.refused = 0

    def admit(self, new: GuardedHandler) -> None:
        """Register ``new``; at the cap close the oldest idle connection, or ``new``."""
        self.open[new] = None
        if len(self.open) <= self.cap:
            return
        for old in self.open:
            if old is not new and old.awaiting_head():
                self.forget(old)
                self.evicted += 1
                logger.warning("connection_evicted", open=len(self.open), cap=self.cap)
                old.force_close()
                return
        self.forget(new)
        self.refused += 1
        logger.warning("connection_refused", open=len(self.open), cap=self.cap)
        new.force_close()

    def forget(self, handler: GuardedHandler) -> None:
        """Stop counting ``handler`` (closed or closing)."""
        self.open.pop(handler, None)


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler with a request-head deadline (module docstring)."""

    def __init__(self, manager: web.Server, *, guard: Guard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the head deadline and take a place under the connection cap."""
        super().connection_made(transport)
        self._arm()
        self._guard.admit(self)

    def data_received(self, data: bytes) -> None:
        """Feed aiohttp's parser; a complete head stops the deadline, a first byte starts it."""
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self._disarm()
        elif self._head_timer is None and self.awaiting_head():
            self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        """Forget the connection and its deadline."""
        self._disarm()
        self._guard.forget(self)
        super().connection_lost(exc)

    def awaiting_head(self) -> bool:
        """Whether no request is queued or being served (sending a head, or idle)."""
        return not (
            self._messages
            or self._request_in_progress
            or self._upgraded
            or self._payload_parser is not None
            or self._force_close
        )

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self._loop.call_later(self._guard.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expired(self) -> None:
        self._head_timer = None
        if self.awaiting_head():
            self._guard.head_timeouts += 1
            logger.warning("request_head_timeout", timeout_s=self._guard.header_timeout)
            self.force_close()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Malformed HTTP: the JSON error body, a rate-limited log line, then close."""
        if request.writer.output_size > 0:
            msg = "response already started; cannot send an error body"
            raise ConnectionError(msg)
        text = message or (str(exc) if exc is not None else "") or "malformed request"
        logger.warning("bad_http_request", status=status, error=text[:200])
        reason = "http" if status < 500 else "internal"
        response = web.Response(
            status=status,
            text=dumps(body(status, text[:500], reason)),
            content_type="application/json",
        )
        response.force_close()
        return response


class GuardedServer(web.Server):
    """``web.Server`` whose connections are ``GuardedHandler``."""

    def __init__(self, handler: Any, *, guard: Guard, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._guard = guard

    def __call__(self) -> GuardedHandler:
        """A new connection's protocol."""
        return GuardedHandler(self, loop=self._loop, guard=self._guard, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """``web.AppRunner`` serving through ``GuardedServer`` under ``limits``."""

    def __init__(self, app: web.Application, limits: Limits, **kwargs: Any) -> None:
        kwargs.setdefault("access_log", None)
        kwargs.setdefault("handler_cancellation", True)
        kwargs["keepalive_timeout"] = limits.keepalive_timeout
        super().__init__(app, **kwargs)
        self.guard = Guard(limits)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # the app's own server, never started
        return GuardedServer(
            plain.request_handler,
            guard=self.guard,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **plain._kwargs,
        )


async def start(
    app: web.Application, host: str, port: int, limits: Limits, **runner_options: Any
) -> GuardedRunner:
    """Set up and start ``app`` on ``host:port``; the caller cleans the runner up."""
    runner = GuardedRunner(app, limits, **runner_options)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
