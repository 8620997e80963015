"""The ``actorflow`` command line: run, validate and render graph files.

``main()`` is the console script; ``configure_logging()`` is where the command line
configures the standard ``logging`` module (the library itself never does: its events
go to ``logging``, where the application's configuration decides).
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["LOG_FORMATS", "configure_logging", "main"]


LOG_FORMATS = ("console", "json")
"""What ``--log-format`` accepts."""


def configure_logging(json: bool = False, *, level: int = logging.WARNING) -> None:
    """Show log records at ``level`` and above on standard error, as lines or JSON.

    Configures the standard ``logging`` root logger (actorflow's events reach it, see
    ``actorflow._logging``): one handler writing to whatever ``sys.stderr`` is at the
    time of each record, replacing the handler an earlier call installed. Standard
    output is never written to.

    Args:
        json: one JSON object per record (``event``, ``level``, ``timestamp``, ``logger``
            and the event's fields) instead of readable lines.
        level: the lowest level of actorflow's events shown (``logging.WARNING`` unless
            asked otherwise); other libraries' records show from WARNING up.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(_JsonFormatter() if json else _ConsoleFormatter())
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))  # other libraries: warnings and errors
    logging.getLogger("actorflow").setLevel(level)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler bound to the current ``sys.stderr`` (test captures included)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always sys.stderr


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    from actorflow._logging import EVENT_FIELDS

    fields = getattr(record, EVENT_FIELDS, None)
    if isinstance(fields, dict):
        return dict(fields)
    return {"event": record.getMessage()}


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        event = str(fields.pop("event", ""))
        pairs = " ".join(f"{k}={v!r}" for k, v in sorted(fields.items()))
        text = f"{stamp} [{record.levelname.lower():<8}] {event:<30} {pairs}".rstrip()
        if not record.name.startswith("actorflow"):
            text += f" logger={record.name}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        doc: dict[str, Any] = {
            **_fields(record),
            "level": record.levelname.lower(),
            "timestamp": stamp.isoformat().replace("+00:00", "Z"),
            "logger": record.name,
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    from actorflow.cli._main import run_cli  # keeps `import actorflow.cli` light

    return run_cli(argv)
