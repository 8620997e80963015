"""The consume loop of a plain-``def`` function unit: items go to its thread in bursts.

A plain function runs on the replica's own worker thread (``actorflow-<node>-<i>``).
Handing it one item at a time costs a thread wake-up and a loop wake-up per item
(about 100 µs); here the replica takes every item already waiting in its mailbox (up
to ``BURST_MAX``), hands them to the thread in one call (``NodeExecutor.run_each``)
and gets the results back in one loop wake-up. A lone item goes alone, without
waiting for company, so the latency of a single item is one round trip as before.

Same semantics as the general loop, item by item and in order:

* each item ends in exactly one ledger outcome: processed (emitted or filtered),
  failed, or cancelled;
* an exception fails its item only; the thread stops at it, the items after it go
  back into ``ReplicaContext.carry`` and are handed over again after the failure was
  recorded (and after a restart, if ``after_failure`` asks for one);
* a marker ends a burst: it is handled after the items taken before it;
* cancellation (``stop()``) abandons the burst's thread call like any other
  (``NodeExecutor``), runs none of its remaining items, and counts every item of the
  burst not yet recorded as cancelled.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from actorflow.errors import NodeFailed
from actorflow.runtime._context import ReplicaContext
from actorflow.runtime._mailbox import NOTHING, Item, Lane
from actorflow.runtime._node import NodeRuntime
from actorflow.runtime._process import after_failure, cancel, fail, on_marker
from actorflow.unit import FlowUnit, FunctionUnit, Packet

BURST_MAX = 64
"""Items handed to the thread in one call, at most."""


def thread_function_node(node: NodeRuntime, unit: FlowUnit) -> bool:
    """A one-in/one-out plain-``def`` ``@flowunit`` on a local node without batching."""
    return (
        isinstance(unit, FunctionUnit)
        and not unit._is_async
        and not (unit._multi_in or unit._multi_out or unit._expand)
        and not (node.multi or node.collapse_ports)
        and node.spec.batch_size == 1
        and node.spec.placement != "ray"
        and len(node.out_list) == 1
    )


def is_thread_function(node: NodeRuntime, unit: FlowUnit) -> bool:
    """A ``thread_function_node`` with one replica: this module's loop applies."""
    return not node.ordered and thread_function_node(node, unit)


async def consume_thread(
    node: NodeRuntime, unit: FunctionUnit, ctx: ReplicaContext, limit: int
) -> None:
    """Consume until end of stream, calling the function on the thread in bursts.

    Raises:
        RestartNeeded: the unit looks broken (``_process.after_failure``); the items
            not yet run wait in ``ctx.carry``.
    """
    inbox, aborted = node.inbox, node.flow.aborted
    carry = ctx.carry
    while True:
        burst: list[Packet[Any]] = []
        marker: tuple[Lane | None, Item] | None = None
        while len(burst) < BURST_MAX:
            got = carry.pop(0) if carry else inbox.take_nowait()
            if got is NOTHING:
                if burst:
                    break
                try:
                    got = await inbox.take()
                except anyio.EndOfStream:
                    return
            item = got[1]
            if type(item) is not Packet:
                marker = got
                break
            if aborted and item.session in aborted:
                cancel(node, item)
                continue
            burst.append(item)
        if burst:
            failure = await _run_burst(node, unit, ctx, burst)
            if failure is not None:
                error, rest = failure
                left: list[tuple[Lane | None, Item]] = [(None, packet) for packet in rest]
                if marker is not None:
                    left.append(marker)
                carry[:0] = left  # before anything still carried: order is kept
                after_failure(unit, ctx, error, limit)
                continue
        if marker is not None:
            await on_marker(node, unit, ctx, marker[0], marker[1], None)  # type: ignore[arg-type]


async def _run_burst(
    node: NodeRuntime,
    unit: FunctionUnit,
    ctx: ReplicaContext,
    burst: list[Packet[Any]],
) -> tuple[NodeFailed, list[Packet[Any]]] | None:
    """Run ``burst`` on the thread, then record and send each result in order.

    Returns:
        ``None``, or the recorded failure of the item that raised and the items after
        it, which did not run.
    """
    counters = node.counters
    results, error = await run_on_thread(node, unit, ctx, burst)
    senders = node.out_list[0].senders
    done = 0
    try:
        for packet, result in zip(burst, results, strict=False):
            done += 1
            out = record(node, packet, result)
            if out is None:
                continue
            counters.emitted += 1
            for sender in senders:
                if not sender.put_nowait(out):
                    await sender.put(out)
    except BaseException:  # cancelled while a consumer was full: the rest never went
        for packet in burst[done:]:
            cancel(node, packet)
        raise
    if error is None:
        return None
    failed = burst[len(results)]
    ctx.begin(failed)
    return fail(node, ctx, [(failed, 1)], error), burst[len(results) + 1 :]


async def run_on_thread(
    node: NodeRuntime, unit: FunctionUnit, ctx: ReplicaContext, packets: list[Packet[Any]]
) -> tuple[list[Any], Exception | None]:
    """Call the function on each packet's data in one hand-off to the replica's thread.

    Records the busy time, the latency per call and the trace span; a cancellation
    counts every packet as cancelled. Returns what ``NodeExecutor.run_each`` returns.
    """
    started = time.perf_counter()
    try:
        results, error = await node.executor.run_each(
            ctx.replica, unit._fn, [p.data for p in packets], unit._params
        )
    except BaseException:  # cancelled (or the thread raised past Exception)
        for packet in packets:
            cancel(node, packet)
        raise
    ended = time.perf_counter()
    counters = node.counters
    counters.busy_s += ended - started
    calls = len(results) + (error is not None)
    counters.latency.observe((ended - started) / calls, calls)  # per call, as in one burst
    if node.tracer is not None:
        node.tracer.span(
            f"{node.id}/{ctx.replica}", "process_burst", started, ended, size=len(packets)
        )
    if results:
        ctx.consecutive_failures = 0
    return results, error


def record(node: NodeRuntime, packet: Packet[Any], result: Any) -> Packet[Any] | None:
    """Record that ``packet`` returned ``result``; the packet to send, if any.

    A sink delivers it, ``None`` filters it, anything else is sent (each extra
    consumer's copy is counted as spawned).
    """
    ledger = node.ledger
    if node.terminal:
        ledger.deliver(packet.session)
        return None
    if result is None:
        ledger.process(packet.session, 1, 0)
        return None
    node.counters.processed += 1
    extra_copies = len(node.out_list[0].senders) - 1
    if extra_copies:
        ledger.spawn(packet.session, extra_copies)
    return Packet(result, packet.session, packet.seq, packet.lineage, packet.meta)


def cancel_carried(node: NodeRuntime, ctx: ReplicaContext) -> None:
    """Count the packets a replica took but never ran as cancelled (it is ending)."""
    for item in [item for _, item in ctx.carry] + [item for _, item, _ in ctx.numbered]:
        if type(item) is Packet:
            cancel(node, item)
    ctx.carry.clear()
    ctx.numbered.clear()
