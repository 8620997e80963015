"""Actors: one task per replica drives one unit; one task per source drives a generator.

Lifecycle guarantees (the unit's side is documented on ``FlowUnit``):

* ``open`` runs before ``task_status.started()``, so the supervisor's ``tg.start``
  returns only once the unit is ready: consumers open before their producers.
* ``close`` runs exactly once per successful ``open``, shielded and bounded by
  ``close_timeout``, also when the flow is cancelled.
* A failing ``process`` fails that packet: it is counted, a ``Failed`` marker takes
  its place downstream (sessions receive it as an error), and the replica restarts
  under the node's ``Supervision``.
* When the last replica of a node ends, the node's output lanes close: consumers see
  end of stream once they have drained them.
* The loop takes items without an event-loop pass while they are ready (the hop fast
  path) and checkpoints every ``CHECKPOINT_EVERY`` items, so a busy node never starves
  the loop.
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Literal

import anyio
from anyio.abc import TaskStatus

from actorflow.errors import NodeFailed
from actorflow.runtime._mailbox import NOTHING, Item, Lane
from actorflow.runtime._markers import Failed, Marker, SessionEnd
from actorflow.runtime._node import NodeRuntime, ReplicaContext
from actorflow.unit import FlowUnit, FunctionUnit, Packet

if TYPE_CHECKING:
    from actorflow.runtime._supervision import Supervision

CHECKPOINT_EVERY = 64
"""Items handled back to back before an actor yields to the event loop."""


class _PacketFailed(Exception):
    """A packet failed; the replica must restart."""

    def __init__(self, error: NodeFailed) -> None:
        super().__init__(str(error))
        self.error = error


async def run_replica(
    node: NodeRuntime,
    unit: FlowUnit,
    replica: int,
    supervision: Supervision,
    *,
    close_timeout: float,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Drive one replica of ``node``: open, consume until end of stream, close."""
    ctx = ReplicaContext(node, replica)
    try:
        await _open(node, unit, ctx)
        task_status.started()
        while True:
            try:
                await _consume(node, unit, ctx)
                break
            except _PacketFailed as failure:
                await _close(node, unit, ctx, close_timeout, quiet=True)
                await supervision.on_failure(failure.error)
                node.counters.restarts = supervision.restarts
                ctx.log.warning(
                    "node_restarted",
                    restarts=supervision.restarts,
                    cause=str(failure.error.__cause__),
                )
                await _open(node, unit, ctx)
        await _close(node, unit, ctx, close_timeout)
    except BaseException:
        if ctx.opened:
            await _close(node, unit, ctx, close_timeout, quiet=True)
        raise
    finally:
        node.live_replicas -= 1
        if node.live_replicas == 0:
            node.close_outputs()


