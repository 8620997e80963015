"""One call of a unit: a packet, a batch, or a marker — and how each one ends.

Failure isolation (DESIGN §5): an exception from ``process``/``process_batch`` fails
the packets of that call only. They are counted as failed, a ``Failed`` marker takes
their place downstream (their sessions receive it as an error naming the node, the
exception type and its message), and the replica goes on with the next packet. A
stream of bad inputs therefore never takes a node down.

A replica is restarted (``close`` then ``open``) only when the unit looks broken:

* the exception is one the unit declares fatal (``FlowUnit.fatal_errors``); such
  restarts count towards the node's restart intensity, which escalates to
  ``FlowFailed`` when exceeded;
* or ``RestartPolicy.failures_before_restart`` calls in a row failed with no success
  in between; such a restart (a fresh ``open`` may cure a unit stuck in a bad state)
  never escalates by itself, so bad inputs cannot fail the flow. If the fresh
  ``open`` fails, that does count.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from actorflow.errors import NodeFailed
from actorflow.runtime._context import ReplicaContext
from actorflow.runtime._mailbox import NOTHING, Lane
from actorflow.runtime._markers import Failed, Marker, SessionEnd
from actorflow.runtime._node import NodeRuntime
from actorflow.unit import FlowUnit, Packet

CHECKPOINT_EVERY = 64
"""Items handled back to back before an actor yields to the event loop."""

Held = tuple[Lane, Marker, int | None]
"""A marker met while gathering a batch, with its ticket."""


class RestartNeeded(Exception):
    """The replica must restart; ``escalate`` says whether it counts towards intensity."""

    def __init__(self, error: NodeFailed, *, escalate: bool) -> None:
        super().__init__(str(error))
        self.error, self.escalate = error, escalate


def after_failure(unit: FlowUnit, ctx: ReplicaContext, error: NodeFailed, limit: int) -> None:
    """Decide whether a failed call restarts the replica (see the module docstring).

    Raises:
        RestartNeeded: the unit declared the error fatal, or ``limit`` calls in a row
            failed.
    """
    ctx.consecutive_failures += 1
    fatal = bool(unit.fatal_errors) and isinstance(error.__cause__, unit.fatal_errors)
    if fatal or ctx.consecutive_failures >= limit:
        ctx.consecutive_failures = 0
        raise RestartNeeded(error, escalate=fatal)


def cancel(node: NodeRuntime, packet: Packet[Any], parts: int = 1) -> None:
    """Count ``packet`` as cancelled (aborted session, or cancelled mid-call)."""
    node.ledger.cancel(packet.session, parts)


async def take_next(node: NodeRuntime, ctx: ReplicaContext, *, wait: bool) -> Any:
    """The next ``(lane, item)`` of ``node``'s mailbox, for the loops that number items.

    Packets of aborted sessions are counted as cancelled and skipped; the replica yields
    to the event loop every ``CHECKPOINT_EVERY`` items (``ctx.burst``). Returns ``None``
    at end of stream and, when ``wait`` is false, ``NOTHING`` if no item is ready.
    """
    inbox, aborted = node.inbox, node.flow.aborted
    while True:
        if ctx.burst >= CHECKPOINT_EVERY:
            ctx.burst = 0
            await anyio.lowlevel.checkpoint()
        got = inbox.take_nowait()
        if got is NOTHING:
            if not wait:
                return NOTHING
            try:
                got = await inbox.take()
            except anyio.EndOfStream:
                return None
            ctx.burst = 0
        ctx.burst += 1
        item = got[1]
        if aborted and item.session in aborted and type(item) is Packet:
            cancel(node, item)
            continue
        return got


async def process(
    node: NodeRuntime,
    unit: FlowUnit,
    ctx: ReplicaContext,
    packet: Packet[Any],
    parts: int,
    ticket: int | None,
    limit: int,
) -> None:
    """Run ``unit.process`` on one packet and record its outcome."""
    if ticket is not None:
        ctx.pending = []
    ctx.begin(packet)
    started = time.perf_counter()
    try:
        await unit.process(ctx, packet)
    except Exception as exc:
        error = fail(node, ctx, [(packet, parts)], exc)
        await complete(node, ctx, ticket)
        after_failure(unit, ctx, error, limit)
        return
    except BaseException:  # cancelled mid-call: the packet is accounted for here
        cancel(node, packet, parts)
        if ctx.copies:
            node.ledger.spawn(packet.session, ctx.copies)
        raise
    ended = time.perf_counter()
    node.counters.busy_s += ended - started
    node.counters.latency.observe(ended - started)
    ctx.consecutive_failures = 0
    if node.tracer is not None:
        node.tracer.span(
            f"{node.id}/{ctx.replica}",
            "process",
            started,
            ended,
            session=packet.session,
            seq=packet.seq,
        )
    if ctx.failed:  # the unit failed this packet with ctx.fail()
        ctx.failed.clear()
        if ctx.copies:
            node.ledger.spawn(packet.session, ctx.copies)
    elif node.terminal:
        node.ledger.deliver(packet.session, parts)
    else:
        node.ledger.process(packet.session, parts, ctx.copies)
    if node.expand_ports:
        ctx.end_children()
    ctx.current = None
    await complete(node, ctx, ticket)


async def run_batch(
    node: NodeRuntime,
    unit: FlowUnit,
    ctx: ReplicaContext,
    batch: list[tuple[Packet[Any], int]],
    held: list[Held],
    ticket: int | None,
    limit: int,
) -> None:
    """Process one batch, then the markers met while gathering it (also on failure)."""
    if ticket is not None:
        ctx.pending = []
    ctx.begin(None)
    started = time.perf_counter()
    try:
        await unit.process_batch(ctx, [p for p, _ in batch])
    except Exception as exc:
        error = fail(node, ctx, batch, exc)
        await complete(node, ctx, ticket)
        for lane, marker, marker_ticket in held:
            await on_marker(node, unit, ctx, lane, marker, marker_ticket)
        after_failure(unit, ctx, error, limit)
        return
    except BaseException:  # cancelled mid-call: the batch is accounted for here
        for packet, count in batch:
            cancel(node, packet, count)
        _spawned_before_failure(node, ctx)
        raise
    ended = time.perf_counter()
    counters = node.counters
    counters.busy_s += ended - started
    counters.batches += 1
    counters.latency.observe(ended - started)
    counters.batch_sizes.observe(len(batch))
    ctx.consecutive_failures = 0
    if node.tracer is not None:
        node.tracer.span(
            f"{node.id}/{ctx.replica}", "process_batch", started, ended, size=len(batch)
        )
    _account_batch(node, ctx, batch)
    await complete(node, ctx, ticket)
    for lane, marker, marker_ticket in held:
        await on_marker(node, unit, ctx, lane, marker, marker_ticket)


def _account_batch(
    node: NodeRuntime, ctx: ReplicaContext, batch: list[tuple[Packet[Any], int]]
) -> None:
    """Record a finished batch per session (members failed with ``ctx.fail`` are done)."""
    failed, ctx.failed = ctx.failed, set()
    copies = ctx.batch_copies or {}
    ctx.batch_copies = None
    per_session: dict[int, list[int]] = {}
    for packet, count in batch:
        if id(packet) in failed:
            continue
        if node.terminal:
            node.ledger.deliver(packet.session, count)
            continue
        entry = per_session.setdefault(packet.session, [0, 0])
        entry[0] += 1
        entry[1] += count
    for session, (items, parts) in per_session.items():
        node.ledger.process_batch(session, items, parts, copies.pop(session, 0))
    for session, extra in copies.items():  # copies of packets the unit failed itself
        node.ledger.spawn(session, extra)


def _spawned_before_failure(node: NodeRuntime, ctx: ReplicaContext) -> None:
    """Copies a failed or cancelled batch already emitted are in flight: count them."""
    for session, copies in (ctx.batch_copies or {}).items():
        node.ledger.spawn(session, copies)
    ctx.batch_copies = None


async def gather(
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
            cancel(node, item)
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


def fail(
    node: NodeRuntime, ctx: ReplicaContext, batch: list[tuple[Packet[Any], int]], exc: Exception
) -> NodeFailed:
    """Record the failure of every packet in ``batch``; markers take their places.

    Packets the unit already failed with ``ctx.fail()`` are not counted twice; copies
    emitted before the exception are in flight and counted as spawned.
    """
    error = NodeFailed(node.id, ctx.unit, "process", f"{type(exc).__name__}: {exc}")
    error.__cause__ = exc
    already, ctx.failed = ctx.failed, set()
    if ctx.batch_copies is not None:
        _spawned_before_failure(node, ctx)
    elif ctx.copies and batch:
        node.ledger.spawn(batch[0][0].session, ctx.copies)
    for packet, parts in batch:
        if id(packet) in already:
            continue
        node.ledger.fail(packet.session, parts)
        ctx.forward_marker(Failed(packet.session, packet.lineage, node.id, packet.seq, error))
    ctx.log.warning("packet_failed", error=repr(exc), packets=len(batch))
    ctx.current = None
    return error


async def complete(node: NodeRuntime, ctx: ReplicaContext, ticket: int | None) -> None:
    """Release this replica's emissions in ticket order (replicated nodes only)."""
    if ticket is None:
        return
    pending, ctx.pending = ctx.pending or [], None
    await node.complete(ticket, pending)


async def on_marker(
    node: NodeRuntime,
    unit: FlowUnit,
    ctx: ReplicaContext,
    lane: Lane,
    marker: Marker,
    ticket: int | None,
) -> None:
    """Forward a marker once it came from every lane; a session end clears leftovers."""
    if ticket is not None:
        ctx.pending = []
    if isinstance(marker, Failed):
        node.counters.upstream_failed += 1
        ctx.forward_marker(marker)
    elif node.marker_complete(marker):
        if isinstance(marker, SessionEnd):
            left = node.forget_session(marker.session)
            if left:
                node.ledger.cancel(marker.session, left)
            if node.terminal:
                node.flow.session_end_at_sink(marker.session)
        ctx.forward_marker(marker)
    await complete(node, ctx, ticket)
