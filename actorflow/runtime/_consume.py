"""The consume loops of a replica: take items from the mailbox and hand them to the unit.

Five loops, one semantics:

* ``_bursts.consume_thread``: a one-in/one-out plain-``def`` ``@flowunit`` on a
  plain node (one replica, one input port, no batching), whose items go to its
  thread in bursts; ``_bursts_replicated`` does the same for its replicas, in runs
  of numbered items.
* ``_plain``: any other unit on a plain node (one replica, one input port, no
  batching) — the hop fast path (DESIGN §12).
* ``consume_unordered``: a batching or joining node with one replica.
* the ticketed loop: replicated nodes number every item at take time, so outputs are
  released in input order.

Each loop takes items without an event-loop pass while they are ready and checkpoints
every ``CHECKPOINT_EVERY`` items, so a busy node never starves the loop and a
cancellation (``stop()``) reaches it within that many items.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio

from actorflow.runtime._bursts import consume_thread, is_thread_function
from actorflow.runtime._bursts_replicated import (
    consume_thread_replicated,
    is_replicated_thread_function,
)
from actorflow.runtime._context import ReplicaContext
from actorflow.runtime._mailbox import NOTHING, Item, Lane
from actorflow.runtime._markers import Marker
from actorflow.runtime._node import NodeRuntime
from actorflow.runtime._plain import (
    consume_class,
    consume_function,
    direct_function,
    is_plain,
)
from actorflow.runtime._process import (
    CHECKPOINT_EVERY,
    Held,
    cancel,
    gather,
    on_marker,
    process,
    run_batch,
    take_next,
)
from actorflow.unit import FlowUnit, Packet

Job = (
    tuple[Literal["one"], Packet[Any], int, int | None]
    | tuple[Literal["batch"], list[tuple[Packet[Any], int]], list[Held], int | None]
    | tuple[Literal["marker"], Lane, Marker, int | None]
)
"""What a replica does next; the last item is its output ticket (replicated nodes)."""


async def consume(node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext, limit: int) -> None:
    """Consume until end of stream; ``limit`` is the failures-in-a-row restart threshold.

    Raises:
        RestartNeeded: the unit looks broken (``_process.after_failure``).
    """
    if is_thread_function(node, unit):
        await consume_thread(node, unit, ctx, limit)  # type: ignore[arg-type]
        return
    if is_replicated_thread_function(node, unit):
        await consume_thread_replicated(node, unit, ctx, limit)  # type: ignore[arg-type]
        return
    if is_plain(node):
        function = direct_function(node, unit)
        if function is not None:
            await consume_function(node, function, ctx, limit)
        else:
            await consume_class(node, unit, ctx, limit)
        return
    if not node.ordered:
        await consume_unordered(node, unit, ctx, limit)
        return
    lock = node.taking
    while True:
        await node.wait_window()
        if lock is None:
            job = await _next_job(node, ctx)
        else:
            async with lock:  # replicas of a batching node gather one at a time
                job = await _next_job(node, ctx)
        if job is None:
            return
        if job[0] == "one":
            await process(node, unit, ctx, job[1], job[2], job[3], limit)
        elif job[0] == "batch":
            await run_batch(node, unit, ctx, job[1], job[2], job[3], limit)
        else:
            await on_marker(node, unit, ctx, job[1], job[2], job[3])


async def consume_unordered(
    node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext, limit: int
) -> None:
    """The loop of a batching or joining node with one replica: no tickets, no re-ordering."""
    inbox, aborted = node.inbox, node.flow.aborted
    batching = node.spec.batch_size > 1
    arriving = node.multi or bool(node.collapse_ports)
    burst = 0
    while True:
        got = inbox.take_nowait()
        if got is NOTHING:
            try:
                got = await inbox.take()
            except anyio.EndOfStream:
                return
            burst = 0
        else:
            burst += 1
            if burst >= CHECKPOINT_EVERY:
                burst = 0
                await anyio.lowlevel.checkpoint()
        lane, item = got
        if aborted and item.session in aborted and type(item) is Packet:
            cancel(node, item)
            continue
        parts = 1
        if arriving:
            item, parts = node.arrive(lane, item)
            if item is None:
                continue
        if type(item) is not Packet:
            await on_marker(node, unit, ctx, lane, item, None)  # type: ignore[arg-type]
        elif batching:
            batch, held = await gather(node, item, parts)
            held_jobs: list[Held] = [(ln, m, None) for ln, m in held]
            await run_batch(node, unit, ctx, batch, held_jobs, None, limit)
        else:
            await process(node, unit, ctx, item, parts, None, limit)


async def _next_job(node: NodeRuntime, ctx: ReplicaContext) -> Job | None:
    """Take the next packet, batch or marker of a replicated node; ``None`` at the end.

    Tickets are taken with no await between taking an item and numbering it, so a
    replicated node releases its outputs in exactly the order its inputs arrived.
    """
    ticket = node.next_ticket
    while True:
        got = await take_next(node, ctx, wait=True)
        if got is None:
            return None
        lane, item = got
        parts = 1
        ready: Item | None = item
        if node.multi or node.collapse_ports:
            ready, parts = node.arrive(lane, item)
        if ready is None:
            continue
        if not isinstance(ready, Packet):
            return ("marker", lane, ready, ticket())
        if node.spec.batch_size > 1:
            batch, held = await gather(node, ready, parts)
            first = ticket()
            tickets: list[Held] = [(ln, m, ticket()) for ln, m in held]
            return ("batch", batch, tickets, first)
        return ("one", ready, parts, ticket())
