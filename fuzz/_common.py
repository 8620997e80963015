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
    """The input as UTF-8 text, undecodable bytes replaced.

    (atheris's ``ConsumeUnicode`` picks an encoding from the first byte's low bit, so a
    seed starting with ``{``, ``[`` or ``#`` was read as UTF-16 noise and the JSON and
    TOML targets never got past the parser: 61 edges of coverage.)
    """
    return data.decode("utf-8", "replace")


def run(target: Callable[[bytes], None]) -> None:
    """Hand ``target`` to libFuzzer with the command line's options."""
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
