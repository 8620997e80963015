"""The static graph model: nodes, ports, edges, validation and loading.

Pure and synchronous; imports neither anyio nor any other actorflow layer.
"""

from __future__ import annotations

from actorflow.graph._dict import RUNTIME_ATTRIBUTES as RUNTIME_ATTRIBUTES
from actorflow.graph._dict import graph_from_dict as graph_from_dict
from actorflow.graph._dict import parse_port as parse_port
from actorflow.graph._load import load_graph as load_graph
from actorflow.graph._model import BLOCK_TRIGGER_PORT as BLOCK_TRIGGER_PORT
from actorflow.graph._model import DEFAULT_QUEUE_SIZE as DEFAULT_QUEUE_SIZE
from actorflow.graph._model import DEFAULT_WINDOW as DEFAULT_WINDOW
from actorflow.graph._model import PLACEMENTS as PLACEMENTS
from actorflow.graph._model import POLICIES as POLICIES
from actorflow.graph._model import BlockUse as BlockUse
from actorflow.graph._model import CodeBlock as CodeBlock
from actorflow.graph._model import EdgeSpec as EdgeSpec
from actorflow.graph._model import Graph as Graph
from actorflow.graph._model import Location as Location
from actorflow.graph._model import NodeSpec as NodeSpec
from actorflow.graph._model import Placement as Placement
from actorflow.graph._model import Policy as Policy
from actorflow.graph._model import PortRef as PortRef
from actorflow.graph._validate import INPUT_NODE_PORT as INPUT_NODE_PORT
from actorflow.graph._validate import OUTPUT_NODE_PORT as OUTPUT_NODE_PORT
from actorflow.graph._validate import Contract as Contract
from actorflow.graph._validate import UnitCatalog as UnitCatalog
from actorflow.graph._validate import suggest as suggest
from actorflow.graph._validate import validate as validate

__all__ = [
    "BLOCK_TRIGGER_PORT",
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_WINDOW",
    "INPUT_NODE_PORT",
    "OUTPUT_NODE_PORT",
    "PLACEMENTS",
    "POLICIES",
    "BlockUse",
    "CodeBlock",
    "Contract",
    "EdgeSpec",
    "Graph",
    "Location",
    "NodeSpec",
    "Placement",
    "Policy",
    "PortRef",
    "UnitCatalog",
    "graph_from_dict",
    "load_graph",
    "parse_port",
    "suggest",
    "validate",
]
