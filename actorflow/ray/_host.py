"""``UnitHost``: the Ray actor that runs one replica of a remote node's unit.

It lives in a Ray worker process. ``open``, ``close`` and every call run the same
``FlowUnit`` code as a local replica, with a ``HostContext`` in place of the
runtime's: what the unit emits or fails is recorded and returned to the driver's
proxy, which replays it into the local graph (so the ledger is kept in one place).

Guarantees:

* Calls never overlap on one unit (a lock serialises them, as the runtime does for
  a local replica), although several may be in flight (the proxy's credit window):
  the next one is already queued here when the current one ends.
* An exception from ``process`` is returned, not raised: the proxy re-raises the
  same exception (type and message) so the packet fails exactly as it would
  locally; exceptions that cannot be pickled become ``RuntimeError`` naming the type.
* Payloads emitted on a port whose consumers are all remote nodes are stored with
  ``ray.put`` here and travel as ``ObjectRef`` (never through the driver); payloads
  arriving as ``ObjectRef`` (top level, or values of a joined dict) are resolved here.
"""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import ray
import structlog

from actorflow.errors import EmitError
from actorflow.unit import Context, FlowUnit, Output, Packet
from actorflow.unit._packet import EMPTY_META

R = TypeVar("R")

Wire = tuple[Any, int, int, tuple[int, ...], dict[str, Any]]
"""A packet on the wire: (data, session, seq, lineage, meta)."""
Outcome = list[tuple[Any, ...]]
"""What one call did, in order: ``("emit", port, *wire)``, ``("fail", index, error)``
(``ctx.fail`` on the index-th packet of the call) and ``("raise", error)``."""


def to_wire(packet: Packet[Any]) -> Wire:
    """A packet as plain picklable values (``meta`` may be a read-only mapping)."""
    meta = packet.meta
    return (packet.data, packet.session, packet.seq, packet.lineage, dict(meta) if meta else {})


def from_wire(wire: Wire) -> Packet[Any]:
    """The packet ``to_wire`` describes."""
    data, session, seq, lineage, meta = wire
    return Packet(
        data, session, seq, tuple(lineage), MappingProxyType(meta) if meta else EMPTY_META
    )


def portable(error: BaseException) -> Exception:
    """``error`` if it survives pickling, else a ``RuntimeError`` naming its type."""
    try:
        if isinstance(error, Exception):
            pickle.loads(pickle.dumps(error))
            return error
    except Exception:
        pass
    return RuntimeError(f"{type(error).__name__}: {error}")


