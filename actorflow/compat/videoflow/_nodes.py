"""videoflow's node classes, and the actorflow units that run them.

A videoflow node is a plain object: ``ProducerNode.next()`` (raise ``StopIteration``
to end), ``ProcessorNode.process(*inputs)``, ``ConsumerNode.consume(item)``, with
optional ``open()``/``close()``. Calling a node with its parents creates the edges,
and a second call raises ``RuntimeError`` (videoflow's rule). Each node runs inside an
actorflow unit; its methods run on the node's executor thread, as blocking code.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from actorflow.unit import Context, FlowUnit, Input, Output, Packet, SourceUnit

_END = object()


class Node:
    """Base of every videoflow node.

    Args:
        nb_tasks: how many copies run in parallel (actorflow replicas; order is kept).
        name: the node's id in the graph (default: derived from the class name).
    """

    def __init__(self, nb_tasks: int = 1, name: str | None = None, **_: Any) -> None:
        self._nb_tasks = nb_tasks
        self._name = name
        self._parents: tuple[Node, ...] | None = None

    def __call__(self, *parents: Node) -> Node:
        """Connect this node to its parents (once)."""
        if self._parents is not None:
            msg = f"{type(self).__name__} was already called with its parents; create a new node"
            raise RuntimeError(msg)
        self._parents = parents
        return self

    @property
    def parents(self) -> tuple[Node, ...]:
        """The nodes this node reads from."""
        return self._parents or ()

    def open(self) -> None:
        """Acquire resources (runs once per task, on its thread)."""

    def close(self) -> None:
        """Release resources."""


class ProducerNode(Node):
    """Produces items: ``next()`` returns one, or raises ``StopIteration`` at the end."""

    def next(self) -> Any:
        """Return the next item."""
        raise StopIteration


class ProcessorNode(Node):
    """Transforms items: ``process(*inputs)`` gets one item from each parent."""

    def process(self, *inputs: Any) -> Any:
        """Return the output for one set of inputs."""
        raise NotImplementedError


class OneTaskProcessorNode(ProcessorNode):
    """A stateful processor: always exactly one task."""

    def __init__(self, name: str | None = None, **_: Any) -> None:
        super().__init__(nb_tasks=1, name=name)


class ConsumerNode(Node):
    """Consumes items: ``consume(item)`` gets one item from its parent."""

    def consume(self, item: Any) -> None:
        """Handle one item."""
        raise NotImplementedError


class IntProducer(ProducerNode):
    """Integers from ``start_value`` to ``end_value`` (inclusive; forever if ``None``)."""

    def __init__(
        self,
        start_value: int = 0,
        end_value: int | None = None,
        wait_time_in_seconds: float = 0,
        fps: int = -1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._current = start_value
        self._end = end_value
        self._wait = 1.0 / fps if fps > 0 else wait_time_in_seconds

    def next(self) -> int:
        """The next integer, after sleeping ``wait_time_in_seconds``."""
        if self._end is not None and self._current > self._end:
            raise StopIteration
        if self._wait > 0:
            time.sleep(self._wait)
        value = self._current
        self._current += 1
        return value


class IdentityProcessor(ProcessorNode):
    """Returns its input unchanged."""

    def __init__(self, fps: int = -1, nb_tasks: int = 1, name: str | None = None) -> None:
        super().__init__(nb_tasks=nb_tasks, name=name)

    def process(self, *inputs: Any) -> Any:
        """The input itself (a tuple when there are several parents)."""
        return inputs[0] if len(inputs) == 1 else inputs


class JoinerProcessor(ProcessorNode):
    """Returns the inputs of all parents as one tuple."""

    def process(self, *inputs: Any) -> tuple[Any, ...]:
        """The inputs, in parent order."""
        return inputs


class CommandlineConsumer(ConsumerNode):
    """Prints every item on standard output."""

    def __init__(self, sep: str = "\n", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sep = sep

    def consume(self, item: Any) -> None:
        """Print ``item``."""
        sys.stdout.write(f"{item}{self._sep}")
        sys.stdout.flush()


class VoidConsumer(ConsumerNode):
    """Discards every item."""

    def consume(self, item: Any) -> None:
        """Do nothing."""


# -- the actorflow units that run videoflow nodes --------------------------------------


class ProducerUnit(SourceUnit):
    """Runs a ``ProducerNode``: ``next()`` on the executor thread until ``StopIteration``."""

    out = Output("out")

    def __init__(self, node: ProducerNode) -> None:
        self.node = node

    async def open(self, ctx: Context) -> None:
        """Call the node's ``open``."""
        await ctx.run_blocking(self.node.open)

    async def generate(self, ctx: Context) -> AsyncIterator[Any]:
        """Yield ``next()`` results until ``StopIteration`` (videoflow's STOP_FLOW)."""
        while (item := await ctx.run_blocking(_next_or_end, self.node)) is not _END:
            yield item

    async def close(self, ctx: Context) -> None:
        """Call the node's ``close``."""
        await ctx.run_blocking(self.node.close)


class ProcessorUnit(FlowUnit):
    """Runs a ``ProcessorNode``; with several parents, one input port per parent, joined."""

    out = Output("out")

    def __init__(self, node: ProcessorNode) -> None:
        self.node = node

    @classmethod
    def for_parents(cls, count: int) -> type[ProcessorUnit]:
        """The unit class for a node with ``count`` parents (ports ``in0``, ``in1``, ...)."""
        ports = {f"_in{i}": Input(f"in{i}") for i in range(max(count, 1))}
        return type("ProcessorUnit", (cls,), ports)

    async def open(self, ctx: Context) -> None:
        """Call the node's ``open``."""
        await ctx.run_blocking(self.node.open)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Call ``process(*inputs)`` on the executor thread; ``None`` emits nothing."""
        data = packet.data
        inputs = [data[p.name] for p in self.inputs] if len(self.inputs) > 1 else [data]
        result = await ctx.run_blocking(self.node.process, *inputs)
        if result is not None:
            await ctx.emit(self.out, packet.replace(result))

    async def close(self, ctx: Context) -> None:
        """Call the node's ``close``."""
        await ctx.run_blocking(self.node.close)


class ConsumerUnit(FlowUnit):
    """Runs a ``ConsumerNode``: ``consume(item)`` on the executor thread."""

    inp = Input("in")

    def __init__(self, node: ConsumerNode) -> None:
        self.node = node

    async def open(self, ctx: Context) -> None:
        """Call the node's ``open``."""
        await ctx.run_blocking(self.node.open)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Hand the item to ``consume``."""
        await ctx.run_blocking(self.node.consume, packet.data)

    async def close(self, ctx: Context) -> None:
        """Call the node's ``close``."""
        await ctx.run_blocking(self.node.close)


def _next_or_end(node: ProducerNode) -> Any:
    # StopIteration cannot cross a future, so the end travels as a sentinel
    try:
        return node.next()
    except StopIteration:
        return _END
