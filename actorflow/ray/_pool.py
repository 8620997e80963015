"""``ReplicaPool``: the Ray actors of one remote node, as its local proxy sees them.

Driver side. The pool starts one ``UnitHost`` actor per replica (on the resources the
node asks for, spread over the cluster's nodes), routes each call to the least-loaded
live replica that has a credit left, records per-replica statistics, and replaces
actors that died. It is shared by the node's local slots (``_proxy.py``); all of it
runs on the flow's event loop.

Guarantees:

* **Credits**: at most ``window`` calls are in flight on one replica. The runtime
  admits at most ``replicas * window`` items into the node, counting those waiting
  in its re-order buffer, and gives the credit back when an item is *emitted* in
  order; so a replica always has a credit when a slot asks, unless replicas died.
* **Death**: a call on an actor that died fails with ``ReplicaDied`` for the first
  call that sees it (a fatal error: the runtime restarts that slot under the node's
  restart policy, and the slot's ``open`` starts a new actor) and ``ReplicaLost``
  for the others in flight; the dead replica gets no more calls until replaced.
* **Stop**: a cancelled call is cancelled in Ray too (``ray.cancel``); the last slot
  to close closes the actors (bounded by the caller: the runtime's close budget) and
  then kills them with ``ray.kill`` whatever happened.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError, RayTaskError

from actorflow.graph import NodeSpec
from actorflow.ray._host import Outcome, UnitHost, Wire
from actorflow.unit import FlowUnit

_MISSING_MODULE = re.compile(r"No module named '[^']+'")

LATENCY_SAMPLES = 256
"""Call latencies kept per replica for its percentiles."""


class ReplicaDied(Exception):
    """The Ray actor of a replica died: the packet failed and the replica restarts."""


class ReplicaLost(Exception):
    """The Ray actor of a replica died with this packet in flight (already restarting)."""


class RemoteCallFailed(Exception):
    """Ray could not run the call (the unit's own exceptions are re-raised as they are)."""


@dataclass
class Replica:
    """One Ray actor of the node and what the proxy knows about it."""

    index: int
    handle: Any = None
    ready: asyncio.Future[None] | None = None
    """Done once the actor's unit opened (an exception if it failed)."""
    alive: bool = False
    node_id: str = ""
    in_flight: int = 0
    calls: int = 0
    failed: int = 0
    restarts: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))


def ensure_ray(address: str | None) -> None:
    """Connect to ``address``, or start a local Ray, unless this process is connected."""
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)


