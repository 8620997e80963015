"""Shared by the fuzz targets: the exceptions each door may raise, and the runner.

A target fails (and atheris saves the input) on any other exception, on a crash, and
on an input that takes longer than ``-timeout`` seconds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris


def loader_errors() -> tuple[type[BaseException], ...]:
    """The loader's own errors: everything else is a finding."""
    from actorflow.errors import GraphError, UnitConfigError, UnitNotFoundError

    return (GraphError, UnitConfigError, UnitNotFoundError)


def text_of(data: bytes) -> str:
    """The input as text (atheris's provider, so that mutations stay meaningful)."""
    return atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))


def run(target: Callable[[bytes], None]) -> None:
    """Hand ``target`` to libFuzzer with the command line's options."""
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
