"""The hop fast path (DESIGN §12): consume loops of plain nodes.

A node is *plain* when it has one replica, one input port and no batching: most nodes
of a pipeline. Its replica takes packets from its mailbox in bursts, one lane at a
time, with no event-loop pass while packets are ready, and yields to the loop every
``CHECKPOINT_EVERY`` items (so a busy node never starves the loop, and ``stop()``
reaches it within that many items). Two loops, one semantics (``_process.process``):

* ``consume_function``: a one-in/one-out async ``@flowunit`` is called directly and
  its result put by the loop, without ``process``/``emit``;
* ``consume_class``: any other unit's ``process`` is awaited with the context
  prepared inline (a ``PlainContext``, whose ``emit`` puts straight into the lanes).

Costs kept off the per-packet path:

* **Busy time** is measured per burst (from waking up to waiting again, less the
  time spent waiting on full consumers): two clock reads per packet would cost a
  tenth of a hop. A burst that processed no packet adds no busy time, as in
  ``process``; each burst adds its busy time to the latency histogram, spread over
  its packets.
* **The output packet** of a function unit is the input packet with its ``data``
  replaced when nothing else can see the input packet (see ``REUSE``): the unit only
  saw ``packet.data``, and a reference count of 2 (the loop's variable and the call's
  argument) proves no other lane, unit, context or session holds it. This is the test
  CPython itself makes before concatenating a string in place, and numpy before
  reusing a temporary array. Where the count cannot be trusted (other interpreters,
  free-threaded builds, CPython ≥ 3.14, whose borrowed references undercount) a new
  packet is made every time.
* **A single consumer** gets the packet appended to its lane inline while the lane
  has room; ``Lane.put_nowait`` decides everything else (drop policies, markers).
"""

from __future__ import annotations

import sys
import time
from collections import deque

import anyio

from actorflow.runtime._context import ReplicaContext
from actorflow.runtime._mailbox import Lane
from actorflow.runtime._node import NodeRuntime
from actorflow.runtime._process import CHECKPOINT_EVERY, after_failure, cancel, fail, on_marker
from actorflow.unit import FlowUnit, FunctionUnit, Packet

_EXCLUSIVE = 2
"""``sys.getrefcount`` of a packet held by one local variable only."""


def _refcounts_exact() -> bool:
    """Whether ``sys.getrefcount`` counts every strong reference (see the module doc)."""
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    return sys.implementation.name == "cpython" and sys.version_info < (3, 14) and gil


REUSE = _refcounts_exact()
"""Whether function units may reuse their input packet (``consume_function``)."""


class BurstTaker:
    """Hands a plain replica its bursts (a lane at a time) and times them (module doc)."""

    __slots__ = ("_awake", "_blocked", "_done", "node", "yielded")

    def __init__(self, node: NodeRuntime) -> None:
        self.node = node
        self.yielded = False
        """Whether ``next_lane`` let the event loop run (the loop restarts its count)."""
        self.start()

    def start(self) -> None:
        """The replica woke up with work."""
        self._awake = time.perf_counter()
        self._blocked = self.node.blocked_s
        self._done = self.node.counters.processed

    def stop(self) -> None:
        """The replica is about to wait: record the burst's busy time."""
        counters = self.node.counters
        done = counters.processed - self._done
        if done:
            spent = time.perf_counter() - self._awake - (self.node.blocked_s - self._blocked)
            counters.busy_s += spent
            counters.latency.observe(spent / done, done)

    async def next_lane(self, taken: int) -> Lane | None:
        """The lane to take the next burst from, once ``taken`` items were handled.

        Yields to the event loop after ``CHECKPOINT_EVERY`` items and waits while the
        mailbox is empty; ``None`` at end of stream.
        """
        inbox = self.node.inbox
        self.yielded = taken >= CHECKPOINT_EVERY
        if self.yielded:
            self.stop()
            await anyio.lowlevel.checkpoint()
            self.start()
        while (lane := inbox.ready_lane()) is None:
            self.stop()
            if inbox.open_lanes == 0:
                return None
            await inbox.waiters.park()
            self.yielded = True
            self.start()
        return lane


def is_plain(node: NodeRuntime) -> bool:
    """One replica, one input port, no batching: the hop fast path applies."""
    return not (node.ordered or node.multi or node.collapse_ports) and node.spec.batch_size == 1


