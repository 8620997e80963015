"""Public test helpers: run one unit in isolation through the real runtime.

``UnitRunner`` wraps a unit in a graph (one ``input`` node per input port, one
``output`` node per output port), runs it with one session, and returns what came out
per port. It exercises the same actors, mailboxes, batching and joins as production.

Example::

    frame = np.zeros((8, 8, 3), np.uint8)
    out = await UnitRunner(Resize, width=4, height=2).run({"frame": [frame]})
    assert [p.data.shape for p in out["frame"]] == [(2, 4, 3)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from actorflow.graph import EdgeSpec, Graph, NodeSpec, PortRef
from actorflow.runtime import Flow, FlowStatistics, Result
from actorflow.unit import FlowUnit, Packet, instantiate


class UnitRunner:
    """Run one unit on lists of payloads and collect its outputs.

    Args:
        unit: a unit instance, or a unit class built with ``params``.
        replicas, batch_size, batch_timeout: the node's runtime settings.
        params: parameters for a unit class.
    """

    def __init__(
        self,
        unit: FlowUnit | type[FlowUnit],
        *,
        replicas: int = 1,
        batch_size: int = 1,
        batch_timeout: float = 0.0,
        **params: Any,
    ) -> None:
        self._unit = unit if isinstance(unit, FlowUnit) else instantiate(unit, params, node="unit")
        self._options = {
            "replicas": replicas,
            "batch_size": batch_size,
            "batch_timeout": batch_timeout,
        }
        self.errors: list[Result] = []
        """Failed items of the last run (``Result`` with ``error`` set)."""
        self.statistics: FlowStatistics | None = None
        """The flow's statistics after the last run."""

    async def run(
        self, inputs: Mapping[str, Sequence[Any]], *, timeout: float = 30.0
    ) -> dict[str, list[Packet[Any]]]:
        """Send ``inputs[port][i]`` (the i-th items of all ports join), return outputs per port.

        Raises:
            TimeoutError: the unit did not finish within ``timeout`` seconds.
        """
        unit = self._unit
        graph = _graph_for(unit, self._options)
        flow = Flow(graph, stop_grace=timeout)
        out: dict[str, list[Packet[Any]]] = {p.name: [] for p in unit.outputs}
        self.errors = []
        with anyio.fail_after(timeout):
            async with flow:
                session = flow.session()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._collect, session, out)
                    count = max((len(v) for v in inputs.values()), default=0)
                    for i in range(count):
                        for port, values in inputs.items():
                            if i < len(values):
                                await session.send(f"in_{port}", values[i])
                    await session.close()
            self.statistics = flow.statistics()
        return out

    async def _collect(self, session: Any, out: dict[str, list[Packet[Any]]]) -> None:
        async for result in session:
            if result.error is not None:
                self.errors.append(result)
            else:
                port = result.port.removeprefix("out_")
                out[port].append(Packet(result.data, session.id, result.seq, result.lineage))


def _graph_for(unit: FlowUnit, options: dict[str, Any]) -> Graph:
    nodes = [
        NodeSpec(id="unit", unit=f"testing:{type(unit).__qualname__}", instance=unit, **options)
    ]
    edges = []
    for name in (p.name for p in unit.inputs):
        nodes.append(NodeSpec(id=f"in_{name}", kind="input"))
        edges.append(EdgeSpec(PortRef(f"in_{name}", "out"), PortRef("unit", name)))
    for name in (p.name for p in unit.outputs):
        nodes.append(NodeSpec(id=f"out_{name}", kind="output"))
        edges.append(EdgeSpec(PortRef("unit", name), PortRef(f"out_{name}", "in")))
    return Graph(name=f"test-{type(unit).__name__}", nodes=tuple(nodes), edges=tuple(edges))


__all__ = ["UnitRunner"]
