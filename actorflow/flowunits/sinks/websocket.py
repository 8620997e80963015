"""WebSocket sink: a long-lived connection that reconnects without storms.

``WebSocketDelivery`` is the plain async part; ``WebSocketSink`` wraps it as the
``websocket_sink`` unit. Guarantees:

* one ``ClientSession`` and at most one connection per sink; ``heartbeat`` pings detect a
  silent peer (aiohttp closes the connection when a pong is late) and trigger a reconnect;
* reconnects never come in a storm: the first one after a drop waits a random 1x to 3x
  ``backoff_base`` (Action Cable's rule), later ones a full-jitter exponential delay,
  never less than ``backoff_base``, capped at ``backoff_cap``; close codes 1012
  (service restart) and 1013 (try again later) get the same floor;
* while disconnected, items wait in a buffer of ``buffer_size``; past it they are
  written to the dead-letter record (reason ``buffer_full``), never dropped silently;
* with ``ack=True`` each message is ``{"id", "session", "seq", "lineage", "data"}`` and
  counts as delivered only when the server answers ``{"ack": id}``; unacknowledged
  messages are sent again (same ``id``) after a reconnect, so delivery is at least once.
  Without ``ack`` a message counts as delivered once written to the socket.
* after ``close()``, ``delivered + dead_lettered`` equals the items submitted, also when
  ``close()`` is cancelled; the connection task (even one stuck in the opening
  handshake) ends with it and no socket stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random as _random
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver
from yarl import URL

from actorflow.errors import UnitConfigError
from actorflow.flowunits.sinks._delivery import (
    AllowList,
    AllowListResolver,
    DeadLetterLog,
    Item,
    Random,
    Sleep,
    SsrfBlocked,
    is_ip,
    jsonable,
)
from actorflow.flowunits.sinks._ledger import SinkLedger, release
from actorflow.flowunits.sinks._unit import DeliverySink

logger = structlog.get_logger(__name__)

RESTART_CODES = frozenset({1012, 1013})
"""Close codes asking the client to come back later (service restart, try again later)."""


def reconnect_delay(failures: int, base: float, cap: float, rnd: Random) -> float:
    """Delay before reconnect number ``failures`` (0: first after a drop).

    The first waits uniform(1, 3) * base; later ones full jitter over
    ``min(cap, base * 2**(failures + 1))``, never less than ``base``.
    """
    if failures == 0:
        return min(cap, base * (1.0 + 2.0 * float(rnd())))
    return max(base, float(rnd()) * min(cap, base * 2.0 ** (failures + 1)))


class WebSocketDelivery:
    """Sends items over one reconnecting WebSocket; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        heartbeat: float = 10.0,
        buffer_size: int = 1000,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        ack: bool = False,
        envelope: bool = False,
        window: int = 64,
        connect_timeout: float = 5.0,
        close_timeout: float = 10.0,
        dead_letter: DeadLetterLog | None = None,
        allow: Iterable[str] | str | None = None,
        resolver: AbstractResolver | None = None,
        sleep: Sleep = asyncio.sleep,
        random: Random = _random.random,
        name: str = "websocket_sink",
    ) -> None:
        self.url = URL(url)
        if self.url.scheme not in ("ws", "wss") or not self.url.host:
            msg = f"url {url!r} must be an absolute ws:// or wss:// URL"
            raise UnitConfigError(msg)
        if buffer_size < 1 or window < 1:
            msg = "buffer_size and window must be at least 1"
            raise UnitConfigError(msg)
        self.heartbeat, self.buffer_size, self.window = heartbeat, buffer_size, window
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.ack, self.envelope = ack, envelope or ack
        self.connect_timeout, self.close_timeout = connect_timeout, close_timeout
        self.dead_letters = dead_letter or DeadLetterLog(None)
        self.ledger = SinkLedger(self.dead_letters, name, str(self.url))
        self.allow = AllowList(allow) if allow is not None else None
        self._resolver, self._sleep, self._random, self.name = resolver, sleep, random, name
        self.connects = 0
        self.reconnect_delays: list[float] = []
        """Every reconnect delay chosen, in order (for tests and metrics)."""
        self.close_codes: list[int | None] = []
        self._buffer: deque[Item] = deque()
        self._unacked: OrderedDict[str, Item] = OrderedDict()
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()
        self._connected = False
        self._closing = False
        self._stopped_by: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def submitted(self) -> int:
        """Items accepted by ``submit``."""
        return self.ledger.accepted

    @property
    def delivered(self) -> int:
        """Items written to the socket (acknowledged, with ``ack``)."""
        return self.ledger.delivered

    @property
    def dead_lettered(self) -> int:
        """Items written to the dead-letter record."""
        return self.ledger.dead_lettered

    @property
    def connected(self) -> bool:
        """Whether a connection is up right now."""
        return self._connected

    @property
    def pending(self) -> int:
        """Items buffered or sent and awaiting acknowledgement."""
        return self.ledger.pending

    async def open(self) -> None:
        """Create the session and start connecting in the background.

        The session's timeout bounds each opening handshake by ``connect_timeout``.
        """
        resolver = self._resolver
        if self.allow is not None:
            resolver = AllowListResolver(self.allow, resolver)
        connector = aiohttp.TCPConnector(
            limit=1, resolver=resolver, use_dns_cache=self.allow is None
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.connect_timeout)
        )
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"actorflow-{self.name}-ws"
        )

    async def __aenter__(self) -> WebSocketDelivery:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def submit(self, item: Item) -> None:
        """Accept ``item``; waits for room while connected, dead-letters past the buffer.

        Once this returns the item is the sink's: it will be delivered or dead-lettered
        (``buffer_full`` while disconnected with a full buffer; ``sink_closed`` after
        ``close()`` began; the reason the connection loop stopped, e.g.
        ``ssrf_blocked``, once it has).
        """
        while len(self._buffer) >= self.buffer_size and self._connected and not self._closing:
            self._space.clear()
            await self._space.wait()
        self.ledger.accept(item)
        running = self._task is not None and not self._task.done()
        if self._closing or not running:
            self.ledger.dead_letter(item, self._stopped_by or "sink_closed")
        elif len(self._buffer) >= self.buffer_size:
            self.ledger.dead_letter(item, "buffer_full")
        else:
            self._buffer.append(item)
            self._wakeup.set()

    async def close(self) -> None:
        """Flush for up to ``close_timeout``, settle every item, close; cancellation-safe.

        What is still buffered or unacknowledged at the deadline is dead-lettered
        (reason ``shutdown``); if ``close()`` itself is cancelled (the flow's
        ``close_timeout``, a cancelled flow), it is dead-lettered with reason
        ``cancelled`` before anything else is awaited. Then the connection task is
        cancelled (also mid-handshake) and the session closed, shielded, within
        ``CLEANUP_TIMEOUT``. Guarantee: afterwards ``delivered + dead_lettered ==
        submitted``, no socket is open and the sink's task has ended.
        """
        self._closing = True
        self._wakeup.set()
        self._space.set()
        reason, error = "cancelled", "close() was cancelled before delivery finished"
        try:
            if self._task is not None and not self._task.done():
                await asyncio.wait({self._task}, timeout=self.close_timeout)
            reason = self._stopped_by or "shutdown"
            error = f"not delivered within close_timeout ({self.close_timeout} s)"
        finally:
            tasks = [self._task] if self._task is not None else []
            for task in tasks:
                task.cancel()
            self.ledger.abandon(reason, error)
            self._unacked.clear()
            self._buffer.clear()
            session, self._session = self._session, None
            await release(self.name, tasks, session)

    # -- connection management ---------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._connect_loop()
        except Exception as exc:  # a bug: record it and dead-letter instead of hanging
            logger.exception("sink_error", sink=self.name)
            self._stop("sink_error", repr(exc))

    def _stop(self, reason: str, error: str) -> None:
        """The connection loop gives up for good: settle what waits, refuse the rest."""
        self._stopped_by = reason
        self.ledger.abandon(reason, error)
        self._buffer.clear()
        self._unacked.clear()
        self._space.set()

    async def _connect_loop(self) -> None:
        failures = 0
        wait_first = False
        while not (self._closing and not self.pending):
            if wait_first:
                delay = reconnect_delay(failures, self.backoff_base, self.backoff_cap, self._random)
                failures += 1
                self.reconnect_delays.append(delay)
                await self._sleep(delay)
            wait_first = True
            try:
                ws = await self._connect()
            except SsrfBlocked as exc:
                logger.error("sink_blocked", sink=self.name, error=str(exc))
                self._stop("ssrf_blocked", str(exc))
                return
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                logger.info("ws_connect_failed", sink=self.name, error=repr(exc), failures=failures)
                continue
            failures = 0
            code = await self._pump(ws)
            self.close_codes.append(code)
            logger.info(
                "ws_disconnected",
                sink=self.name,
                code=code,
                pending=self.pending,
                restart=code in RESTART_CODES,
            )

    async def _connect(self) -> aiohttp.ClientWebSocketResponse:
        assert self._session is not None
        host = self.url.host or ""
        if self.allow is not None and is_ip(host):
            self.allow.check(host, host.strip("[]"))
        try:
            ws = await self._session.ws_connect(
                self.url,
                heartbeat=self.heartbeat,
                autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self.connect_timeout),
            )
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.__cause__, SsrfBlocked):
                raise exc.__cause__ from None
            raise
        self.connects += 1
        return ws

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> int | None:
        self._connected = True
        self._space.set()
        reader = asyncio.get_running_loop().create_task(
            self._read(ws), name=f"actorflow-{self.name}-ws-read"
        )
        try:
            while not ws.closed and not reader.done():
                if self._closing and not self.pending:
                    break
                if not self._buffer or len(self._unacked) >= self.window:
                    await self._wait(reader)
                    continue
                item = self._buffer[0]
                item.attempts += 1
                try:
                    await ws.send_str(self._encode(item))
                except (aiohttp.ClientError, ConnectionError, RuntimeError):
                    break
                self._buffer.popleft()
                self._space.set()
                if self.ack:
                    self._unacked[item.key] = item
                else:
                    self.ledger.deliver(item)
        finally:
            self._connected = False
            reader.cancel()
            await asyncio.wait({reader})  # never swallows this task's own cancellation
            task = asyncio.current_task()
            if task is None or not task.cancelling():  # cancelled: the session closes it
                with contextlib.suppress(aiohttp.ClientError, ConnectionError, TimeoutError):
                    await asyncio.wait_for(ws.close(), self.connect_timeout)
            if self._unacked:  # send again, in order, after the next connect
                self.ledger.retried += len(self._unacked)
                self._buffer.extendleft(reversed(self._unacked.values()))
                self._unacked.clear()
            self._space.set()
        return ws.close_code

    async def _wait(self, reader: asyncio.Task[None]) -> None:
        self._wakeup.clear()
        waiter = asyncio.ensure_future(self._wakeup.wait())
        try:
            await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT and self.ack:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    item = self._unacked.pop(str(json.loads(msg.data)["ack"]), None)
                    if item is not None:
                        self.ledger.deliver(item)
                        self._wakeup.set()

    def _encode(self, item: Item) -> str:
        if not self.envelope:
            return json.dumps(jsonable(item.data), ensure_ascii=False)
        return json.dumps(
            {
                "id": item.key,
                "session": item.session,
                "seq": item.seq,
                "lineage": list(item.lineage),
                "data": jsonable(item.data),
            },
            ensure_ascii=False,
        )


