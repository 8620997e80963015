"""Actors: one task per replica drives one unit; one task per source drives a generator.

Lifecycle guarantees (the unit's side is documented on ``FlowUnit``):

* ``open`` runs before ``task_status.started()``, so the supervisor's ``tg.start``
  returns only once the unit is ready: consumers open before their producers.
* ``close`` runs exactly once per successful ``open``, shielded and bounded by the
  flow's close budget (``close_timeout``, less once a bounded stop is under way), also
  when the flow is cancelled.
* A failing call fails its packets only (``_process``); the replica restarts only
  when the unit looks broken, under the node's ``Supervision``. A re-``open`` that
  fails is retried with backoff and counts towards the restart intensity.
* When the last replica of a node ends, the node's output lanes close: consumers see
  end of stream once they have drained them.
"""

from __future__ import annotations

from collections import deque
from contextlib import aclosing
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from actorflow.errors import NodeFailed
from actorflow.runtime._bursts import cancel_carried
from actorflow.runtime._consume import consume
from actorflow.runtime._context import PlainContext, ReplicaContext
from actorflow.runtime._markers import SessionEnd
from actorflow.runtime._node import NodeRuntime
from actorflow.runtime._plain import is_plain
from actorflow.runtime._process import CHECKPOINT_EVERY, RestartNeeded
from actorflow.unit import FlowUnit, Packet

if TYPE_CHECKING:
    from actorflow.runtime._supervision import Supervision


async def run_replica(
    node: NodeRuntime,
    unit: FlowUnit,
    replica: int,
    supervision: Supervision,
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Drive one replica of ``node``: open, consume until end of stream, close."""
    ctx = (PlainContext if is_plain(node) else ReplicaContext)(node, replica)
    limit = supervision.policy.failures_before_restart
    try:
        await _open(node, unit, ctx)
        task_status.started()
        while True:
            try:
                await consume(node, unit, ctx, limit)
                break
            except RestartNeeded as restart:
                await _close(node, unit, ctx, quiet=True)
                await _restart(node, unit, ctx, supervision, restart)
        await _close(node, unit, ctx)
    except BaseException:
        cancel_carried(node, ctx)
        if ctx.opened:
            await _close(node, unit, ctx, quiet=True)
        raise
    finally:
        node.live_replicas -= 1
        if node.live_replicas == 0:
            node.close_outputs()


async def _restart(
    node: NodeRuntime,
    unit: FlowUnit,
    ctx: ReplicaContext,
    supervision: Supervision,
    restart: RestartNeeded,
) -> None:
    """Re-open the unit after the backoff; a failing ``open`` is retried likewise.

    Raises:
        NodeFailed: the restart intensity was exceeded (the flow fails).
    """
    cause, escalate = restart.error, restart.escalate
    while True:
        await supervision.on_failure(cause, escalate=escalate)
        node.counters.restarts += 1
        ctx.log.warning(
            "node_restarted",
            restarts=node.counters.restarts,
            cause=str(cause.__cause__ or cause),
            reason="fatal error" if escalate else "failures in a row",
        )
        try:
            await _open(node, unit, ctx)
            return
        except NodeFailed as error:
            cause, escalate = error, True


async def run_source(
    node: NodeRuntime,
    unit: FlowUnit,
    session: int,
    *,
    stop_scope: anyio.CancelScope,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Drive a source: iterate its generator, then end its session's stream.

    An exception from the generator fails the flow (a restart would replay a file);
    sources of live streams reconnect by themselves.
    """
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
                extra_copies = len(senders) - 1
                only = port.only
                only_items = only.items if only is not None else deque()
                only_room = only.capacity if only is not None else 0  # 0: never put inline
                only_waiting = only.inbox.waiters.parked if only is not None else deque()
                async for data in gen:
                    packet = Packet(data, session, seq)
                    seq += 1
                    counters.processed += 1
                    counters.emitted += 1
                    if ledger is not None:
                        ledger.sent += 1
                        if extra_copies:
                            ledger.spawned += extra_copies
                    if only is not None and len(only_items) < only_room:  # see _plain
                        only_items.append(packet)
                        only.offered += 1
                        if only_waiting:
                            only.inbox.waiters.unpark()
                    else:
                        for sender in senders:
                            if not sender.put_nowait(packet):
                                await sender.put(packet)
                    burst += 1
                    if burst >= CHECKPOINT_EVERY:
                        burst = 0
                        await anyio.lowlevel.checkpoint()
        await _close(node, unit, ctx)
    except Exception as exc:
        if ctx.opened:
            await _close(node, unit, ctx, quiet=True)
        if isinstance(exc, NodeFailed):
            raise
        raise NodeFailed(node.id, ctx.unit, "source", f"{type(exc).__name__}: {exc}") from exc
    except BaseException:
        if ctx.opened:
            await _close(node, unit, ctx, quiet=True)
        raise
    finally:
        node.send_marker(None, SessionEnd(session, (), node.id, seq))
        node.live_replicas -= 1
        node.close_outputs()


async def _open(node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext) -> None:
    try:
        await unit.open(ctx)
    except Exception as exc:
        raise NodeFailed(node.id, ctx.unit, "open", f"{type(exc).__name__}: {exc}") from exc
    ctx.opened = True
    ctx.log.debug("node_opened")


async def _close(
    node: NodeRuntime, unit: FlowUnit, ctx: ReplicaContext, *, quiet: bool = False
) -> None:
    """Close once per open, shielded and bounded; ``quiet`` logs errors instead of raising."""
    if not ctx.opened:
        return
    ctx.opened = False
    timeout = node.flow.close_budget()
    with anyio.move_on_after(timeout, shield=True) as scope:
        try:
            await unit.close(ctx)
        except Exception as exc:
            if not quiet:
                raise NodeFailed(
                    node.id, ctx.unit, "close", f"{type(exc).__name__}: {exc}"
                ) from exc
            ctx.log.warning("node_close_failed", error=repr(exc))
    if scope.cancelled_caught:
        ctx.log.warning("node_close_timed_out", timeout_s=round(timeout, 3))
