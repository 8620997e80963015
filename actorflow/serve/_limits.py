"""Resource limits of ``actorflow serve``: one setting per door, each with a safe default.

Every limit is enforced before the work it bounds (a count before parsing, a size
before buffering), and every refusal is a JSON error body (``docs/reference/serving.md``).
"""

from __future__ import annotations

import dataclasses
import resource
from dataclasses import dataclass

FD_RESERVE = 128
"""File descriptors kept free for the flow itself (models, videos, logs, sockets out)."""


@dataclass(frozen=True)
class Limits:
    """What one client may cost the server.

    Attributes:
        max_body: request body bytes (413 past it; multipart counted part by part).
        max_json_depth: nesting of JSON bodies and WebSocket text frames (400 past it).
        max_parts: parts in one multipart body (413 past it, before reading the rest).
        max_part: bytes in one multipart part (413 past it).
        header_timeout: seconds a connection may take to send a complete request head,
            counted from its first byte (the connection is closed past it).
        body_timeout: seconds a handler waits for the request body (408 past it).
        keepalive_timeout: seconds an idle connection (no byte of a next request) is
            kept open, including a new connection that sends nothing.
        max_connections: open HTTP connections; at the cap the oldest connection that
            is not serving a request is closed to admit the new one, and when every
            connection is busy the new one is closed. Never more than the process's
            file-descriptor limit minus ``FD_RESERVE``.
        ws_max_message: bytes of one incoming WebSocket message, never more than
            ``max_body`` (the socket is closed with 1009 past it).
        ws_send_buffer: bytes of results waiting for one WebSocket client; a client
            that lets more pile up is not reading and is closed with 1008 and a reason,
            so that it never holds back the graph's shared output nodes.
    """

    max_body: int = 8 * 1024 * 1024
    max_json_depth: int = 64
    max_parts: int = 64
    max_part: int = 8 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 15.0
    max_connections: int = 1000
    ws_max_message: int = 8 * 1024 * 1024
    ws_send_buffer: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                msg = f"Limits.{field.name} must be a positive number, got {value!r}"
                raise ValueError(msg)

    def replace(self, **changes: float | None) -> Limits:
        """A copy with the given limits changed (``None`` values are ignored)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given)  # type: ignore[arg-type]

    def ws_message_cap(self) -> int:
        """The WebSocket message limit in force: ``min(ws_max_message, max_body)``."""
        return min(self.ws_max_message, self.max_body)

    def connection_cap(self) -> int:
        """``max_connections`` clamped below the soft ``RLIMIT_NOFILE`` (less the reserve)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft - FD_RESERVE))