class ReplicaPool:
    """The replicas of one remote node; see the module docstring."""

    def __init__(
        self,
        spec: NodeSpec,
        units: list[FlowUnit],
        ref_ports: frozenset[str],
        address: str | None,
        base_dir: str,
    ) -> None:
        self.spec, self.node = spec, spec.id
        self._units = units
        self._ref_ports = ref_ports
        self._address = address
        self._base_dir = base_dir
        self.window = spec.window
        self.replicas = [Replica(i) for i in range(spec.replicas)]
        self._users = 0
        self._lock: asyncio.Lock | None = None
        self._waiters: list[asyncio.Future[None]] = []

    # -- life ----------------------------------------------------------------------

    async def acquire(self) -> None:
        """A slot opens: start Ray and the actors, or replace dead ones; wait for them.

        Raises:
            Exception: an actor's ``open`` failed (the unit's exception), or Ray could
                not start or place it (``RayError``).
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not ray.is_initialized():
                # on this thread, not a worker thread: Ray ties the processes it starts
                # to the starting thread's life, and a worker thread's end would
                # orphan them. Starting a local Ray blocks the loop for its start-up,
                # once, before any packet flows.
                ensure_ray(self._address)
            if self._users == 0:
                self._check_feasible()
            for replica in self.replicas:
                if not replica.alive and (replica.ready is None or replica.ready.done()):
                    self._start(replica)
            try:
                await asyncio.gather(*(r.ready for r in self.replicas if r.ready is not None))
            except BaseException:
                if self._users == 0:
                    self._kill_all()
                raise
            self._users += 1

    async def release(self) -> None:
        """A slot closes; the last one closes the actors' units, then kills the actors.

        Closing may be cut short by cancellation (the runtime bounds it by the close
        budget); the actors are killed in every case.
        """
        self._users -= 1
        if self._users > 0:
            return
        live = [r.handle for r in self.replicas if r.alive and r.handle is not None]
        try:
            results = await asyncio.gather(
                *(handle.close.remote() for handle in live), return_exceptions=True
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                first = errors[0]
                raise _unwrap(first) if isinstance(first, RayTaskError) else first
        finally:
            self._kill_all()

    def _check_feasible(self) -> None:
        """Refuse resources no node of the cluster has (the actor would wait forever).

        Raises:
            RemoteCallFailed: no alive node has every resource one replica asks for.
        """
        wanted = {k: v for k, v in self.spec.resources.items() if v > 0}
        wanted = {
            ("CPU" if k == "num_cpus" else "GPU" if k == "num_gpus" else k): v
            for k, v in wanted.items()
        }
        if not wanted:
            return
        alive = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        nodes = [n.get("Resources", {}) for n in alive]
        if any(all(res.get(k, 0) >= v for k, v in wanted.items()) for res in nodes):
            return
        asked = ", ".join(f"{k}={v:g}" for k, v in self.spec.resources.items())
        msg = (
            f"node {self.node!r} asks Ray for {asked} per replica, which no node of the "
            f"cluster has ({len(nodes)} nodes alive); lower its resources= or add a node "
            "that has them"
        )
        raise RemoteCallFailed(msg)

    def _start(self, replica: Replica) -> None:
        spec = self.spec
        options: dict[str, Any] = {
            "max_restarts": 0,
            "max_concurrency": self.window + 1,
            "scheduling_strategy": "SPREAD",
        }
        resources = dict(spec.resources)
        if "num_cpus" in resources:
            options["num_cpus"] = resources.pop("num_cpus")
        if "num_gpus" in resources:
            options["num_gpus"] = resources.pop("num_gpus")
        if resources:
            options["resources"] = resources
        if replica.handle is not None:
            replica.restarts += 1
        replica.handle = (
            _host_class()
            .options(**options)
            .remote(
                self._units[replica.index],
                self.node,
                replica.index,
                spec.device,
                spec.deviceid,
                self._base_dir,
                self._ref_ports,
            )
        )
        replica.alive = False
        replica.ready = asyncio.ensure_future(self._opened(replica, replica.handle.open.remote()))

    async def _opened(self, replica: Replica, ref: Any) -> None:
        try:
            replica.node_id = await ref
        except RayTaskError as exc:
            raise _unwrap(exc) from None
        except RayActorError as exc:
            missing = _MISSING_MODULE.search(str(exc))
            if missing is None:
                raise
            msg = (
                f"the Ray workers cannot import the unit of node {self.node!r} "
                f"({missing.group(0)}); install its package on them, or ship it with "
                "ray.init(runtime_env=...)"
            )
            raise RemoteCallFailed(msg) from None
        replica.alive = True
        self._wake()

    def _kill_all(self) -> None:
        for replica in self.replicas:
            if replica.handle is not None:
                ray.kill(replica.handle, no_restart=True)
            replica.alive = False
            if replica.ready is not None and not replica.ready.done():
                replica.ready.cancel()
        self._wake()

    # -- calls ---------------------------------------------------------------------

    async def call(self, wire: Wire) -> Outcome:
        """Run ``process`` on one packet on the least-loaded replica.

        Raises:
            ReplicaDied, ReplicaLost: the replica's actor died (see the module docstring).
            RemoteCallFailed: Ray could not run the call (an argument was lost...).
        """
        replica = await self._route()
        return await self._run(replica, replica.handle.call.remote(*wire))

    async def call_batch(self, wires: list[Wire]) -> Outcome:
        """Run ``process_batch`` on packets on the least-loaded replica (as ``call``)."""
        replica = await self._route()
        return await self._run(replica, replica.handle.call_batch.remote(wires))

    async def _route(self) -> Replica:
        """The live replica with the fewest calls in flight and a credit left."""
        while True:
            best: Replica | None = None
            for replica in self.replicas:
                free = replica.alive and replica.in_flight < self.window
                if free and (best is None or replica.in_flight < best.in_flight):
                    best = replica
            if best is not None:
                return best
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    async def _run(self, replica: Replica, ref: Any) -> Outcome:
        handle = replica.handle
        replica.in_flight += 1
        replica.calls += 1
        started = time.perf_counter()
        try:
            outcome: Outcome = await ref
        except asyncio.CancelledError:
            ray.cancel(ref)
            raise
        except RayActorError as exc:
            replica.failed += 1
            raise self._died(replica, handle, exc) from None
        except RayTaskError as exc:
            replica.failed += 1
            raise _unwrap(exc) from None
        except RayError as exc:
            replica.failed += 1
            msg = f"{type(exc).__name__}: {exc}"
            raise RemoteCallFailed(msg) from None
        finally:
            replica.in_flight -= 1
            self._wake()
        replica.latencies.append(time.perf_counter() - started)
        return outcome

    def _died(self, replica: Replica, handle: Any, exc: Exception) -> Exception:
        what = f"Ray actor of node {self.node!r} replica {replica.index} died: {_first_line(exc)}"
        if replica.handle is handle and replica.alive:
            replica.alive = False
            return ReplicaDied(what)
        return ReplicaLost(what)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- observing -----------------------------------------------------------------

    def describe(self) -> Mapping[str, Any]:
        """Per-replica facts for ``NodeStatistics.info``: node id, in flight, latency."""
        rows = []
        for r in self.replicas:
            lat = sorted(r.latencies)
            rows.append(
                {
                    "replica": r.index,
                    "node_id": r.node_id,
                    "alive": r.alive,
                    "in_flight": r.in_flight,
                    "calls": r.calls,
                    "failed": r.failed,
                    "restarts": r.restarts,
                    "latency_ms_p50": round(lat[len(lat) // 2] * 1e3, 3) if lat else None,
                    "latency_ms_max": round(lat[-1] * 1e3, 3) if lat else None,
                }
            )
        return {
            "placement": "ray",
            "window": self.window,
            "objectref_ports": sorted(self._ref_ports),
            "replicas": rows,
        }


_HOST: Any = None


def _host_class() -> Any:
    """``UnitHost`` as a Ray actor class (made once per process)."""
    global _HOST
    if _HOST is None:
        _HOST = ray.remote(UnitHost)
    return _HOST


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unwrap(exc: RayTaskError) -> Exception:
    """The exception a remote ``open`` raised (the unit's own), or a summary of it."""
    cause = exc.cause if isinstance(exc.cause, Exception) else None
    if cause is not None:
        return cause
    return RemoteCallFailed(f"{exc.function_name} failed: {_first_line(exc)}")