class WebSocketSink(DeliverySink):
    """Send each packet over a reconnecting WebSocket (see ``WebSocketDelivery``).

    ``dead_letter`` is a JSON-lines path (relative to the graph file); ``allow`` an
    optional allow-list of hosts and networks.
    """

    name: ClassVar[str] = "websocket_sink"
    delivery_class = WebSocketDelivery

    def __init__(
        self,
        *,
        url: str,
        heartbeat: float = 10.0,
        buffer_size: int = 1000,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        ack: bool = False,
        envelope: bool = False,
        window: int = 64,
        connect_timeout: float = 5.0,
        close_timeout: float = 10.0,
        dead_letter: str | None = None,
        allow: Sequence[str] | str | None = None,
        flow_name: str = "",
        sleep: Sleep = asyncio.sleep,
        random: Random = _random.random,
    ) -> None:
        options: dict[str, Any] = {
            "heartbeat": heartbeat,
            "buffer_size": buffer_size,
            "backoff_base": backoff_base,
            "backoff_cap": backoff_cap,
            "ack": ack,
            "envelope": envelope,
            "window": window,
            "connect_timeout": connect_timeout,
            "close_timeout": close_timeout,
            "allow": allow,
            "sleep": sleep,
            "random": random,
        }
        self._configure(url, options, dead_letter, flow_name)
