"""The authoring API: what a flowunit writer imports."""

from __future__ import annotations

from actorflow.unit._base import Context as Context
from actorflow.unit._base import FlowUnit as FlowUnit
from actorflow.unit._base import SourceUnit as SourceUnit
from actorflow.unit._blocks import BlockResult as BlockResult
from actorflow.unit._blocks import DynamicBlock as DynamicBlock
from actorflow.unit._blocks import MissingBlockDependency as MissingBlockDependency
from actorflow.unit._blocks import block_unit_class as block_unit_class
from actorflow.unit._decorator import FunctionSource as FunctionSource
from actorflow.unit._decorator import FunctionUnit as FunctionUnit
from actorflow.unit._decorator import flowunit as flowunit
from actorflow.unit._decorator import source as source
from actorflow.unit._drivers import load_driver_dirs as load_driver_dirs
from actorflow.unit._packet import Packet as Packet
from actorflow.unit._packet import SessionId as SessionId
from actorflow.unit._params import param_problems as param_problems
from actorflow.unit._params import unit_checker as unit_checker
from actorflow.unit._ports import Input as Input
from actorflow.unit._ports import Output as Output
from actorflow.unit._registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from actorflow.unit._registry import Registry as Registry
from actorflow.unit._registry import default_registry as default_registry
from actorflow.unit._registry import instantiate as instantiate

__all__ = [
    "ENTRY_POINT_GROUP",
    "BlockResult",
    "Context",
    "DynamicBlock",
    "FlowUnit",
    "FunctionSource",
    "FunctionUnit",
    "Input",
    "MissingBlockDependency",
    "Output",
    "Packet",
    "Registry",
    "SessionId",
    "SourceUnit",
    "block_unit_class",
    "default_registry",
    "flowunit",
    "instantiate",
    "load_driver_dirs",
    "param_problems",
    "source",
    "unit_checker",
]
