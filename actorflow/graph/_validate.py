"""Validation of a ``Graph`` against the units it names.

The graph layer cannot import the unit registry (it sits to the left of ``unit``), so
it declares the small ``UnitCatalog`` protocol and receives an implementation.
Validation lists every problem at once, then fails with ``GraphValidationError``
(``GraphCycleError`` when the graph has a cycle).
"""

from __future__ import annotations

import difflib
import graphlib
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from actorflow.errors import GraphCycleError, GraphValidationError
from actorflow.graph._model import PLACEMENTS, POLICIES, EdgeSpec, Graph, NodeSpec, PortRef

INPUT_NODE_PORT = "out"
"""The single output port of an external ``input`` node."""
OUTPUT_NODE_PORT = "in"
"""The single input port of an external ``output`` node."""

_NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True, slots=True)
class Contract:
    """What the validator needs to know about a unit: its port names."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    optional_inputs: frozenset[str] = frozenset()
    check: Callable[[Mapping[str, Any]], Sequence[str]] | None = None
    """Problems with a node's parameters (unknown, missing, wrong type) or with the unit
    itself (no ``process``); each message names the parameter and the fix."""


class UnitCatalog(Protocol):
    """Looks units up by registry name (implemented by ``actorflow.unit``)."""

    def contract(self, name: str) -> Contract | None:
        """Return the unit's ports, or ``None`` when no unit has that name."""

    def names(self) -> Iterable[str]:
        """Every registered unit name."""


def validate(graph: Graph, catalog: UnitCatalog) -> Graph:
    """Check ``graph`` and return it with every edge port resolved, nodes in topological order.

    Raises:
        GraphCycleError: the graph has a cycle (other problems are listed too).
        GraphValidationError: every other problem, all listed in one error.
    """
    problems: list[str] = []
    nodes: dict[str, NodeSpec] = {}
    contracts: dict[str, Contract] = {}
    for node in graph.nodes:
        where = f" ({node.location})" if node.location else ""
        if node.id in nodes:
            problems.append(f"duplicate node id {node.id!r}{where}")
            continue
        if not _NODE_ID.match(node.id):
            problems.append(f"node id {node.id!r}{where} must match [A-Za-z_][A-Za-z0-9_-]*")
        nodes[node.id] = node
        problems.extend(_check_node_settings(node, where))
        contract = _contract_of(node, catalog, problems, where)
        if contract is not None:
            contracts[node.id] = contract
    reported: set[str] = set()  # unknown node names, each reported once
    resolved = [(e, _resolve_edge(e, nodes, contracts, problems, reported)) for e in graph.edges]
    edges = [r for _, r in resolved if r is not None]
    # A node touching a broken edge or neighbour (unknown node or unit) would be
    # connected once that root cause is fixed: its "not connected" would only repeat it.
    # A misspelt reference's intended node is unconnected for the same reason.
    broken = reported | {n for n in nodes if n not in contracts}
    near_broken = (
        {end.node for e, r in resolved if r is None for end in (e.src, e.dst)}
        | {
            end.node
            for e in graph.edges
            for end, other in ((e.dst, e.src), (e.src, e.dst))
            if other.node in broken
        }
        | {m for name in reported for m in difflib.get_close_matches(name, list(nodes), n=1)}
    )
    problems.extend(_unconnected_ports(nodes, contracts, edges, skip=near_broken))
    order, cycle = _topological_order(nodes, edges)
    if cycle:
        at = _cycle_location(cycle, edges)
        raise GraphCycleError(cycle, source=graph.source, others=problems, where=at)
    if problems:
        raise GraphValidationError(problems, source=graph.source)
    return replace(graph, nodes=tuple(nodes[n] for n in order), edges=tuple(edges))


