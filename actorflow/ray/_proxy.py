"""The local side of a remote node: proxy units, one per credit, sharing a pool.

A node placed on Ray keeps its place in the local graph: the runtime runs
``replicas * window`` local *slots* of it, each a ``RemoteProxy`` holding at most one
call in flight, with today's bounded inbox, edge policies, batching, re-order buffer
and ledger. A slot's ``process`` sends its packet to the pool (``_pool.py``) and
replays what the remote unit did: the same emissions, the same failures, the same
exception, as if the unit had run here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from actorflow.ray._host import Outcome, from_wire, to_wire
from actorflow.ray._pool import ReplicaDied, ReplicaPool
from actorflow.unit import Context, FlowUnit, Packet


class RemoteProxy(FlowUnit):
    """One local slot of a remote node (subclassed per unit class; never registered)."""

    remote_class: ClassVar[type[FlowUnit]] = FlowUnit

    def __init__(self, pool: ReplicaPool, local: FlowUnit) -> None:
        self.pool = pool
        self._local = local

    async def open(self, ctx: Context) -> None:
        """Start (or replace dead) replicas and wait until their units opened."""
        await self.pool.acquire()

    async def close(self, ctx: Context) -> None:
        """The last slot to close closes the remote units and kills the actors."""
        await self.pool.release()

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Run the unit's ``process`` remotely and replay what it did."""
        outcome = await self.pool.call(to_wire(packet))
        await _replay(ctx, [packet], outcome)

    async def process_batch(self, ctx: Context, packets: list[Packet[Any]]) -> None:
        """Run the unit's ``process_batch`` remotely and replay what it did."""
        outcome = await self.pool.call_batch([to_wire(p) for p in packets])
        await _replay(ctx, packets, outcome)

    def output_policy(self, port: str) -> str | None:
        """The remote unit's preference (a live camera's ``latest``)."""
        return self._local.output_policy(port)

    def describe(self) -> Mapping[str, Any]:
        """Per-replica statistics of the pool (node id, in flight, latency, restarts)."""
        return self.pool.describe()


async def _replay(ctx: Context, packets: list[Packet[Any]], outcome: Outcome) -> None:
    """Emit and fail locally what the remote call did; re-raise its exception."""
    for entry in outcome:
        kind = entry[0]
        if kind == "emit":
            await ctx.emit(entry[1], from_wire(entry[2:]))
        elif kind == "fail":
            ctx.fail(packets[entry[1]], entry[2])
        else:
            raise entry[1]


def proxy_class(cls: type[FlowUnit]) -> type[RemoteProxy]:
    """A proxy class with the ports, name and fatal errors of ``cls``."""
    proxy: type[RemoteProxy] = type(cls.__name__, (RemoteProxy,), {"__module__": __name__})
    proxy.inputs, proxy.outputs = cls.inputs, cls.outputs
    proxy.name = cls.name  # set after creation: the proxy is not registered
    proxy.fatal_errors = (*cls.fatal_errors, ReplicaDied)
    proxy.remote_class = cls
    return proxy
