"""The live dashboard page: graph, per-node cards, sessions, and live video tiles.

``mount(app, flow)`` adds it to any ``aiohttp`` application (``actorflow serve`` mounts
it at ``/dashboard``); ``serve_dashboard(flow)`` runs it on its own port next to a flow
you run yourself (``actorflow run GRAPH --dashboard PORT``). Video tiles come from
``dashboard`` sink nodes in the graph (``actorflow.flowunits.dashboard``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from actorflow.dashboard._app import DASHBOARD, mount
from actorflow.dashboard._metrics import collector
from actorflow.runtime import Flow

__all__ = ["DASHBOARD", "collector", "mount", "parse_address", "serve_dashboard"]


def parse_address(text: str, *, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``"8765"`` or ``"HOST:8765"`` as ``(host, port)``.

    Raises:
        ValueError: not a port or ``HOST:PORT`` (the message shows both forms).
    """
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or default_host
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        msg = f"bad dashboard address {text!r}: give PORT or HOST:PORT, e.g. 8765 or 0.0.0.0:8765"
        raise ValueError(msg)
    return host, number


@asynccontextmanager
async def serve_dashboard(
    flow: Flow, host: str = "127.0.0.1", port: int = 8765, **options: Any
) -> AsyncIterator[str]:
    """Serve the dashboard of ``flow`` on ``host:port`` for the ``async with`` block.

    Yields the page's URL (with the real port when ``port`` is 0). The flow is not
    started or stopped here. ``options`` go to ``mount``.
    """
    app = web.Application()
    mount(app, flow, **options)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound}{app[DASHBOARD].prefix}"
    finally:
        await runner.cleanup()
