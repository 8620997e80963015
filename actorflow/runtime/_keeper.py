"""``keep_running``: OTP's next level up — restart a whole flow that failed.

Inside a flow, a node whose restarts exceed its intensity fails the flow
(``FlowFailed``). A server cannot serve with a failed flow, so the level above the
flow's supervisor rebuilds it (fresh units, same graph) and starts it again, with
backoff, under a restart intensity of its own. Past that intensity it gives up and
raises, so the process can exit non-zero and an orchestrator restart it.

Guarantees:

* Only failures restart the flow; a flow that stopped (``stop()``, sources ended)
  ends ``keep_running`` normally.
* Between a failure and the restart the flow's state is ``failed`` (health endpoints
  report it); once ``stopping`` is set no restart happens any more.
* Cancelling ``keep_running`` leaves the flow as it is (stop it with ``flow.stop()``).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import structlog

from actorflow.errors import FlowFailed
from actorflow.runtime._flow import Flow
from actorflow.runtime._supervision import Clock, RestartPolicy, Supervision, SystemClock

logger = structlog.get_logger("actorflow.flow")

FLOW_RESTARTS = RestartPolicy(max_restarts=3, window_s=60.0, backoff_initial_s=0.5)
"""The default: at most 3 flow restarts a minute, the first after half a second."""


async def keep_running(
    flow: Flow,
    policy: RestartPolicy = FLOW_RESTARTS,
    *,
    stopping: anyio.Event | None = None,
    clock: Clock | None = None,
    on_restart: Callable[[int], None] | None = None,
) -> None:
    """Watch a started ``flow``; rebuild and restart it whenever it fails.

    Args:
        flow: a flow already started with ``run_async()``.
        policy: the flow-level restart intensity and backoff.
        stopping: once set, a failure is no longer restarted (the server is stopping).
        clock: time source for the backoff (inject a fake one in tests).
        on_restart: called with the restart count each time the flow runs again.

    Raises:
        FlowFailed: the flow failed more often than ``policy`` allows; its last failure.
    """
    supervision = Supervision(policy, clock or SystemClock())
    log = logger.bind(flow=flow.name)
    while True:
        await flow.join()
        failure = flow.exception
        if failure is None or (stopping is not None and stopping.is_set()):
            return
        try:
            await supervision.on_failure(failure)
        except FlowFailed:
            log.error("flow_gave_up", restarts=supervision.restarts, cause=str(failure))
            raise
        if stopping is not None and stopping.is_set():
            return
        flow.rebuild()
        log.warning("flow_restarting", restarts=supervision.restarts, cause=str(failure))
        try:
            await flow.run_async()
        except FlowFailed:
            continue  # a node failed to open: the flow is failed again, counted next turn
        if on_restart is not None:
            on_restart(supervision.restarts)
