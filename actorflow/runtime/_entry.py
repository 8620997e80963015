"""The two ways a flow runs: a root task of its own, or the caller's task group.

* ``start_root`` (``flow.run_async()``, asyncio only): the flow runs in a root task
  on the loop, so a failing node can never cancel the caller's code.
* ``enter``/``exit`` (``async with flow``, any anyio backend): the flow's task group
  nests in the caller's; leaving the block stops the flow gracefully, or cancels it
  when the block raised.

Both return from starting only once every node opened, and raise ``FlowFailed`` when
one failed to open.
"""

from __future__ import annotations

import asyncio

import anyio
from anyio.abc import TaskGroup

from actorflow.errors import FlowStateError
from actorflow.runtime._supervisor import Supervisor


async def start_root(sup: Supervisor) -> None:
    """Run ``sup`` in a root task of its own; return once started.

    Raises:
        FlowStateError: not on asyncio (``async with flow`` works everywhere).
        FlowFailed: a node failed to open.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        msg = "run_async() needs asyncio; use 'async with flow' on other backends"
        raise FlowStateError(msg) from None
    sup.prepare()
    assert sup.started is not None
    sup.root = loop.create_task(sup.run(), name=f"actorflow-{sup.name}")
    await sup.started.wait()
    if sup.start_failed and sup.failure is not None:
        raise sup.failure


async def enter(sup: Supervisor) -> TaskGroup:
    """Start ``sup`` in a task group of the caller's; return the group for ``exit``.

    Raises:
        FlowFailed: a node failed to open.
    """
    sup.prepare()
    tg = anyio.create_task_group()
    await tg.__aenter__()
    try:
        await tg.start(sup.run)
    except BaseException as exc:
        await tg.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    if sup.start_failed and sup.failure is not None:
        await tg.__aexit__(None, None, None)
        raise sup.failure
    return tg


async def exit(sup: Supervisor, tg: TaskGroup, exc: BaseException | None) -> None:
    """Leave ``async with``: stop gracefully, or cancel when the body raised.

    Raises:
        FlowFailed: nodes failed while the body ran (and it raised nothing itself).
    """
    try:
        if exc is not None:
            with anyio.CancelScope(shield=True):
                await sup.cancel(sup.close_timeout)
        else:
            await sup.stop()
    finally:
        await tg.__aexit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)
    if exc is None and sup.failure is not None:
        raise sup.failure
