"""The consume loops of a replica: take items from the mailbox and hand them to the unit.

Four loops, one semantics:

* ``_bursts.consume_thread``: a one-in/one-out plain-``def`` ``@flowunit`` on a
  plain node (one replica, one input port, no batching), whose items go to its
  thread in bursts.
* ``consume_plain``: any other unit on a plain node — the hop fast path (DESIGN
  §12), the same loop for class units and async functions (a one-in/one-out async
  function is called directly, its result sent without ``process``/``emit``).
* ``consume_unordered``: a batching or joining node with one replica.
* the ticketed loop: replicated nodes number every item at take time, so outputs are
  released in input order.

Each loop takes items without an event-loop pass while they are ready and checkpoints
every ``CHECKPOINT_EVERY`` items, so a busy node never starves the loop and a
cancellation (``stop()``) reaches it within that many items.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import anyio

from actorflow.runtime._bursts import consume_thread, is_thread_function
from actorflow.runtime._context import ReplicaContext
from actorflow.runtime._mailbox import NOTHING, Item, Lane
from actorflow.runtime._markers import Marker
from actorflow.runtime._node import NodeRuntime
from actorflow.runtime._process import (
    Held,
    after_failure,
    cancel,
    fail,
    gather,
    on_marker,
    process,
    run_batch,
)
from actorflow.unit import FlowUnit, FunctionUnit, Packet

CHECKPOINT_EVERY = 64
"""Items handled back to back before an actor yields to the event loop."""

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
    if _is_plain(node):
        await consume_plain(node, unit, ctx, limit)
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
    inbox, aborted = node.inbox, node.flow.aborted
    ticket = node.next_ticket
    while True:
        if ctx.burst >= CHECKPOINT_EVERY:
            ctx.burst = 0
            await anyio.lowlevel.checkpoint()
        got = inbox.take_nowait()
        if got is NOTHING:
            try:
                got = await inbox.take()
            except anyio.EndOfStream:
                return None
            ctx.burst = 0
        ctx.burst += 1
        lane, item = got
        if aborted and item.session in aborted and type(item) is Packet:
            cancel(node, item)
            continue
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


def _is_plain(node: NodeRuntime) -> bool:
    """One replica, one input port, no batching: the hop fast path applies."""
    return not (node.ordered or node.multi or node.collapse_ports) and node.spec.batch_size == 1


def _direct_function(node: NodeRuntime, unit: FlowUnit) -> FunctionUnit | None:
    """A one-in/one-out async ``@flowunit``: called directly, its result sent by the loop."""
    if (
        isinstance(unit, FunctionUnit)
        and unit._is_async
        and not (unit._multi_in or unit._multi_out or unit._expand)
        and len(node.out_list) == 1
    ):
        return unit
    return None


async def consume_plain(node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext, limit: int) -> None:
    """``consume`` for plain nodes (``_is_plain``): the hop fast path (DESIGN §12).

    One loop for class units and async function units, with the semantics of
    ``_process.process``: an async one-in/one-out function is called directly and its
    result sent without ``emit``; a class unit's ``process`` is awaited with the
    context prepared inline. Busy time is measured per burst (from waking up to waiting
    again, less the time spent waiting on full consumers) rather than per packet: two
    clock reads per packet would cost a tenth of the hop budget. A burst that processed
    no packet (only markers or failures) adds no busy time, as in ``process``; each
    burst adds its busy time to the latency histogram, spread over its packets.
    """
    inbox, counters, aborted, ledger = node.inbox, node.counters, node.flow.aborted, node.ledger
    function = _direct_function(node, unit)
    fn, params = (function._fn, function._params) if function is not None else (None, None)
    senders = node.out_list[0].senders if function is not None else []
    extra_copies = len(senders) - 1
    terminal, expands = node.terminal, bool(node.expand_ports)
    clock = time.perf_counter
    tracer, track = node.tracer, f"{node.id}/{ctx.replica}"
    single = inbox.lanes[0] if len(inbox.lanes) == 1 else None
    burst = 0
    awake, blocked, done_at_wake = clock(), node.blocked_s, counters.processed
    while True:
        if single is not None and single.items and burst < CHECKPOINT_EVERY:
            lane, item = single, single.items.popleft()
            if type(item) is not Packet:
                single.markers -= 1
            if single._space_parked:
                single.space_freed()
            burst += 1
        else:
            got = inbox.take_nowait()
            if got is NOTHING or burst >= CHECKPOINT_EVERY:
                done = counters.processed - done_at_wake
                if done:  # per burst, not per packet: see NodeStatistics.latency
                    spent = clock() - awake - (node.blocked_s - blocked)
                    counters.busy_s += spent
                    counters.latency.observe(spent / done, done)
                if got is NOTHING:
                    try:
                        got = await inbox.take()
                    except anyio.EndOfStream:
                        return
                else:
                    await anyio.lowlevel.checkpoint()
                awake, blocked, done_at_wake = clock(), node.blocked_s, counters.processed
                burst = 0
            lane, item = got
            burst += 1
        if type(item) is not Packet:
            await on_marker(node, unit, ctx, lane, item, None)  # type: ignore[arg-type]
            continue
        if aborted and item.session in aborted:
            cancel(node, item)
            continue
        if tracer is not None:
            started = clock()
        if fn is None:  # a class unit (or a function with several outputs or expand)
            ctx.current, ctx.children, ctx.copies, ctx.batch_copies = item, 0, 0, None
            try:
                await unit.process(ctx, item)
            except Exception as exc:
                after_failure(unit, ctx, fail(node, ctx, [(item, 1)], exc), limit)
                continue
            except BaseException:  # cancelled mid-call: the packet is accounted for here
                cancel(node, item)
                if ctx.copies:
                    ledger.spawn(item.session, ctx.copies)
                raise
            if ctx.consecutive_failures:
                ctx.consecutive_failures = 0
            if tracer is not None:
                tracer.span(track, "process", started, clock(), session=item.session, seq=item.seq)
            if ctx.failed:  # the unit failed this packet with ctx.fail()
                ctx.failed.clear()
                if ctx.copies:
                    ledger.spawn(item.session, ctx.copies)
            elif terminal:
                ledger.deliver(item.session)
            elif ctx.copies == 1:  # one packet in, one out: nothing for the session ledger
                counters.processed += 1
            else:
                ledger.process(item.session, 1, ctx.copies)
            if expands:
                ctx.end_children()
            ctx.current = None
            continue
        try:
            result = await fn(item.data, **params) if params else await fn(item.data)
        except Exception as exc:
            ctx.begin(item)
            after_failure(unit, ctx, fail(node, ctx, [(item, 1)], exc), limit)
            continue
        except BaseException:  # cancelled mid-call: the packet is accounted for here
            cancel(node, item)
            raise
        if ctx.consecutive_failures:
            ctx.consecutive_failures = 0
        if tracer is not None:
            tracer.span(track, "process", started, clock(), session=item.session, seq=item.seq)
        if terminal:
            ledger.deliver(item.session)
        elif result is None:
            ledger.process(item.session, 1, 0)
        else:
            counters.processed += 1
            if extra_copies:
                ledger.spawn(item.session, extra_copies)
            out = Packet(result, item.session, item.seq, item.lineage, item.meta)
            counters.emitted += 1
            for sender in senders:
                if not sender.put_nowait(out):
                    await node.put_blocked(sender, out)
