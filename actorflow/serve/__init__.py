"""``actorflow serve FILE``: an aiohttp server for a graph file or a wrapper module.

``build_app(flow)`` gives the application (for tests and embedding); ``load_app(path)``
picks by file type (a ``.py`` file is a wrapper and goes to
``actorflow.wrapper.build_app``); ``serve(path)`` runs it until interrupted, behind
``GuardedRunner`` (request-head timeout, connection cap: ``serve/_server.py``) with
the ``Limits`` given (docs/reference/serving.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from actorflow.errors import FlowFailed
from actorflow.serve._app import DEFAULT_MAX_BODY, STATE, build_app
from actorflow.serve._limits import Limits
from actorflow.serve._server import GuardedRunner, start

__all__ = [
    "DEFAULT_MAX_BODY",
    "STATE",
    "GuardedRunner",
    "Limits",
    "build_app",
    "load_app",
    "serve",
    "start",
]

DEFAULT_HOST = "127.0.0.1"
"""Bind address unless told otherwise: never every interface by accident."""


def load_app(
    path: str | Path,
    *,
    max_body: int | None = None,
    max_sessions: int = 64,
    retry_after: float = 1.0,
    allow_custom_code: bool = False,
    limits: Limits | None = None,
    on_give_up: Callable[[FlowFailed], None] | None = None,
    streams: bool = False,
) -> web.Application:
    """The app for ``path``: a graph file (TOML/JSON/workflow JSON) or a wrapper ``.py``.

    Raises:
        GraphError: the graph file cannot be loaded (file, line and problem named).
        CustomCodeDisabled: the workflow carries Python code and it was not allowed.
    """
    path = Path(path)
    if path.suffix == ".py":
        from actorflow.wrapper import build_app as build_wrapper_app

        return build_wrapper_app(
            path,
            max_body=max_body,
            max_sessions=max_sessions,
            allow_custom_code=allow_custom_code,
            limits=limits,
        )
    from actorflow.graph import load_graph
    from actorflow.runtime import Flow

    graph = load_graph(path, allow_custom_code=allow_custom_code or None)  # None: env var
    flow = Flow(graph)
    flow.build()  # configuration errors surface before the port is bound
    return build_app(
        flow,
        max_body=max_body,
        max_sessions=max_sessions,
        retry_after=retry_after,
        limits=limits,
        on_give_up=on_give_up,
        streams=streams,
    )


def serve(
    path: str | Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = 8080,
    shutdown_timeout: float = 10.0,
    limits: Limits | None = None,
    **options: Any,
) -> FlowFailed | None:
    """Serve ``path`` until interrupted (SIGINT/SIGTERM stop it gracefully).

    In-flight requests get up to ``shutdown_timeout`` seconds to finish; new ones are
    answered 503 meanwhile. A client that disconnects cancels its handler (and its
    session's work). Connections are held to ``limits`` (``Limits()`` by default). A
    flow that fails is rebuilt and restarted (``keep_running``); when it fails more
    often than that allows, the server shuts down.

    Returns:
        ``None`` after a normal shutdown; the flow's last failure when the server shut
        down because the flow could not be kept running (the CLI then exits non-zero,
        so that an orchestrator restarts the process).
    """
    limits = limits or Limits()
    gave_up: list[FlowFailed] = []
    given_up = asyncio.Event()  # binds to the loop on first use, inside asyncio.run

    def give_up(failure: FlowFailed) -> None:
        gave_up.append(failure)
        given_up.set()

    app = load_app(path, limits=limits, on_give_up=give_up, **options)
    # SIGINT/SIGTERM raise GracefulExit; the runner is cleaned up on the way out
    with contextlib.suppress(web.GracefulExit):
        asyncio.run(_serve_forever(app, host, port, shutdown_timeout, limits, given_up))
    return gave_up[0] if gave_up else None


async def _serve_forever(
    app: web.Application,
    host: str,
    port: int,
    shutdown_timeout: float,
    limits: Limits,
    given_up: asyncio.Event,
) -> None:
    runner = await start(
        app, host, port, limits, handle_signals=True, shutdown_timeout=shutdown_timeout
    )
    try:
        await given_up.wait()  # or until SIGINT/SIGTERM raise GracefulExit
    finally:
        await runner.cleanup()
