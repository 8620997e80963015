"""ModelBox's log functions, as structlog events (the library never configures logging)."""

from __future__ import annotations

import structlog

_logger = structlog.get_logger("actorflow.compat.modelbox")


def debug(message: str) -> None:
    """Log ``message`` at debug level."""
    _logger.debug("modelbox_message", message=message)


def info(message: str) -> None:
    """Log ``message`` at info level."""
    _logger.info("modelbox_message", message=message)


def warn(message: str) -> None:
    """Log ``message`` at warning level."""
    _logger.warning("modelbox_message", message=message)


warning = warn


def error(message: str) -> None:
    """Log ``message`` at error level."""
    _logger.error("modelbox_message", message=message)


def fatal(message: str) -> None:
    """Log ``message`` at critical level (it does not exit)."""
    _logger.critical("modelbox_message", message=message)
