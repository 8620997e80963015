"""The runtime: actors on bounded mailboxes, the supervisor, flows and sessions.

Imports only ``anyio`` (and structlog) besides the graph and unit layers; it finds
units by name through the registry and never imports ``actorflow.flowunits``.
"""

from __future__ import annotations

from actorflow.runtime._flow import Flow as Flow
from actorflow.runtime._keeper import FLOW_RESTARTS as FLOW_RESTARTS
from actorflow.runtime._keeper import keep_running as keep_running
from actorflow.runtime._session import Result as Result
from actorflow.runtime._session import Session as Session
from actorflow.runtime._stats import EdgeStatistics as EdgeStatistics
from actorflow.runtime._stats import FlowStatistics as FlowStatistics
from actorflow.runtime._stats import HistogramSnapshot as HistogramSnapshot
from actorflow.runtime._stats import NodeStatistics as NodeStatistics
from actorflow.runtime._stats import SessionStatistics as SessionStatistics
from actorflow.runtime._status import Status as Status
from actorflow.runtime._supervision import Clock as Clock
from actorflow.runtime._supervision import RestartPolicy as RestartPolicy
from actorflow.runtime._supervision import SystemClock as SystemClock

__all__ = [
    "FLOW_RESTARTS",
    "Clock",
    "EdgeStatistics",
    "Flow",
    "FlowStatistics",
    "HistogramSnapshot",
    "NodeStatistics",
    "RestartPolicy",
    "Result",
    "Session",
    "SessionStatistics",
    "Status",
    "SystemClock",
    "keep_running",
]
