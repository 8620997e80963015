"""Shared fixtures: the anyio backend, quiet logging, and the no-leak check."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import structlog

from actorflow._logging import install as install_logging


def _quiet_logging() -> None:
    """Tests see warnings and errors only (assert on events with capture_logs).

    actorflow's events go to ``logging`` as in any application (``actorflow._logging``).
    """
    structlog.reset_defaults()
    install_logging()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


_quiet_logging()


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """aiohttp runs only on asyncio; core tests opt into trio explicitly."""
    return "asyncio"


def actorflow_threads() -> list[str]:
    """Names of live threads the runtime started."""
    return [t.name for t in threading.enumerate() if t.name.startswith("actorflow-")]


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """After every test: no ``actorflow-*`` thread outlives it by more than a second,
    and logging configuration is back to the suite's default."""
    yield
    deadline = time.monotonic() + 1.0
    while actorflow_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    leaked = actorflow_threads()
    _quiet_logging()
    assert not leaked, f"executor threads outlived the test: {leaked}"


@pytest.fixture
async def no_leftover_tasks() -> AsyncIterator[None]:
    """No asyncio task outlives the test (servers, sessions, sinks, clients).

    Modules that start aiohttp servers or clients opt in with
    ``pytest.mark.usefixtures("no_leftover_tasks")``; an unclosed ``ClientSession``
    fails anyway, through ``filterwarnings = error``.
    """
    before = set(asyncio.all_tasks())
    yield
    for _ in range(3):
        await asyncio.sleep(0)  # let cancelled tasks finish unwinding
    leftover = [
        t
        for t in asyncio.all_tasks() - before
        if not t.done() and "TestRunner" not in t.get_coro().__qualname__  # anyio's own
    ]
    gc.collect()
    assert not leftover, leftover
