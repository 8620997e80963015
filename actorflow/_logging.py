"""How actorflow's structlog events reach the host application: through ``logging``.

actorflow logs with ``structlog.get_logger(__name__)``. Left alone, structlog prints
every event, debug included, on standard output; a library must not do that. So, when
``import actorflow`` finds structlog *not yet configured*, ``install()`` configures it
once so that:

* loggers named ``actorflow`` or ``actorflow.*`` hand their events to the standard
  ``logging`` logger of the same name: the host application's logging configuration
  decides what is shown and where (with none, Python shows WARNING and above on
  standard error), and an event below the logger's level is dropped before it is
  rendered;
* every other structlog logger behaves exactly as structlog's own defaults (console
  lines on standard output), so an application that uses structlog unconfigured sees
  no change.

An application that configures structlog itself (before or after importing actorflow)
gets its configuration for every event, actorflow's included.

Each ``logging.LogRecord`` actorflow emits carries the event's fields as the
attribute ``structlog`` (a dict with ``event`` and the key/value pairs); its message is
``event key=value ...``.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

__all__ = ["EVENT_FIELDS", "install"]

EVENT_FIELDS = "structlog"
"""The ``LogRecord`` attribute holding an event's fields."""

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "err": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def _ours(name: object) -> bool:
    return isinstance(name, str) and (name == "actorflow" or name.startswith("actorflow."))


class _LoggerFactory:
    """``logging.getLogger(name)`` for actorflow's loggers, structlog's default otherwise."""

    def __call__(self, *args: Any) -> Any:
        if args and _ours(args[0]):
            return logging.getLogger(args[0])
        return structlog.PrintLogger()


def _drop_below_level(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """Drop an event the ``logging`` logger would not show, before any rendering."""
    if isinstance(logger, logging.Logger) and not logger.isEnabledFor(
        _LEVELS.get(method, logging.INFO)
    ):
        raise structlog.DropEvent
    return event


class _Render:
    """Last processor: a ``logging`` call for actorflow's loggers, a console line otherwise."""

    def __init__(self) -> None:
        self._console = structlog.dev.ConsoleRenderer()

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> Any:
        if not isinstance(logger, logging.Logger):
            return self._console(logger, method, event)
        exc_info = event.pop("exc_info", None)
        fields = {k: v for k, v in event.items() if k not in ("level", "timestamp")}
        text = " ".join(
            [str(fields.get("event", ""))]
            + [f"{k}={v!r}" for k, v in fields.items() if k != "event"]
        )
        return (text,), {"exc_info": exc_info, "extra": {EVENT_FIELDS: fields}}


def install() -> None:
    """Route actorflow's events to ``logging`` unless structlog is configured already.

    Idempotent; never overrides a configuration an application made.
    """
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            _drop_below_level,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.StackInfoRenderer(),
            structlog.dev.set_exc_info,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            _Render(),
        ],
        logger_factory=_LoggerFactory(),
        cache_logger_on_first_use=False,
    )