class HostContext(Context):
    """The ``Context`` of a unit running in a Ray actor: records what the unit does."""

    def __init__(
        self,
        node: str,
        unit: str,
        replica: int,
        device: str,
        deviceid: int,
        base_dir: Path,
        outputs: Mapping[str, Output[Any]],
        ref_ports: frozenset[str],
    ) -> None:
        self.node, self.unit, self.replica = node, unit, replica
        self.device, self.deviceid = device, deviceid
        self.log = structlog.get_logger("actorflow.ray").bind(node=node, unit=unit, replica=replica)
        self._base_dir = base_dir
        self._outputs = outputs
        self._ref_ports = ref_ports
        self._threads = ThreadPoolExecutor(1, thread_name_prefix=f"actorflow-{node}-{replica}")
        self.outcome: Outcome = []
        self.index: dict[int, int] = {}

    def begin(self, packets: list[Packet[Any]]) -> None:
        """Start a call on ``packets``."""
        self.outcome = []
        self.index = {id(p): i for i, p in enumerate(packets)}

    async def emit(self, port: Output[Any] | str, packet: Packet[Any]) -> None:
        """Record ``packet`` for ``port`` (stored in Ray when only remote nodes consume it).

        Raises:
            EmitError: ``port`` is not an output of this unit, or ``packet`` is not a
                ``Packet``.
        """
        name = port if isinstance(port, str) else getattr(port, "name", port)
        if not isinstance(name, str) or name not in self._outputs:
            names = ", ".join(repr(n) for n in self._outputs) or "none"
            msg = (
                f"node {self.node!r} ({self.unit}) has no output port {name!r}; "
                f"its outputs are: {names}"
            )
            raise EmitError(msg)
        if not isinstance(packet, Packet):
            msg = (
                f"node {self.node!r} ({self.unit}) emitted a {type(packet).__name__} on "
                f"port {name!r}; emit a Packet: ctx.emit({name!r}, packet.replace(value))"
            )
            raise EmitError(msg)
        data, session, seq, lineage, meta = to_wire(packet)
        if name in self._ref_ports:
            data = ray.put(data)
        self.outcome.append(("emit", name, data, session, seq, lineage, meta))

    async def run_blocking(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(*args)`` on this replica's thread ``actorflow-<node>-<replica>``."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, fn, *args)

    def fail(self, packet: Packet[Any], error: Exception) -> None:
        """Fail one packet of the current call (the driver records it)."""
        self.outcome.append(("fail", self.index.get(id(packet), 0), portable(error)))

    def resolve_path(self, path: str | Path) -> Path:
        """Resolve ``path`` relative to the graph file's directory (on this host)."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self._base_dir / candidate

    def now(self) -> float:
        """Monotonic seconds."""
        return time.monotonic()

    def shutdown(self) -> None:
        """Let the replica's thread end (a call still running there is abandoned)."""
        self._threads.shutdown(wait=False, cancel_futures=True)


async def _resolve(data: Any) -> Any:
    """Payloads that travelled as ``ObjectRef``: at top level, or in a joined dict."""
    if isinstance(data, ray.ObjectRef):
        return await data
    if isinstance(data, dict) and any(isinstance(v, ray.ObjectRef) for v in data.values()):
        return {k: (await v if isinstance(v, ray.ObjectRef) else v) for k, v in data.items()}
    return data


class UnitHost:
    """One replica of a remote node (a Ray async actor; see the module docstring)."""

    def __init__(
        self,
        unit: FlowUnit,
        node: str,
        replica: int,
        device: str,
        deviceid: int,
        base_dir: str,
        ref_ports: frozenset[str],
    ) -> None:
        self._unit = unit
        name = type(unit).name or type(unit).__name__
        outputs = {p.name: p for p in type(unit).outputs}
        self._ctx = HostContext(
            node, name, replica, device, deviceid, Path(base_dir), outputs, ref_ports
        )
        self._lock = asyncio.Lock()
        self._opened = False

    async def open(self) -> str:
        """Open the unit; return the Ray node id this replica runs on."""
        await self._unit.open(self._ctx)
        self._opened = True
        return str(ray.get_runtime_context().get_node_id())

    async def call(self, data: Any, session: int, seq: int, lineage: Any, meta: Any) -> Outcome:
        """``process`` one packet; returns what it emitted and how it ended."""
        data = await _resolve(data)
        packet = from_wire((data, session, seq, lineage, meta))
        async with self._lock:
            ctx = self._ctx
            ctx.begin([packet])
            try:
                await self._unit.process(ctx, packet)
            except Exception as exc:
                ctx.outcome.append(("raise", portable(exc)))
            return ctx.outcome

    async def call_batch(self, wires: list[Wire]) -> Outcome:
        """``process_batch`` on packets; returns what it emitted and how it ended."""
        packets = [from_wire((await _resolve(w[0]), *w[1:])) for w in wires]
        async with self._lock:
            ctx = self._ctx
            ctx.begin(packets)
            try:
                await self._unit.process_batch(ctx, packets)
            except Exception as exc:
                ctx.outcome.append(("raise", portable(exc)))
            return ctx.outcome

    async def close(self) -> None:
        """Close the unit once if it opened (the driver kills the actor afterwards)."""
        if self._opened:
            self._opened = False
            try:
                await self._unit.close(self._ctx)
            finally:
                self._ctx.shutdown()
