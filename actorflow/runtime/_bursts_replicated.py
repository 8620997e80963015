"""Replicas of a plain-``def`` function unit: bursts of numbered items.

``_bursts`` hands a single replica's items to its thread in bursts. A replicated node
(``replicas > 1``) releases its outputs in input order, so every item is numbered (a
*ticket*) when it is taken and its outputs wait in the re-order buffer until every
earlier ticket is done (``NodeRuntime.complete``). Here a replica takes a run of
consecutive tickets at once, hands the run to its own thread in one call
(``NodeExecutor.run_each``) and completes the tickets in order: one thread hand-off
and one loop wake-up per run instead of per item, while the other replicas take the
next runs in parallel.

Guarantees, item by item as in the general loop:

* outputs leave the node in input order, whichever replica ran them;
* a replica takes at most its share of the re-order window (``window // replicas``),
  so every replica finds work while items wait; a lone item goes alone, at once;
* each item ends in exactly one ledger outcome; an exception fails its item only
  (its ticket carries the ``Failed`` marker), and the items after it in the run,
  already numbered, go back to ``ReplicaContext.numbered`` to run next (after a
  restart, if ``after_failure`` asks for one): a restart never loses a ticket;
* cancellation abandons the thread call like any other and counts every item of the
  run not yet recorded as cancelled.

The re-order window of such a node is widened to ``2 * replicas * RUN + 2`` tickets
(``RUN`` per replica, twice over): the outputs it may hold grow with it.
"""

from __future__ import annotations

from typing import Any

from actorflow.runtime._bursts import BURST_MAX, record, run_on_thread, thread_function_node
from actorflow.runtime._context import ReplicaContext
from actorflow.runtime._mailbox import NOTHING, Item, Lane
from actorflow.runtime._node import NodeRuntime, OutPort
from actorflow.runtime._process import after_failure, cancel, fail, on_marker, take_next
from actorflow.unit import FlowUnit, FunctionUnit, Packet

RUN = 8
"""Sizes the re-order window (``2 * replicas * RUN + 2``): with the window empty, each
replica's share is about ``2 * RUN`` items."""

Numbered = tuple[Lane | None, Item, int]
"""An item taken and numbered but not run yet: its lane, the item, its ticket."""


def is_replicated_thread_function(node: NodeRuntime, unit: FlowUnit) -> bool:
    """A ``_bursts.thread_function_node`` with several replicas: this module's loop."""
    return node.ordered and thread_function_node(node, unit)


async def consume_thread_replicated(
    node: NodeRuntime, unit: FunctionUnit, ctx: ReplicaContext, limit: int
) -> None:
    """Consume until end of stream, calling the function on the thread in numbered runs.

    Raises:
        RestartNeeded: the unit looks broken (``_process.after_failure``); the items
            numbered but not run wait in ``ctx.numbered``.
    """
    node.widen_window(2 * node.spec.replicas * RUN + 2)
    todo = ctx.numbered
    while True:
        if not todo:
            await node.wait_window()
            if not await _take(node, ctx, todo):
                return
        lane, item, ticket = todo[0]
        if type(item) is not Packet:
            del todo[0]
            await on_marker(node, unit, ctx, lane, item, ticket)  # type: ignore[arg-type]
            continue
        size = 1
        while size < len(todo) and type(todo[size][1]) is Packet:
            size += 1
        run = todo[:size]
        del todo[:size]
        await _run(node, unit, ctx, run, limit)


async def _take(node: NodeRuntime, ctx: ReplicaContext, todo: list[Numbered]) -> bool:
    """Number this replica's share of the ready items into ``todo``; ``False`` at the end.

    Waits for the first item; takes the others only if ready, stopping after a marker.
    Each item is numbered as it is taken, so tickets follow the input order.
    """
    share = max(1, min(BURST_MAX, node.window_room() // node.spec.replicas))
    while len(todo) < share:
        got = await take_next(node, ctx, wait=not todo)
        if got is NOTHING:
            break
        if got is None:
            return False
        lane, item = got
        todo.append((lane, item, node.next_ticket()))
        if type(item) is not Packet:
            break
    return True


async def _run(
    node: NodeRuntime,
    unit: FunctionUnit,
    ctx: ReplicaContext,
    run: list[Numbered],
    limit: int,
) -> None:
    """Run ``run`` on the thread, then complete each ticket in order.

    Raises:
        RestartNeeded: as ``after_failure`` decides, once the failed item's ticket is
            complete and the items after it wait in ``ctx.numbered``.
    """
    packets: list[Packet[Any]] = [item for _, item, _ in run]  # type: ignore[misc]
    results, error = await run_on_thread(node, unit, ctx, packets)
    port: OutPort = node.out_list[0]
    done = 0
    try:
        for (_, _, ticket), packet, result in zip(run, packets, results, strict=False):
            done += 1
            out = record(node, packet, result)
            await node.complete(ticket, [] if out is None else [(port, out)])
    except BaseException:  # cancelled while releasing into a full consumer
        for packet in packets[done:]:
            cancel(node, packet)
        raise
    if error is None:
        return
    failed, ticket = packets[len(results)], run[len(results)][2]
    ctx.numbered[:0] = run[len(results) + 1 :]  # numbered already: they run next
    ctx.pending = []
    ctx.begin(failed)
    failure = fail(node, ctx, [(failed, 1)], error)  # its Failed marker goes to pending
    emissions, ctx.pending = ctx.pending, None
    await node.complete(ticket, emissions)
    after_failure(unit, ctx, failure, limit)