def suggest(name: str, candidates: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for a near miss, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_node_settings(node: NodeSpec, where: str) -> list[str]:
    problems = []
    for attr in ("replicas", "queue_size", "batch_size", "window"):
        value = getattr(node, attr)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(
                f"node {node.id!r}{where}: {attr} must be an integer >= 1, got {value!r}"
            )
    if node.placement not in PLACEMENTS:
        problems.append(
            f"node {node.id!r}{where}: placement must be one of {', '.join(PLACEMENTS)}, "
            f"got {node.placement!r}"
        )
    if not isinstance(node.batch_timeout, int | float) or node.batch_timeout < 0:
        problems.append(
            f"node {node.id!r}{where}: batch_timeout must be a number >= 0 "
            f"(seconds), got {node.batch_timeout!r}"
        )
    return problems


def _contract_of(
    node: NodeSpec, catalog: UnitCatalog, problems: list[str], where: str
) -> Contract | None:
    if node.kind == "input":
        return Contract(inputs=(), outputs=(INPUT_NODE_PORT,))
    if node.kind == "output":
        return Contract(inputs=(OUTPUT_NODE_PORT,), outputs=())
    if not node.unit:
        problems.append(
            f"node {node.id!r}{where} names no flowunit; add flowunit=<name>, "
            "or type=input / type=output for a session port"
        )
        return None
    contract = catalog.contract(node.unit)
    if contract is None:
        names = sorted(catalog.names())
        problems.append(
            f"unknown unit {node.unit!r} for node {node.id!r}{where}"
            f"{suggest(node.unit, names)} (installed units: {', '.join(names)}; "
            "'actorflow units' describes each)"
            + (f"; {node.unknown_hint}" if node.unknown_hint else "")
        )
    elif contract.check is not None:
        problems.extend(
            f"node {node.id!r} ({node.unit}){where}: {p}" for p in contract.check(node.params)
        )
    return contract


def _cycle_location(cycle: Sequence[str], edges: Sequence[EdgeSpec]) -> str | None:
    """Where the file declares an edge of ``cycle`` (the first one it has a location for)."""
    steps = set(itertools.pairwise(cycle))
    for edge in edges:
        if (edge.src.node, edge.dst.node) in steps and edge.location is not None:
            return f"edge '{edge}' at {edge.location}"
    return None


def _resolve_edge(
    edge: EdgeSpec,
    nodes: dict[str, NodeSpec],
    contracts: dict[str, Contract],
    problems: list[str],
    reported: set[str],
) -> EdgeSpec | None:
    where = f" ({edge.location})" if edge.location else ""
    ok = True
    if edge.policy is not None and edge.policy not in POLICIES:
        problems.append(
            f"edge '{edge}'{where}: unknown policy {edge.policy!r}"
            f"{suggest(edge.policy, POLICIES)}; policies are: {', '.join(POLICIES)}"
        )
        ok = False
    if edge.queue_size is not None and (
        not isinstance(edge.queue_size, int) or edge.queue_size < 1
    ):
        problems.append(
            f"edge '{edge}'{where}: queue_size must be an integer >= 1, got {edge.queue_size!r}"
        )
        ok = False
    src = _resolve_port(edge, edge.src, "output", nodes, contracts, problems, where, reported)
    dst = _resolve_port(edge, edge.dst, "input", nodes, contracts, problems, where, reported)
    if not (ok and src and dst):
        return None
    return replace(edge, src=src, dst=dst)


def _resolve_port(
    edge: EdgeSpec,
    ref: PortRef,
    side: str,
    nodes: dict[str, NodeSpec],
    contracts: dict[str, Contract],
    problems: list[str],
    where: str,
    reported: set[str],
) -> PortRef | None:
    node = nodes.get(ref.node)
    if node is None:
        if ref.node not in reported:
            reported.add(ref.node)
            problems.append(
                f"edge '{edge}'{where} refers to node {ref.node!r}, which is not declared"
                f"{suggest(ref.node, nodes)} (declare it: {ref.node} [flowunit=...])"
            )
        return None
    contract = contracts.get(ref.node)
    if contract is None:
        return None  # the unknown unit is reported already
    ports = contract.outputs if side == "output" else contract.inputs
    desc = f"node {node.id!r}" + (f" ({node.unit})" if node.unit else f" (type={node.kind})")
    if not ports:
        problems.append(f"edge '{edge}'{where}: {desc} has no {side} ports")
        return None
    if ref.port is None:
        if len(ports) == 1:
            return PortRef(ref.node, ports[0])
        problems.append(
            f"edge '{edge}'{where}: {desc} has several {side} ports "
            f"({_quoted(ports)}); name one, as in '{ref.node}:{ports[0]}'"
        )
        return None
    if ref.port not in ports:
        problems.append(
            f"edge '{edge}'{where}: {desc} has no {side} port {ref.port!r}"
            f"{suggest(ref.port, ports)}; its {side}s are: {_quoted(ports)}"
        )
        return None
    return ref


def _unconnected_ports(
    nodes: dict[str, NodeSpec],
    contracts: dict[str, Contract],
    edges: Sequence[EdgeSpec],
    *,
    skip: set[str],
) -> list[str]:
    fed = {(e.dst.node, e.dst.port) for e in edges}
    used = {e.src.node for e in edges}
    problems = []
    for node_id, contract in contracts.items():
        node = nodes[node_id]
        if node_id in skip:
            continue
        if node.kind == "input" and node_id not in used:
            problems.append(f"input node {node_id!r} is connected to nothing")
        for port in contract.inputs:
            if port not in contract.optional_inputs and (node_id, port) not in fed:
                what = "output node" if node.kind == "output" else f"node {node_id!r} ({node.unit})"
                name = f"{node_id!r}" if node.kind == "output" else f"port {port!r}"
                if node.kind == "output":
                    problems.append(f"{what} {name} has no incoming edge")
                else:
                    problems.append(f"{what}: input {name} is not connected")
    return problems


def _topological_order(
    nodes: dict[str, NodeSpec], edges: Sequence[EdgeSpec]
) -> tuple[list[str], list[str]]:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node_id in nodes:
        sorter.add(node_id)
    for edge in edges:
        sorter.add(edge.dst.node, edge.src.node)
    try:
        return list(sorter.static_order()), []
    except graphlib.CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        cycle.reverse()  # graphlib lists it against the edges' direction
        return [], cycle


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)
