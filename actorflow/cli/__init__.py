"""The ``actorflow`` command line: run, validate and render graph files.

``main()`` is the console script; ``configure_logging()`` is the one place where
actorflow configures structlog (the library itself never does).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import structlog

__all__ = ["configure_logging", "main"]


def configure_logging(json: bool, *, level: int = logging.INFO) -> None:
    """Send structlog events to stderr: readable lines, or one JSON object per line.

    Args:
        json: render events as JSON lines (for log collectors) instead of colour text.
        level: the lowest level shown.
    """
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    from actorflow.cli._main import run_cli  # keeps `import actorflow.cli` light

    return run_cli(argv)