def direct_function(node: NodeRuntime, unit: FlowUnit) -> FunctionUnit | None:
    """A one-in/one-out async ``@flowunit``: called directly, its result sent by the loop."""
    if (
        isinstance(unit, FunctionUnit)
        and unit._is_async
        and not (unit._multi_in or unit._multi_out or unit._expand)
        and len(node.out_list) == 1
    ):
        return unit
    return None


async def consume_function(
    node: NodeRuntime, unit: FunctionUnit, ctx: ReplicaContext, limit: int
) -> None:
    """The plain loop of a one-in/one-out async function (see the module doc)."""
    counters, aborted, ledger, tracer = node.counters, node.flow.aborted, node.ledger, node.tracer
    fn, params = unit._fn, unit._params
    senders = node.out_list[0].senders
    extra_copies = len(senders) - 1
    only = node.out_list[0].only
    only_items = only.items if only is not None else deque()
    only_room = only.capacity if only is not None else 0  # 0: never put inline
    only_waiting = only.inbox.waiters.parked if only is not None else deque()
    terminal, reuse, getrefcount = node.terminal, REUSE, sys.getrefcount
    track, clock = f"{node.id}/{ctx.replica}", time.perf_counter
    burst = BurstTaker(node)
    taken = 0
    while (lane := await burst.next_lane(taken)) is not None:
        if burst.yielded:
            taken = 0
        items, space = lane.items, lane._space_parked
        count = min(len(items), CHECKPOINT_EVERY - taken)
        taken += count
        for _ in range(count):
            try:
                item = items.popleft()
            except IndexError:  # drained by a stop while the unit awaited
                break
            if space:
                lane.space_freed()
            if type(item) is not Packet:
                lane.markers -= 1
                await on_marker(node, unit, ctx, lane, item, None)  # type: ignore[arg-type]
                continue
            if aborted and item.session in aborted:
                cancel(node, item)
                continue
            if tracer is not None:
                started = clock()
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
                continue
            if result is None:
                ledger.process(item.session, 1, 0)
                continue
            counters.processed += 1
            counters.emitted += 1
            if reuse and getrefcount(item) == _EXCLUSIVE:
                item.data = result
                out = item
            else:
                out = Packet(result, item.session, item.seq, item.lineage, item.meta)
            if only is not None and len(only_items) < only_room:
                only_items.append(out)
                only.offered += 1
                if only_waiting:
                    only.inbox.waiters.unpark()
                continue
            if extra_copies:
                ledger.spawn(item.session, extra_copies)
            for sender in senders:
                if not sender.put_nowait(out):
                    await node.put_blocked(sender, out)


async def consume_class(node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext, limit: int) -> None:
    """The plain loop of a class unit (or a function with several outputs or expand).

    Its first lines repeat ``consume_function``'s on purpose: sharing them would cost a
    call per packet, a sixth of a hop.
    """
    aborted, ledger, tracer, counters = node.flow.aborted, node.ledger, node.tracer, node.counters
    terminal, expands, process = node.terminal, bool(node.expand_ports), unit.process
    track, clock = f"{node.id}/{ctx.replica}", time.perf_counter
    ctx.batch_copies = None
    burst = BurstTaker(node)
    taken = 0
    while (lane := await burst.next_lane(taken)) is not None:
        if burst.yielded:
            taken = 0
        items, space = lane.items, lane._space_parked
        count = min(len(items), CHECKPOINT_EVERY - taken)
        taken += count
        for _ in range(count):
            try:
                item = items.popleft()
            except IndexError:  # drained by a stop while the unit awaited
                break
            if space:
                lane.space_freed()
            if type(item) is not Packet:
                lane.markers -= 1
                await on_marker(node, unit, ctx, lane, item, None)  # type: ignore[arg-type]
                continue
            if aborted and item.session in aborted:
                cancel(node, item)
                continue
            if tracer is not None:
                started = clock()
            ctx.current, ctx.copies = item, 0
            if expands:
                ctx.children = 0
            try:
                await process(ctx, item)
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
            copies = ctx.copies
            if ctx.failed:  # the unit failed this packet with ctx.fail()
                ctx.failed.clear()
                if copies:
                    ledger.spawn(item.session, copies)
            elif terminal:
                ledger.deliver(item.session)
            elif copies == 1:  # one packet in, one out: nothing for the session ledger
                counters.processed += 1
            else:
                ledger.process(item.session, 1, copies)
            if expands:
                ctx.end_children()
            ctx.current = None
