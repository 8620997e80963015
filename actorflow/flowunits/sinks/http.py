"""HTTP POST sink: at-least-once webhook delivery that never drops silently.

``HttpDelivery`` is the plain async part (usable without a flow); ``HttpSink`` wraps it
as the ``http_sink`` unit. Guarantees:

* one ``aiohttp.ClientSession`` per sink, opened in ``open()`` and closed in ``close()``;
* at most ``max_in_flight`` requests at once; ``process`` waits for a free slot, so a
  slow server pushes back on the graph instead of growing memory;
* connection errors, timeouts, truncated responses, 408, 429 and 5xx are retried with
  full-jitter exponential backoff (429/503 wait at least ``Retry-After``, capped);
  other statuses are not retried;
* every attempt of one item carries the same ``Idempotency-Key`` header;
* every item ends either delivered or written to the dead-letter record (JSON lines),
  exactly once, and ``delivered + dead_lettered`` equals the number of items submitted
  once the sink has closed, also when ``close()`` is cancelled (see ``close``);
* no task of the sink outlives ``close()``, and no socket stays open.
"""

from __future__ import annotations

import asyncio
import random as _random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

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
    build_multipart,
    full_jitter,
    is_ip,
    jsonable,
    parse_retry_after,
)
from actorflow.flowunits.sinks._ledger import SinkLedger, release
from actorflow.flowunits.sinks._unit import DeliverySink

logger = structlog.get_logger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
"""Statuses worth another attempt; every other non-2xx status is final."""


class _Retry(Exception):
    def __init__(self, reason: str, status: int | None = None, wait: float | None = None):
        super().__init__(reason)
        self.reason, self.status, self.wait = reason, status, wait


@dataclass(slots=True)
class _Flight:
    """One accepted item, the task delivering it, and when its next attempt is due."""

    item: Item
    task: asyncio.Task[None] | None = None
    due: float | None = None
    """Loop time of the next attempt while the task sleeps in a backoff, else None."""
    last: _Retry | None = None
    """Why the latest attempt is to be retried."""


