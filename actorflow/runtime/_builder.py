"""The videoflow-style Python builder: ``B = Unit(...)(A)``; ``Flow([A], [C])``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from types import MappingProxyType
from typing import Any

from actorflow.errors import GraphCycleError
from actorflow.graph import (
    DEFAULT_WINDOW,
    Contract,
    EdgeSpec,
    Graph,
    Location,
    NodeSpec,
    PortRef,
)
from actorflow.unit import FlowUnit, Registry, block_unit_class, unit_checker

_PYTHON = Location("<python>")


def graph_from_units(
    producers: Sequence[FlowUnit], consumers: Sequence[FlowUnit], *, name: str | None = None
) -> Graph:
    """Build a graph from connected unit instances, walking back from ``consumers``.

    ``U()(a, b)`` connects ``a`` and ``b`` to U's input ports in order; a unit with one
    input port takes every parent on it (fan-in). ``U()(detector["boxes"])`` names an
    output port of the parent.

    Raises:
        GraphCycleError: the units form a cycle (a ``ValueError``); it names the cycle.
        TypeError: something that is not a unit was connected.
    """
    units = _collect([*consumers, *producers])
    ids = _assign_ids(units)
    names = _unit_names(units)
    nodes = []
    edges = []
    for unit in units:
        options = unit._builder_options or {}
        nodes.append(
            NodeSpec(
                id=ids[id(unit)],
                unit=names[id(unit)],
                params={},
                instance=unit,
                replicas=options.get("replicas", 1),
                queue_size=options.get("queue_size", 32),
                batch_size=options.get("batch_size", 1),
                batch_timeout=options.get("batch_timeout", 0.0),
                placement=options.get("placement", "local"),
                resources=MappingProxyType(dict(options.get("resources", {}))),
                window=options.get("window", DEFAULT_WINDOW),
                location=_PYTHON,
            )
        )
        for index, parent in enumerate(unit._builder_parents or ()):
            src_unit, src_port = _split(parent)
            dst_port = _input_for(unit, index)
            edges.append(
                EdgeSpec(
                    PortRef(ids[id(src_unit)], src_port),
                    PortRef(ids[id(unit)], dst_port),
                    policy=options.get("policy"),
                    location=_PYTHON,
                )
            )
    _check_cycles(nodes, edges)
    return Graph(name=name or "flow", nodes=tuple(nodes), edges=tuple(edges))


class BuilderCatalog:
    """The registry, plus classes only this graph has: builder nodes' and dynamic blocks'."""

    def __init__(self, registry: Registry, graph: Graph) -> None:
        self._registry = registry
        self._extra = {n.unit: type(n.instance) for n in graph.nodes if n.instance is not None}
        self._extra.update(
            {n.unit: block_unit_class(n.block) for n in graph.nodes if n.block is not None}
        )

    def contract(self, name: str) -> Contract | None:
        """Ports of the unit called ``name``."""
        cls = self._extra.get(name)
        if cls is None:
            return self._registry.contract(name)
        return Contract(
            tuple(p.name for p in cls.inputs),
            tuple(p.name for p in cls.outputs),
            frozenset(p.name for p in cls.inputs if p.optional),
            check=unit_checker(cls, params=False),  # the instance exists: is it runnable?
        )

    def names(self) -> Iterable[str]:
        """Every known unit name."""
        return set(self._registry.names()) | set(self._extra)


def _input_for(unit: FlowUnit, index: int) -> str | None:
    """Parents map to input ports in order; extra parents of a one-input unit fan in."""
    if index < len(unit.inputs):
        return unit.inputs[index].name
    return unit.inputs[0].name if len(unit.inputs) == 1 else None


def _split(parent: Any) -> tuple[FlowUnit, str | None]:
    if isinstance(parent, tuple) and len(parent) == 2 and isinstance(parent[0], FlowUnit):
        return parent[0], parent[1]
    if isinstance(parent, FlowUnit):
        return parent, None
    msg = f"a unit can only be connected to other units, got {parent!r}"
    raise TypeError(msg)


def _collect(roots: Iterable[Any]) -> list[FlowUnit]:
    seen: dict[int, FlowUnit] = {}
    stack = [_split(r)[0] for r in roots]
    while stack:
        unit = stack.pop()
        if id(unit) in seen:
            continue
        seen[id(unit)] = unit
        stack.extend(_split(p)[0] for p in unit._builder_parents or ())
    return list(seen.values())


def _assign_ids(units: list[FlowUnit]) -> dict[int, str]:
    ids: dict[int, str] = {}
    used: set[str] = set()
    for unit in units:
        wanted = (unit._builder_options or {}).get("id")
        base = wanted or _snake(unit.name or type(unit).__name__)
        node_id, n = base, 1
        while node_id in used:
            n += 1
            node_id = f"{base}_{n}"
        used.add(node_id)
        ids[id(unit)] = node_id
    return ids


def _unit_names(units: list[FlowUnit]) -> dict[int, str]:
    """A unit name per instance: the registry name, or the class name made unique."""
    by_name: dict[str, type[FlowUnit]] = {}
    names: dict[int, str] = {}
    for unit in units:
        cls = type(unit)
        base = cls.name or cls.__name__
        name, n = base, 1
        while by_name.get(name, cls) is not cls:
            n += 1
            name = f"{base}#{n}"
        by_name[name] = cls
        names[id(unit)] = name
    return names


def _snake(text: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", text).lower().replace(".", "_")


def _check_cycles(nodes: list[NodeSpec], edges: list[EdgeSpec]) -> None:
    import graphlib

    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in nodes:
        sorter.add(node.id)
    for edge in edges:
        sorter.add(edge.dst.node, edge.src.node)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        cycle.reverse()
        raise GraphCycleError(cycle, source="<python>") from None
