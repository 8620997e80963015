"""Fixtures for the dashboard tests: a private frame hub per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from actorflow.flowunits.dashboard import hub as hub_module
from actorflow.flowunits.dashboard.hub import FrameHub

_names = itertools.count()


@pytest.fixture
def hub_name() -> Iterator[str]:
    """A hub of this test's own (removed from the process-wide table afterwards)."""
    name = f"test-{next(_names)}"
    yield name
    hub_module._HUBS.pop(name, None)


@pytest.fixture
def frame_hub(hub_name: str) -> FrameHub:
    """The hub called ``hub_name``."""
    return hub_module.hub(hub_name)
