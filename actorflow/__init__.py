"""actorflow: an asyncio-native actor runtime for AI inference flow graphs.

Layout: ``graph`` is the static model, ``unit`` the authoring API, ``runtime`` the
actors, supervisor and sessions, ``flowunits`` the built-in units. This module
re-exports the friendly subset; everything under a leading underscore is private.
"""

from __future__ import annotations

from actorflow._logging import install as _install_logging
from actorflow._version import __version__ as __version__
from actorflow.errors import ActorFlowError as ActorFlowError
from actorflow.errors import CustomCodeDisabled as CustomCodeDisabled
from actorflow.errors import FlowFailed as FlowFailed
from actorflow.errors import FlowStateError as FlowStateError
from actorflow.errors import FlowTimeout as FlowTimeout
from actorflow.errors import GraphCycleError as GraphCycleError
from actorflow.errors import GraphError as GraphError
from actorflow.errors import GraphSyntaxError as GraphSyntaxError
from actorflow.errors import GraphValidationError as GraphValidationError
from actorflow.errors import NodeFailed as NodeFailed
from actorflow.errors import SessionClosed as SessionClosed
from actorflow.errors import UnitConfigError as UnitConfigError
from actorflow.errors import UnitNotFoundError as UnitNotFoundError
from actorflow.graph import Graph as Graph
from actorflow.graph import load_graph as load_graph
from actorflow.runtime import Flow as Flow
from actorflow.runtime import FlowStatistics as FlowStatistics
from actorflow.runtime import NodeStatistics as NodeStatistics
from actorflow.runtime import RestartPolicy as RestartPolicy
from actorflow.runtime import Result as Result
from actorflow.runtime import Session as Session
from actorflow.runtime import Status as Status
from actorflow.unit import Context as Context
from actorflow.unit import FlowUnit as FlowUnit
from actorflow.unit import Input as Input
from actorflow.unit import Output as Output
from actorflow.unit import Packet as Packet
from actorflow.unit import SourceUnit as SourceUnit
from actorflow.unit import flowunit as flowunit
from actorflow.unit import source as source

_install_logging()  # events go to `logging` (quiet below WARNING) unless structlog is set up

__all__ = [  # sorted case-insensitively; tests/test_public_api.py keeps it honest
    "__version__",
    "ActorFlowError",
    "Context",
    "CustomCodeDisabled",
    "Flow",
    "FlowFailed",
    "FlowStateError",
    "FlowStatistics",
    "FlowTimeout",
    "FlowUnit",
    "flowunit",
    "Graph",
    "GraphCycleError",
    "GraphError",
    "GraphSyntaxError",
    "GraphValidationError",
    "Input",
    "load_graph",
    "NodeFailed",
    "NodeStatistics",
    "Output",
    "Packet",
    "RestartPolicy",
    "Result",
    "Session",
    "SessionClosed",
    "source",
    "SourceUnit",
    "Status",
    "UnitConfigError",
    "UnitNotFoundError",
]
