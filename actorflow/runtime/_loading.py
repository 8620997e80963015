"""From what a user hands ``Flow`` to a validated graph and the units of its nodes.

Kept apart from ``Flow`` so the facade stays small: loading accepts every form (a
``Graph``, a dict, a path, named text), validation lists every problem at once, and
units are instantiated from graph parameters with errors that name the node.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from actorflow.errors import UnitConfigError
from actorflow.graph import Graph, load_graph, validate
from actorflow.runtime._builder import BuilderCatalog
from actorflow.unit import FlowUnit, Registry, SourceUnit, block_unit_class, instantiate


def load(
    source: Graph | Mapping[str, Any] | str | Path,
    graph_text: str | None,
    format: str,
    allow_custom_code: bool | None,
) -> Graph:
    """``Flow.init``'s forms: a graph, named text in ``format``, a dict, or a path.

    Raises:
        GraphError: the document cannot be loaded (file, line and problem named).
    """
    if isinstance(source, Graph):
        return source
    if graph_text is not None:
        return load_graph(
            graph_text,
            format=format,  # type: ignore[arg-type]
            name=str(source),
            allow_custom_code=allow_custom_code,
        )
    if isinstance(source, Mapping):
        return load_graph(source)
    return load_graph(
        Path(source),
        format=format,  # type: ignore[arg-type]
        allow_custom_code=allow_custom_code,
    )


def prepare(graph: Graph, registry: Registry) -> Graph:
    """Import the graph's driver directories, then validate it against ``registry``.

    Raises:
        GraphValidationError: the graph is wrong (every problem listed).
    """
    if graph.driver_dirs:
        from actorflow.unit._drivers import load_driver_dirs

        load_driver_dirs(graph.driver_dirs, base_dir=graph.base_dir, source=graph.source)
    return validate(graph, BuilderCatalog(registry, graph))


def unit_maker(
    graph: Graph, registry: Registry, ray_address: str | None = None
) -> Callable[[str], list[FlowUnit]]:
    """A function giving the units of a node, one per replica (fresh on every call).

    Nodes built from instances (the Python builder) reuse that instance for the first
    replica and deep copies for the others; a workflow's dynamic blocks get a class of
    this graph's own (never registered globally); named units are instantiated from the
    graph's parameters. A node with ``placement="ray"`` gets local proxy slots
    instead (``actorflow.ray``, imported only then), its units shipped to Ray actors
    at ``ray_address`` (``None``: the connected or a local Ray).

    Raises (from the returned function):
        UnitConfigError: a unit rejected its parameters (the node is named), or a
            source was placed on Ray.
    """

    def make_units(node_id: str) -> list[FlowUnit]:
        spec = graph.node(node_id)
        if spec.instance is not None:
            first = spec.instance
            units = [first] + [copy.deepcopy(first) for _ in range(spec.replicas - 1)]
        else:
            if spec.block is not None:  # a workflow's dynamic block: this graph's own class
                cls: type[FlowUnit] = block_unit_class(spec.block)
            else:
                cls = registry.get(spec.unit)  # other nodes name registered units
            units = [instantiate(cls, spec.params, node=spec.id) for _ in range(spec.replicas)]
        if spec.placement != "ray":
            return units
        if isinstance(units[0], SourceUnit):
            where = f" ({spec.location})" if spec.location else ""
            msg = (
                f"node {spec.id!r}{where} is a source and cannot be placed on Ray; "
                "remove placement=ray from it and place the nodes it feeds instead"
            )
            raise UnitConfigError(msg)
        try:
            from actorflow.ray import remote_units
        except ModuleNotFoundError as exc:
            if exc.name != "ray":
                raise
            where = f" ({spec.location})" if spec.location else ""
            msg = (
                f"node {spec.id!r}{where} has placement=ray but Ray is not installed; "
                "install it with: pip install 'actorflow[ray]'"
            )
            raise UnitConfigError(msg) from exc
        return remote_units(graph, spec, units, ray_address)

    return make_units
