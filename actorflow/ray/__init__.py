"""Ray placement: a node with ``placement="ray"`` runs its replicas as Ray actors.

The runtime imports this package only for graphs that place a node on Ray, so
``ray`` (the ``actorflow[ray]`` extra) is needed only then. ``remote_units`` gives
the local slots of such a node (see ``_proxy.py``); the node keeps every guarantee
of a local one (DESIGN §11):

====================== ===================================================
in Ray                 in the flow
====================== ===================================================
result                 processed (emitted in input order)
exception in the unit  that packet failed (same type and message)
``RayTaskError``       that packet failed (``RemoteCallFailed``)
``ActorDiedError``     packets in flight failed; the actor is replaced under
                       the node's restart policy (counts towards intensity)
``stop()``             inputs end, in-flight calls drain for the grace, then
                       ``ray.cancel``; units close within ``close_timeout``,
                       then ``ray.kill``
====================== ===================================================
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ray import cloudpickle

from actorflow.graph import Graph, NodeSpec
from actorflow.ray._pool import RemoteCallFailed, ReplicaDied, ReplicaLost, ReplicaPool
from actorflow.ray._proxy import RemoteProxy, proxy_class
from actorflow.unit import FlowUnit

__all__ = [
    "RemoteCallFailed",
    "RemoteProxy",
    "ReplicaDied",
    "ReplicaLost",
    "ReplicaPool",
    "remote_units",
]


def remote_units(
    graph: Graph, spec: NodeSpec, units: Sequence[FlowUnit], address: str | None
) -> list[FlowUnit]:
    """The local slots of remote node ``spec``: ``replicas * window`` proxies, one pool.

    ``units`` are the node's unit instances, one per replica, as built locally (so
    configuration errors surface at ``build()``); each is shipped to its actor.
    Payloads on ports whose consumers are all remote nodes travel as ``ObjectRef``.
    """
    placements = {n.id: n.placement for n in graph.nodes if n.kind == "unit"}
    ports = {e.src.port for e in graph.edges if e.src.node == spec.id}
    ref_ports = frozenset(
        port
        for port in ports
        if port is not None
        and all(
            placements.get(e.dst.node) == "ray"
            for e in graph.edges
            if e.src.node == spec.id and e.src.port == port
        )
    )
    _ship_driver_modules(graph, type(units[0]))
    pool = ReplicaPool(spec, list(units), ref_ports, address, str(graph.base_dir))
    cls = proxy_class(type(units[0]))
    return [cls(pool, units[0]) for _ in range(spec.replicas * spec.window)]


def _ship_driver_modules(graph: Graph, cls: type[FlowUnit]) -> None:
    """Units from the graph's ``[driver] dir`` modules travel by value (workers lack them)."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if module is None or path is None:
        return
    if any(Path(path).resolve().is_relative_to(d.resolve()) for d in graph.driver_dirs):
        cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]