class HttpDelivery:
    """Delivers items to one URL; see the module docstring for the guarantees.

    Use as ``async with HttpDelivery(url, ...) as d: await d.submit(item)``; leaving the
    block runs ``close()``, which settles every item (see there).
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "POST",
        payload: Literal["json", "multipart"] = "json",
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        max_in_flight: int = 8,
        max_attempts: int = 5,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        retry_after_cap: float = 30.0,
        max_response_bytes: int = 65536,
        dead_letter: DeadLetterLog | None = None,
        allow: Iterable[str] | str | None = None,
        resolver: AbstractResolver | None = None,
        close_timeout: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        random: Random = _random.random,
        name: str = "http_sink",
    ) -> None:
        self.url = URL(url)
        if self.url.scheme not in ("http", "https") or not self.url.host:
            msg = f"url {url!r} must be an absolute http:// or https:// URL"
            raise UnitConfigError(msg)
        if max_in_flight < 1 or max_attempts < 1:
            msg = "max_in_flight and max_attempts must be at least 1"
            raise UnitConfigError(msg)
        self.method, self.payload, self.headers = method.upper(), payload, dict(headers or {})
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self.max_in_flight, self.max_attempts = max_in_flight, max_attempts
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.retry_after_cap, self.max_response_bytes = retry_after_cap, max_response_bytes
        self.dead_letters = dead_letter or DeadLetterLog(None)
        self.ledger = SinkLedger(self.dead_letters, name, str(self.url))
        self.allow = AllowList(allow) if allow is not None else None
        self._resolver, self.close_timeout = resolver, close_timeout
        self._sleep, self._random, self.name = sleep, random, name
        self.attempts = 0
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(max_in_flight)
        self._flights: dict[int, _Flight] = {}
        self._deadline: float | None = None
        """Set by ``close()``: the loop time by which every item must be settled."""

    @property
    def submitted(self) -> int:
        """Items accepted by ``submit``."""
        return self.ledger.accepted

    @property
    def delivered(self) -> int:
        """Items the server answered with a 2xx."""
        return self.ledger.delivered

    @property
    def dead_lettered(self) -> int:
        """Items written to the dead-letter record."""
        return self.ledger.dead_lettered

    @property
    def in_flight(self) -> int:
        """Items submitted and not yet settled."""
        return self.ledger.pending

    async def open(self) -> None:
        """Create the ``ClientSession`` (one per sink)."""
        resolver = self._resolver
        if self.allow is not None:
            resolver = AllowListResolver(self.allow, resolver)
        connector = aiohttp.TCPConnector(
            limit=self.max_in_flight, resolver=resolver, use_dns_cache=self.allow is None
        )
        self._session = aiohttp.ClientSession(
            timeout=self.timeout, connector=connector, raise_for_status=False
        )

    async def close(self) -> None:
        """Settle every accepted item, then close the session; bounded, cancellation-safe.

        Requests in flight get up to ``close_timeout`` seconds. An item waiting out a
        backoff or ``Retry-After`` that ends after that deadline is dead-lettered at
        once (reason ``shutdown``), as is whatever is unsettled at the deadline. If
        ``close()`` itself is cancelled (the flow's ``close_timeout``, a cancelled flow),
        what is unsettled is dead-lettered (reason ``cancelled``) before anything else is
        awaited. Then the session closes and the cancelled requests wind down, shielded,
        within ``CLEANUP_TIMEOUT``. Guarantee: afterwards ``delivered + dead_lettered ==
        submitted``, no socket is open and no task of this sink is left.
        """
        loop = asyncio.get_running_loop()
        deadline = self._deadline = loop.time() + self.close_timeout
        reason, error = "cancelled", "close() was cancelled before delivery finished"
        try:
            for flight in list(self._flights.values()):
                if flight.due is not None and flight.due > deadline:
                    self._too_late(flight, flight.due - loop.time())
            tasks = {f.task for f in self._flights.values() if f.task is not None}
            if tasks:
                await asyncio.wait(tasks, timeout=self.close_timeout)
            reason = "shutdown"
            error = f"still in flight when close_timeout ({self.close_timeout} s) ran out"
        finally:
            self.ledger.abandon(reason, error)
            left = [f.task for f in self._flights.values() if f.task is not None]
            for task in left:
                task.cancel()
            session, self._session = self._session, None
            await release(self.name, left, session)

    async def __aenter__(self) -> HttpDelivery:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def submit(self, item: Item) -> None:
        """Accept ``item`` and start delivering it; waits while ``max_in_flight`` run.

        Once this returns, the item is the sink's: it will be delivered or
        dead-lettered. An item submitted after ``close()`` began, or before ``open()``,
        is dead-lettered at once (reason ``sink_closed``).
        """
        await self._slots.acquire()
        self.ledger.accept(item)
        if self._deadline is not None or self._session is None:
            self._slots.release()
            self.ledger.dead_letter(item, "sink_closed", error="submit() outside open()..close()")
            return
        flight = _Flight(item)
        self._flights[id(item)] = flight
        flight.task = asyncio.get_running_loop().create_task(
            self._run(flight), name=f"actorflow-{self.name}-post"
        )

    async def _run(self, flight: _Flight) -> None:
        item = flight.item
        try:
            await self._deliver(flight)
        except asyncio.CancelledError:
            self.ledger.dead_letter(item, "cancelled", error="delivery task cancelled")
            raise
        except Exception as exc:  # a bug or an unencodable payload: record it, never lose it
            logger.exception("sink_error", sink=self.name, key=item.key)
            self.ledger.dead_letter(item, "sink_error", error=repr(exc))
        finally:
            self._flights.pop(id(item), None)
            self._slots.release()

    async def _deliver(self, flight: _Flight) -> None:
        """Deliver one item with retries; settles it in the ledger either way."""
        item = flight.item
        if self.allow is not None and self.url.host is not None and is_ip(self.url.host):
            try:  # IP literals never reach the resolver
                self.allow.check(self.url.host, self.url.host)
            except SsrfBlocked as exc:
                self._dead_letter(item, "ssrf_blocked", error=str(exc))
                return
        for attempt in range(self.max_attempts):
            if attempt:
                if not await self._back_off(flight, attempt):
                    return
                self.ledger.retried += 1
            item.attempts += 1
            self.attempts += 1
            try:
                status = await self._attempt(item)
            except _Retry as exc:
                flight.last = exc
                logger.info(
                    "sink_retry",
                    sink=self.name,
                    key=item.key,
                    attempt=item.attempts,
                    reason=exc.reason,
                    status=exc.status,
                )
                continue
            except SsrfBlocked as exc:
                self._dead_letter(item, "ssrf_blocked", error=str(exc))
                return
            if 200 <= status < 300:
                self.ledger.deliver(item)
            else:
                self._dead_letter(item, "sink_rejected", status=status)
            return
        last = flight.last
        assert last is not None
        self._dead_letter(item, "sink_failed", status=last.status, error=last.reason)

    async def _back_off(self, flight: _Flight, attempt: int) -> bool:
        """Sleep before retry ``attempt``; False (item dead-lettered) if due past close."""
        delay = full_jitter(attempt - 1, self.backoff_base, self.backoff_cap, self._random)
        last = flight.last
        if last is not None and last.wait is not None:
            delay = max(delay, min(last.wait, self.retry_after_cap))
        due = asyncio.get_running_loop().time() + delay
        if self._deadline is not None and due > self._deadline:
            self._too_late(flight, delay)
            return False
        flight.due = due
        try:
            await self._sleep(delay)
        finally:
            flight.due = None
        return True

    def _too_late(self, flight: _Flight, wait: float) -> None:
        """Dead-letter an item whose next attempt would come after the close deadline."""
        last = flight.last
        error = f"next attempt due in {wait:.1f} s, after close_timeout ({self.close_timeout} s)"
        if last is not None:
            error += f"; last attempt: {last.reason}"
        self._dead_letter(
            flight.item, "shutdown", status=last.status if last else None, error=error
        )
        if flight.task is not None and flight.task is not asyncio.current_task():
            flight.task.cancel()

    async def _attempt(self, item: Item) -> int:
        assert self._session is not None
        headers = {
            **self.headers,
            "Idempotency-Key": item.key,
            "X-Actorflow-Session": str(item.session),
            "X-Actorflow-Seq": str(item.seq),
        }
        body: dict[str, Any] = (
            {"data": build_multipart(item.data)}
            if self.payload == "multipart"
            else {"json": jsonable(item.data)}
        )
        try:
            async with self._session.request(
                self.method, self.url, headers=headers, allow_redirects=False, **body
            ) as resp:
                await self._read_capped(resp)
                status = resp.status
                if status in RETRYABLE_STATUS:
                    wait = parse_retry_after(resp.headers.get("Retry-After"))
                    reason = f"HTTP {status}"
                    raise _Retry(reason, status, wait)
                return status
        except SsrfBlocked:
            raise
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.__cause__, SsrfBlocked):
                raise exc.__cause__ from None
            reason = f"DNS: {exc}"
            raise _Retry(reason) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise _Retry(reason) from exc

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> None:
        remaining = self.max_response_bytes
        while remaining > 0:
            chunk = await resp.content.read(min(remaining, 16384))
            if not chunk:
                return
            remaining -= len(chunk)

    def _dead_letter(
        self, item: Item, reason: str, *, status: int | None = None, error: str | None = None
    ) -> None:
        self.ledger.dead_letter(item, reason, status=status, error=error)


class HttpSink(DeliverySink):
    """POST each packet to ``url`` (webhook delivery, at least once).

    Parameters mirror ``HttpDelivery``; ``dead_letter`` is a JSON-lines path (relative
    to the graph file) and ``allow`` an optional allow-list of hosts and networks.
    ``accepted``, ``delivered``, ``retried`` and ``dead_lettered`` count over restarts;
    after ``close`` (returned or cancelled) ``delivered + dead_lettered == accepted``.
    """

    name: ClassVar[str] = "http_sink"
    delivery_class = HttpDelivery

    def __init__(
        self,
        *,
        url: str,
        method: str = "POST",
        payload: Literal["json", "multipart"] = "json",
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        max_in_flight: int = 8,
        max_attempts: int = 5,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        retry_after_cap: float = 30.0,
        dead_letter: str | None = None,
        allow: Sequence[str] | str | None = None,
        close_timeout: float = 10.0,
        flow_name: str = "",
        sleep: Sleep = asyncio.sleep,
        random: Random = _random.random,
    ) -> None:
        if payload not in ("json", "multipart"):
            msg = f"payload must be 'json' or 'multipart', got {payload!r}"
            raise UnitConfigError(msg)
        options: dict[str, Any] = {
            "method": method,
            "payload": payload,
            "headers": headers,
            "timeout": timeout,
            "connect_timeout": connect_timeout,
            "max_in_flight": max_in_flight,
            "max_attempts": max_attempts,
            "backoff_base": backoff_base,
            "backoff_cap": backoff_cap,
            "retry_after_cap": retry_after_cap,
            "allow": allow,
            "close_timeout": close_timeout,
            "sleep": sleep,
            "random": random,
        }
        self._configure(url, options, dead_letter, flow_name)
