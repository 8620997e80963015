"""videoflow's ``Flow``: ``Flow(producers, consumers).run()``, ``join()``, ``stop()``."""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Sequence
from typing import Any

from actorflow.compat._loop import LoopThread
from actorflow.compat.videoflow._nodes import (
    ConsumerNode,
    ConsumerUnit,
    Node,
    ProcessorNode,
    ProcessorUnit,
    ProducerNode,
    ProducerUnit,
)
from actorflow.runtime import Flow as NativeFlow
from actorflow.runtime import Status
from actorflow.unit import FlowUnit

BATCH = "batch"
"""Every item is processed: full mailboxes make producers wait (actorflow ``block``)."""
REALTIME = "realtime"
"""Live streams: a full mailbox drops the newest item (counted), never waits."""


class Flow:
    """A videoflow flow, run by actorflow in a background event-loop thread.

    ``run()`` starts it and returns; ``join()`` waits for the end (all producers
    raised ``StopIteration``, or ``stop()`` was called) and re-raises a failure;
    ``stop()`` stops the producers and lets what is in flight drain. Ctrl-C while
    in ``join()`` stops the flow gracefully. Several producers are supported.

    Raises:
        GraphCycleError: the nodes form a cycle (a ``ValueError``, as in videoflow).
    """

    def __init__(
        self,
        producers: Sequence[ProducerNode],
        consumers: Sequence[ConsumerNode],
        flow_type: str = BATCH,
        flow_options: dict[str, Any] | None = None,
    ) -> None:
        if flow_type not in (BATCH, REALTIME):
            msg = f"flow_type must be {BATCH!r} or {REALTIME!r}, got {flow_type!r}"
            raise ValueError(msg)
        units = _adapt([*consumers, *producers], drop=flow_type == REALTIME)
        self._native = NativeFlow(
            [units[id(p)] for p in producers], [units[id(c)] for c in consumers], name="videoflow"
        )
        self._loop: LoopThread | None = None
        self._previous_handler: Any = None

    @property
    def native(self) -> NativeFlow:
        """The actorflow flow underneath (statistics, state)."""
        return self._native

    def run(self) -> None:
        """Start the flow and return once every node has opened.

        In the main thread, Ctrl-C from now on stops the flow gracefully; a second
        Ctrl-C interrupts as usual.
        """
        self._loop = LoopThread("actorflow-videoflow-loop")
        self._loop.call(self._native.run_async)
        if threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def join(self) -> None:
        """Wait for the flow to end; Ctrl-C stops it gracefully.

        Raises:
            FlowFailed: a node failed.
        """
        if self._loop is None:
            msg = "join() called before run()"
            raise RuntimeError(msg)
        try:
            status = self._loop.call(self._native.wait)
        finally:
            self._restore_handler()
            if self._native.state in ("stopped", "failed"):
                self._loop.close()
        if status is Status.FAULT and self._native.exception is not None:
            raise self._native.exception

    def stop(self) -> None:
        """Stop the producers; what is in flight drains through the graph."""
        if self._loop is not None and not self._loop.closed:
            self._loop.call(self._native.stop)

    def _on_sigint(self, signum: int, frame: object) -> None:
        assert self._loop is not None
        self._restore_handler()  # a second Ctrl-C interrupts as usual
        self._loop.submit(self._native.stop)

    def _restore_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None


def _adapt(roots: Sequence[Node], *, drop: bool) -> dict[int, FlowUnit]:
    """One actorflow unit per videoflow node, connected like the nodes."""
    nodes: dict[int, Node] = {}
    stack = list(roots)
    while stack:
        node = stack.pop()
        if id(node) not in nodes:
            nodes[id(node)] = node
            stack.extend(node.parents)
    units: dict[int, FlowUnit] = {}
    for key, node in nodes.items():
        units[key] = _unit_for(node)
        name = node._name or _snake(type(node).__name__)
        options: dict[str, Any] = {"id": name, "replicas": node._nb_tasks}
        if drop:
            options["policy"] = "drop_newest"
        units[key].options(**options)
    for key, node in nodes.items():
        if node.parents:
            units[key](*(units[id(p)] for p in node.parents))
    return units


def _unit_for(node: Node) -> FlowUnit:
    if isinstance(node, ProducerNode):
        return ProducerUnit(node)
    if isinstance(node, ConsumerNode):
        return ConsumerUnit(node)
    if isinstance(node, ProcessorNode):
        return ProcessorUnit.for_parents(len(node.parents))(node)
    msg = f"{type(node).__name__} is not a ProducerNode, ProcessorNode or ConsumerNode"
    raise TypeError(msg)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