async def run_source(
    node: NodeRuntime,
    unit: FlowUnit,
    session: int,
    *,
    close_timeout: float,
    stop_scope: anyio.CancelScope,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Drive a source: iterate its generator, then end its session's stream."""
    ctx = ReplicaContext(node, 0)
    counters = node.counters
    port = node.out_list[0]
    seq = 0
    try:
        await _open(node, unit, ctx)
        task_status.started()
        ledger = node.flow.session_counters(session)
        with stop_scope:
            async with aclosing(unit.generate(ctx)) as gen:  # type: ignore[attr-defined]
                burst = 0
                senders = port.senders
                async for data in gen:
                    packet = Packet(data, session, seq)
                    seq += 1
                    counters.processed += 1
                    counters.emitted += 1
                    if ledger is not None:
                        ledger.sent += 1
                    for sender in senders:
                        if not sender.put_nowait(packet):
                            await sender.put(packet)
                    burst += 1
                    if burst >= CHECKPOINT_EVERY:
                        burst = 0
                        await anyio.lowlevel.checkpoint()
        await _close(node, unit, ctx, close_timeout)
    except Exception as exc:
        if ctx.opened:
            await _close(node, unit, ctx, close_timeout, quiet=True)
        if isinstance(exc, NodeFailed):
            raise
        raise NodeFailed(node.id, ctx.unit, "source", repr(exc)) from exc
    except BaseException:
        if ctx.opened:
            await _close(node, unit, ctx, close_timeout, quiet=True)
        raise
    finally:
        node.send_marker(None, SessionEnd(session, (), node.id, seq))
        node.live_replicas -= 1
        node.close_outputs()


async def _open(node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext) -> None:
    try:
        await unit.open(ctx)
    except Exception as exc:
        raise NodeFailed(node.id, ctx.unit, "open", repr(exc)) from exc
    ctx.opened = True
    ctx.log.debug("node_opened")


async def _close(
    node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext, timeout: float, *, quiet: bool = False
) -> None:
    """Close once per open, shielded and bounded; ``quiet`` logs errors instead of raising."""
    if not ctx.opened:
        return
    ctx.opened = False
    with anyio.move_on_after(timeout, shield=True) as scope:
        try:
            await unit.close(ctx)
        except Exception as exc:
            if not quiet:
                raise NodeFailed(node.id, ctx.unit, "close", repr(exc)) from exc
            ctx.log.warning("node_close_failed", error=repr(exc))
    if scope.cancelled_caught:
        ctx.log.warning("node_close_timed_out", timeout_s=timeout)


async def _consume(node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext) -> None:
    if _is_simple_function(node, unit):
        await _consume_function(node, unit, ctx)  # type: ignore[arg-type]
        return
    if not node.ordered:
        await _consume_unordered(node, unit, ctx)
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
            await _process(node, unit, ctx, job[1], job[2], job[3])
        elif job[0] == "batch":
            await _run_batch(node, unit, ctx, job[1], job[2], job[3])
        else:
            await _on_marker(node, unit, ctx, job[1], job[2], job[3])


async def _consume_unordered(node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext) -> None:
    """The loop of a node with one replica: no tickets, no re-ordering."""
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
            _cancel(node, item)
            continue
        parts = 1
        if arriving:
            item, parts = node.arrive(lane, item)
            if item is None:
                continue
        if type(item) is not Packet:
            await _on_marker(node, unit, ctx, lane, item, None)  # type: ignore[arg-type]
        elif batching:
            batch, held = await _gather(node, item, parts)
            await _run_batch(node, unit, ctx, batch, [(ln, m, None) for ln, m in held], None)
        else:
            await _process(node, unit, ctx, item, parts, None)


Held = tuple[Lane, Marker, int | None]
"""A marker met while gathering a batch, with its ticket."""


Job = (
    tuple[Literal["one"], Packet[Any], int, int | None]
    | tuple[Literal["batch"], list[tuple[Packet[Any], int]], list[Held], int | None]
    | tuple[Literal["marker"], Lane, Marker, int | None]
)
"""What a replica does next; the last item is its output ticket (replicated nodes)."""


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
            _cancel(node, item)
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
            batch, held = await _gather(node, ready, parts)
            first = ticket()
            tickets: list[Held] = [(ln, m, ticket()) for ln, m in held]
            return ("batch", batch, tickets, first)
        return ("one", ready, parts, ticket())


def _is_simple_function(node: NodeRuntime, unit: FlowUnit) -> bool:
    """A one-in/one-out async ``@flowunit`` on a plain node: the hop fast path applies."""
    return (
        isinstance(unit, FunctionUnit)
        and unit._is_async
        and not (unit._multi_in or unit._multi_out or unit._expand)
        and not (node.ordered or node.multi or node.collapse_ports)
        and node.spec.batch_size == 1
        and len(node.out_list) == 1
    )


async def _consume_function(node: NodeRuntime, unit: FunctionUnit, ctx: ReplicaContext) -> None:
    """``_consume`` specialised for simple async function units (DESIGN §12: the hop budget).

    Same semantics as the general loop, with the function called directly and its result
    sent without going through ``process``/``emit``. Busy time is measured per burst
    (from waking up to waiting again, less time spent waiting on full consumers) rather
    than per packet: two clock reads per packet would cost a tenth of the hop budget.
    """
    inbox, counters, aborted = node.inbox, node.counters, node.flow.aborted
    fn, params = unit._fn, unit._params
    senders = node.out_list[0].senders
    terminal = node.terminal
    clock = time.perf_counter
    tracer, track = node.tracer, f"{node.id}/{ctx.replica}"
    single = inbox.lanes[0] if len(inbox.lanes) == 1 else None
    burst = 0
    awake = clock()
    done_at_wake = counters.processed
    while True:
        if single is not None and single.items and burst < CHECKPOINT_EVERY:
            lane, item = single, single.items.popleft()
            if type(item) is not Packet:
                single.markers -= 1
            if single._space:
                single.space_freed()
            burst += 1
        else:
            got = inbox.take_nowait()
            if got is NOTHING or burst >= CHECKPOINT_EVERY:
                spent, done = clock() - awake, counters.processed - done_at_wake
                counters.busy_s += spent
                if done:  # per burst, not per packet: see NodeStatistics.latency
                    counters.latency.observe(spent / done, done)
                if got is NOTHING:
                    try:
                        got = await inbox.take()
                    except anyio.EndOfStream:
                        return
                else:
                    await anyio.lowlevel.checkpoint()
                awake = clock()
                done_at_wake = counters.processed
                burst = 0
            lane, item = got
            burst += 1
        if type(item) is not Packet:
            await _on_marker(node, unit, ctx, lane, item, None)  # type: ignore[arg-type]
            continue
        if aborted and item.session in aborted:
            _cancel(node, item)
            continue
        if tracer is not None:
            started = clock()
        try:
            result = await fn(item.data, **params) if params else await fn(item.data)
        except Exception as exc:
            raise _PacketFailed(_fail(node, ctx, [(item, 1)], exc)) from exc
        except BaseException:  # cancelled mid-call: the packet is accounted for here
            _cancel(node, item)
            raise
        if tracer is not None:
            tracer.span(track, "process", started, clock(), session=item.session, seq=item.seq)
        counters.processed += 1
        if terminal:
            node.delivered(item.session)
        if result is not None:
            out = Packet(result, item.session, item.seq, item.lineage, item.meta)
            counters.emitted += 1
            for sender in senders:
                if not sender.put_nowait(out):
                    blocked = clock()
                    await sender.put(out)
                    awake += clock() - blocked


def _cancel(node: NodeRuntime, packet: Packet[Any]) -> None:
    node.counters.cancelled += 1
    node.charge(packet, "cancelled")


async def _process(
    node: NodeRuntime,
    unit: FlowUnit,
    ctx: ReplicaContext,
    packet: Packet[Any],
    parts: int,
    ticket: int | None,
) -> None:
    if ticket is not None:
        ctx.pending = []
    ctx.current = packet
    ctx.children = 0
    started = time.perf_counter()
    try:
        await unit.process(ctx, packet)
    except Exception as exc:
        error = _fail(node, ctx, [(packet, parts)], exc)
        await _complete(node, ctx, ticket)
        raise _PacketFailed(error) from exc
    except BaseException:  # cancelled mid-call: the packet is accounted for here
        node.counters.cancelled += parts
        node.charge(packet, "cancelled", parts)
        raise
    ended = time.perf_counter()
    counters = node.counters
    counters.busy_s += ended - started
    counters.latency.observe(ended - started)
    if ctx.failed:  # the unit failed this packet with ctx.fail()
        ctx.failed.clear()
        parts = 0
    counters.processed += parts
    if node.tracer is not None:
        node.tracer.span(
            f"{node.id}/{ctx.replica}",
            "process",
            started,
            ended,
            session=packet.session,
            seq=packet.seq,
        )
    if node.expand_ports:
        ctx.end_children()
    if node.terminal and parts:
        node.delivered(packet.session, parts)
    ctx.current = None
    if ticket is not None:
        await _complete(node, ctx, ticket)


async def _run_batch(
    node: NodeRuntime,
    unit: FlowUnit,
    ctx: ReplicaContext,
    batch: list[tuple[Packet[Any], int]],
    held: list[Held],
    ticket: int | None,
) -> None:
    """Process one batch, then the markers met while gathering it (also on failure)."""
    if ticket is not None:
        ctx.pending = []
    ctx.current = None
    started = time.perf_counter()
    try:
        await unit.process_batch(ctx, [p for p, _ in batch])
    except Exception as exc:
        error = _fail(node, ctx, batch, exc)
        await _complete(node, ctx, ticket)
        for lane, marker, marker_ticket in held:
            await _on_marker(node, unit, ctx, lane, marker, marker_ticket)
        raise _PacketFailed(error) from exc
    except BaseException:  # cancelled mid-call: the batch is accounted for here
        for packet, count in batch:
            node.counters.cancelled += count
            node.charge(packet, "cancelled", count)
        raise
    ended = time.perf_counter()
    counters = node.counters
    counters.busy_s += ended - started
    counters.batches += 1
    counters.latency.observe(ended - started)
    counters.batch_sizes.observe(len(batch))
    if node.tracer is not None:
        node.tracer.span(
            f"{node.id}/{ctx.replica}", "process_batch", started, ended, size=len(batch)
        )
    failed, ctx.failed = ctx.failed, set()
    for packet, count in batch:
        if id(packet) in failed:
            continue
        counters.processed += count
        if node.terminal:
            node.delivered(packet.session, count)
    await _complete(node, ctx, ticket)
    for lane, marker, marker_ticket in held:
        await _on_marker(node, unit, ctx, lane, marker, marker_ticket)


async def _gather(
    node: NodeRuntime,
    first: Packet[Any],
    parts: int,
) -> tuple[list[tuple[Packet[Any], int]], list[tuple[Lane, Marker]]]:
    """Gather up to ``batch_size`` ready packets within ``batch_timeout`` of the first.

    Returns the batch and the markers met while gathering, to handle after it. End
    markers (``SessionEnd``, ``GroupEnd``) do not end the batch: nothing of their
    session or group can follow them, so handling them after the batch keeps every
    session's order, and one request per session still batches across sessions. A
    ``Failed`` marker ends the batch, so an error keeps its place among its session's
    results. The partial batch is always delivered.
    """
    spec, inbox = node.spec, node.inbox
    batch = [(first, parts)]
    held: list[tuple[Lane, Marker]] = []
    deadline = time.monotonic() + spec.batch_timeout
    aborted = node.flow.aborted
    while len(batch) < spec.batch_size:
        got = inbox.take_nowait()
        if got is NOTHING:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or inbox.open_lanes == 0:
                break
            with anyio.move_on_after(remaining):
                await inbox.wait_for_item()
            continue
        lane, item = got
        if aborted and item.session in aborted and type(item) is Packet:
            _cancel(node, item)
            continue
        count = 1
        if node.multi or node.collapse_ports:
            item, count = node.arrive(lane, item)
            if item is None:
                continue
        if type(item) is not Packet:
            held.append((lane, item))  # type: ignore[arg-type]
            if isinstance(item, Failed):
                break
            continue
        batch.append((item, count))
    return batch, held


def _fail(
    node: NodeRuntime, ctx: ReplicaContext, batch: list[tuple[Packet[Any], int]], exc: Exception
) -> NodeFailed:
    """Record the failure of every packet in ``batch``; markers take their places.

    Packets the unit already failed with ``ctx.fail()`` are not counted twice.
    """
    error = NodeFailed(node.id, ctx.unit, "process", repr(exc))
    error.__cause__ = exc
    already, ctx.failed = ctx.failed, set()
    for packet, parts in batch:
        if id(packet) in already:
            continue
        node.counters.failed += parts
        node.charge(packet, "failed", parts)
        ctx.forward_marker(Failed(packet.session, packet.lineage, node.id, packet.seq, error))
    ctx.log.warning("packet_failed", error=repr(exc), packets=len(batch))
    ctx.current = None
    return error


async def _complete(node: NodeRuntime, ctx: ReplicaContext, ticket: int | None) -> None:
    """Release this replica's emissions in ticket order (replicated nodes only)."""
    if ticket is None:
        return
    pending, ctx.pending = ctx.pending or [], None
    await node.complete(ticket, pending)


async def _on_marker(
    node: NodeRuntime,
    unit: FlowUnit,
    ctx: ReplicaContext,
    lane: Lane,
    marker: Marker,
    ticket: int | None,
) -> None:
    if ticket is not None:
        ctx.pending = []
    if isinstance(marker, Failed):
        node.counters.upstream_failed += 1
        ctx.forward_marker(marker)
    elif node.marker_complete(marker):
        if isinstance(marker, SessionEnd):
            left = node.forget_session(marker.session)
            if left:
                node.counters.cancelled += left
                node.charge(marker, "cancelled", left)
            if node.terminal:
                node.flow.session_end_at_sink(marker.session)
        ctx.forward_marker(marker)
    await _complete(node, ctx, ticket)
