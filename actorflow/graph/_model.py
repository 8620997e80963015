"""The static graph model: frozen records describing nodes, ports and edges.

This module is pure and synchronous: it imports nothing from the rest of actorflow
except ``errors`` and no third-party package. Every graph form (Python builder, dict,
ModelBox TOML/JSON, workflow JSON) compiles into these records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Self

NodeKind = Literal["unit", "input", "output"]
"""``unit`` runs a flowunit; ``input``/``output`` are the external ports of sessions."""

Placement = Literal["local", "ray"]
"""Where a node's units run: in-process (``local``) or as Ray actors (``ray``, DESIGN §11)."""

PLACEMENTS: tuple[Placement, ...] = ("local", "ray")

DEFAULT_WINDOW = 2
"""Packets in flight per Ray replica of a remote node, counting its re-order buffer."""

Policy = Literal["block", "drop_oldest", "drop_newest", "latest"]
"""What an edge does when its consumer's mailbox is full (DESIGN §4)."""

POLICIES: tuple[Policy, ...] = ("block", "drop_oldest", "drop_newest", "latest")

DEFAULT_QUEUE_SIZE = 32
"""Mailbox capacity per edge unless a node or edge says otherwise (ModelBox's default)."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was declared, for error messages."""

    path: str
    """File name, or ``"<string>"`` / ``"<dict>"`` / ``"<python>"``."""
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        text = self.path
        if self.line is not None:
            text += f":{self.line}"
            if self.column is not None:
                text += f":{self.column}"
        return text


@dataclass(frozen=True, slots=True)
class PortRef:
    """One port of one node; ``port`` is ``None`` when the node's only port is meant."""

    node: str
    port: str | None = None

    def __str__(self) -> str:
        return self.node if self.port is None else f"{self.node}:{self.port}"


BLOCK_TRIGGER_PORT = "_run"
"""The input port of a workflow dynamic block that no selector feeds: one packet per
workflow run (the workflow's first image input) calls the block once."""


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class CodeBlock:
    """A workflow dynamic block's definition: code as text, checked but never run here.

    One object per block per loaded document; identity (not value) tells blocks
    apart, so two workflows defining a block of the same name never share its code or
    its module namespace (the unit layer keys both on this object).
    """

    block_type: str
    inputs: tuple[str, ...]
    """Every input the manifest declares (wired or literal)."""
    outputs: tuple[str, ...]
    run_code: str
    init_code: str | None
    run_name: str
    source: str
    """``<file>:<block_type>``, for tracebacks and logs."""


@dataclass(frozen=True, slots=True)
class BlockUse:
    """One step running a ``CodeBlock``: which of its inputs are input ports."""

    code: CodeBlock
    ports: tuple[str, ...]
    """Inputs wired by selectors; empty means one ``BLOCK_TRIGGER_PORT`` input."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node of a graph.

    Attributes are the ModelBox node attributes; ``params`` holds every other attribute
    and is handed to the unit's constructor as keyword arguments.
    """

    id: str
    unit: str = ""
    """Registry name of the flowunit (empty for ``input``/``output`` nodes)."""
    kind: NodeKind = "unit"
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    replicas: int = 1
    queue_size: int = DEFAULT_QUEUE_SIZE
    batch_size: int = 1
    batch_timeout: float = 0.0
    """Seconds to wait for a batch to fill after its first item arrives."""
    device: str = "auto"
    deviceid: int = 0
    location: Location | None = None
    instance: Any = None
    """A ready unit instance (Python builder); ``None`` means build one from ``params``."""
    block: BlockUse | None = None
    """A workflow dynamic block (its unit class is made for this graph alone)."""
    unknown_hint: str = ""
    """Advice added to the "unknown unit" message (e.g. how to map a workflow block)."""
    placement: Placement = "local"
    """``ray``: the node's ``replicas`` run as Ray actors behind a local proxy."""
    resources: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    """Ray resources per replica: ``num_cpus``, ``num_gpus`` (fractions allowed), custom."""
    window: int = DEFAULT_WINDOW
    """Ray placement: packets in flight per replica, counting the re-order buffer."""

    def with_(self, **changes: Any) -> Self:
        """Return a copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class EdgeSpec:
    """A directed edge from an output port to an input port."""

    src: PortRef
    dst: PortRef
    policy: Policy | None = None
    """What a full lane does; ``None``: the producer's preference (a live camera's
    ``latest``), else ``block``."""
    queue_size: int | None = None
    """Capacity of this edge's lane; ``None`` takes the consumer node's ``queue_size``."""
    location: Location | None = None

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}"


@dataclass(frozen=True, slots=True)
class Graph:
    """A whole graph: what ``Flow.build()`` turns into actors.

    ``base_dir`` is where relative paths in node parameters (model files, driver
    directories) are resolved from: the graph file's directory, or the working
    directory for graphs built in Python.
    """

    name: str
    nodes: tuple[NodeSpec, ...]
    edges: tuple[EdgeSpec, ...]
    base_dir: Path = field(default_factory=Path.cwd)
    source: str = "<python>"
    """Where the graph came from, for messages."""
    driver_dirs: tuple[Path, ...] = ()
    """Directories scanned for Python flowunit modules before validation."""

    def node(self, node_id: str) -> NodeSpec:
        """Return the node called ``node_id``.

        Raises:
            KeyError: no such node.
        """
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def inputs(self) -> tuple[str, ...]:
        """Ids of the external input nodes (session ports)."""
        return tuple(n.id for n in self.nodes if n.kind == "input")

    @property
    def outputs(self) -> tuple[str, ...]:
        """Ids of the external output nodes (session ports)."""
        return tuple(n.id for n in self.nodes if n.kind == "output")
