"""What the network sinks share: backoff, Retry-After, dead letters, payloads, allow-lists.

Used by ``http_sink`` and ``websocket_sink``: full-jitter backoff, ``Retry-After``
parsing, the JSON-lines dead-letter record, JSON and multipart payloads built from
packets, the resolved-address allow-list (SSRF guard), and idempotency keys.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult

from actorflow.errors import ActorFlowError
from actorflow.unit import Context

logger = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
"""An injectable ``asyncio.sleep`` (tests pass a recorder)."""
Random = Callable[[], float]
"""An injectable ``random.random``: a float in [0, 1)."""


class SsrfBlocked(ActorFlowError, PermissionError):
    """A sink destination resolved to an address the allow-list does not permit."""

    def __init__(self, host: str, ip: str) -> None:
        self.host, self.ip = host, ip
        super().__init__(
            f"refusing to connect to {host!r} ({ip}): address not allow-listed; "
            "add the host or network to the sink's 'allow' parameter"
        )


# -- backoff ---------------------------------------------------------------------------


def full_jitter(attempt: int, base: float, cap: float, rnd: Random) -> float:
    """Delay before retry ``attempt`` (0-based): uniform in [0, min(cap, base * 2**attempt))."""
    return float(rnd() * min(cap, base * (2**attempt)))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


# -- dead letters ----------------------------------------------------------------------


MAX_PAYLOAD_CHARS = 65536
"""Payloads larger than this (as JSON text) are left out of dead-letter records."""


class DeadLetterLog:
    """Records items a sink could not deliver, one JSON object per line.

    With ``path=None`` the records are only logged (event ``dead_letter``) and kept in
    memory. ``records`` keeps the last ``keep`` records either way. Header values are
    never written (they may hold credentials).
    """

    def __init__(self, path: str | Path | None, *, keep: int = 1000) -> None:
        self.path = Path(path) if path is not None else None
        self.count = 0
        self.records: list[dict[str, Any]] = []
        self._keep = keep

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (a small synchronous write, flushed at once)."""
        record = {"time": round(time.time(), 3), **record}
        self.count += 1
        self.records.append(record)
        del self.records[: max(0, len(self.records) - self._keep)]
        logger.warning("dead_letter", **{k: v for k, v in record.items() if k != "payload"})
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    def write_item(self, item: Item, **fields: Any) -> None:
        """Record one undelivered item: ``fields``, its identity, and its payload.

        The payload is kept when it encodes as JSON within ``MAX_PAYLOAD_CHARS``;
        otherwise the record says ``payload_omitted``.
        """
        record: dict[str, Any] = {
            **fields,
            "key": item.key,
            "session": item.session,
            "seq": item.seq,
            "lineage": list(item.lineage),
        }
        try:
            text = json.dumps(jsonable(item.data))
        except (TypeError, ValueError):
            text = None
        if text is not None and len(text) <= MAX_PAYLOAD_CHARS:
            record["payload"] = json.loads(text)
        else:
            record["payload_omitted"] = True
        self.write(record)


# -- payloads --------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Convert packet data to JSON-compatible values (arrays to lists, bytes to base64)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars
        return jsonable(tolist())
    for attr in ("to_dict", "as_dict"):
        method = getattr(value, attr, None)
        if callable(method):
            return jsonable(method())
    if hasattr(value, "__dict__"):
        return {k: jsonable(v) for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def _encode_image(array: Any) -> bytes:
    import cv2  # only multipart image payloads need OpenCV

    ok, buf = cv2.imencode(".png", array)
    if not ok:
        msg = f"cannot encode array of shape {getattr(array, 'shape', '?')} as PNG"
        raise ValueError(msg)
    return bytes(buf)


def build_multipart(data: Any) -> aiohttp.FormData:
    """A multipart form: bytes and image arrays become file parts, the rest one JSON part."""
    form = aiohttp.FormData()
    fields = data if isinstance(data, Mapping) else {"data": data}
    rest: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, (bytes, bytearray)):
            form.add_field(
                str(name), bytes(value), filename=str(name), content_type="application/octet-stream"
            )
        elif (
            getattr(value, "ndim", 0) >= 2
            and getattr(value, "dtype", None) is not None
            and str(value.dtype) == "uint8"
        ):
            form.add_field(
                str(name), _encode_image(value), filename=f"{name}.png", content_type="image/png"
            )
        else:
            rest[str(name)] = jsonable(value)
    if rest:
        form.add_field("json", json.dumps(rest), content_type="application/json")
    return form


# -- allow-list ------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AllowList:
    """Destinations a sink may reach, checked on the *resolved* address.

    Entries are IP networks (``10.0.0.0/8``), addresses (``127.0.0.1``) or host names.
    An address inside an allowed network is allowed; an allowed host name is allowed
    only while it resolves to global unicast addresses (a public-looking name that
    resolves to a private address is refused, which also defeats DNS rebinding because
    the connection goes to the address that was checked).
    """

    def __init__(self, entries: Iterable[str] | str) -> None:
        if isinstance(entries, str):  # graph files may give "a.example.com, 10.0.0.0/8"
            entries = [e.strip() for e in entries.split(",") if e.strip()]
        self.networks: list[Network] = []
        self.hosts: set[str] = set()
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))

    def check(self, host: str, ip: str) -> None:
        """Raise ``SsrfBlocked`` unless ``host`` resolving to ``ip`` is allowed."""
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in net for net in self.networks):
            return
        if host.lower().rstrip(".") in self.hosts and addr.is_global and not addr.is_multicast:
            return
        raise SsrfBlocked(host, str(addr))


class AllowListResolver(AbstractResolver):
    """Resolves through ``inner`` and returns only allow-listed addresses (else raises)."""

    def __init__(self, allow: AllowList, inner: AbstractResolver | None = None) -> None:
        self._allow = allow
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host``; raise ``SsrfBlocked`` when no address is allowed."""
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        blocked: SsrfBlocked | None = None
        for result in results:
            try:
                self._allow.check(host, result["host"])
                allowed.append(result)
            except SsrfBlocked as exc:
                blocked = exc
        if not allowed:
            raise blocked or SsrfBlocked(host, "no address")
        return allowed

    async def close(self) -> None:
        """Close the inner resolver."""
        await self._inner.close()


@dataclass(slots=True)
class Item:
    """One thing to deliver, with the identity its idempotency key derives from."""

    data: Any
    key: str
    session: int = 0
    seq: int = 0
    lineage: tuple[int, ...] = ()
    attempts: int = field(default=0)


def flow_name_of(ctx: Context) -> str:
    """The flow's name for ``ctx`` (from the logger's bound context), or ``""``."""
    flow = getattr(ctx, "flow", None)
    if flow is not None:
        return str(getattr(flow, "name", flow))
    context = getattr(ctx.log, "_context", None)
    return str(context.get("flow", "")) if isinstance(context, Mapping) else ""


def idempotency_key(flow: str, node: str, session: int, seq: int, lineage: Sequence[int]) -> str:
    """A stable key for one packet at one node: the same on every attempt and restart."""
    text = f"{flow}/{node}/{session}/{seq}/{'.'.join(map(str, lineage))}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def is_ip(host: str) -> bool:
    """Whether ``host`` is an IP literal (IPv6 may be bracketed)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
