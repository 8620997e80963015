"""``actorflow serve FILE``: serve a graph file (or a wrapper ``.py``) over HTTP."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actorflow.errors import ActorFlowError

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str) -> int:
    """``"8M"`` -> 8388608; accepts plain bytes and k/M/G (binary) suffixes."""
    match = _SIZE.match(text)
    if match is None:
        msg = f"invalid size {text!r}; use bytes or a k/M/G suffix, like 8M"
        raise argparse.ArgumentTypeError(msg)
    number, unit = match.groups()
    return int(number) * _UNITS[(unit or "")[:1].lower()]


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a graph over HTTP and WebSocket",
        description="Run FILE behind an aiohttp server: POST /v1/infer (JSON with base64 "
        "images, or multipart uploads), GET /v1/stream (WebSocket), GET /v1/schema "
        "(OpenAPI), GET /metrics (Prometheus), /healthz, /readyz. A .py FILE is served as "
        "a wrapper. Binds 127.0.0.1 unless --host says otherwise. Graph documents are "
        "never accepted over HTTP: the server runs FILE only.",
    )
    parser.add_argument(
        "file", metavar="FILE", type=Path, help="graph file (.toml/.json) or wrapper module (.py)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; 0.0.0.0 for every interface)",
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument(
        "--max-body",
        type=parse_size,
        default=8 * 1024**2,
        metavar="SIZE",
        help="request body limit, like 8M (default); larger bodies get 413",
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=64,
        metavar="N",
        help="concurrent requests and streams before 429 (default 64)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long requests in flight may finish at shutdown (default 10)",
    )
    _limit_options(parser)
    parser.add_argument(
        "--allow-custom-code",
        action="store_true",
        help="let workflow dynamic blocks run their Python code (only for "
        "files you trust; also ACTORFLOW_ALLOW_CUSTOM_CODE=1)",
    )
    parser.add_argument(
        "--streams",
        action="store_true",
        help="serve /v1/streams: clients add and remove sources (files, camera URLs) "
        "while the flow runs; only for clients you trust",
    )
    parser.add_argument("--json", action="store_true", help="log JSON lines to stderr")
    parser.set_defaults(handler=run)


_LIMIT_HELP: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "max_json_depth": ("N", int, "nesting of JSON bodies and frames (400 past it)"),
    "max_parts": ("N", int, "parts in one multipart body (413 past it)"),
    "max_part": ("SIZE", parse_size, "bytes in one multipart part (413 past it)"),
    "header_timeout": ("SECONDS", float, "time to send a complete request head"),
    "body_timeout": ("SECONDS", float, "time to send the request body (408 past it)"),
    "keepalive_timeout": ("SECONDS", float, "idle time before a connection is closed"),
    "max_connections": ("N", int, "open connections (idle ones are closed first)"),
    "ws_max_message": ("SIZE", parse_size, "bytes of one WebSocket message (1009 past it)"),
    "ws_send_buffer": ("SIZE", parse_size, "unread result bytes before a client is closed"),
}


def _limit_options(parser: argparse.ArgumentParser) -> None:
    """One ``--name`` per ``Limits`` field; defaults in docs/reference/serving.md."""
    for name, (metavar, kind, text) in _LIMIT_HELP.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            default=None,
            metavar=metavar,
            help=f"{text} (default: Limits.{name}, docs/reference/serving.md)",
        )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted.

    Exit status: 0 after a normal shutdown, 1 when FILE cannot be loaded, 3 when the
    flow kept failing past its flow-level restart intensity.
    """
    from actorflow.serve import Limits, serve  # aiohttp loads only for this subcommand

    try:
        limits = Limits().replace(**{name: getattr(args, name) for name in _LIMIT_HELP})
        failure = serve(
            args.file,
            limits=limits,
            host=args.host,
            port=args.port,
            max_body=args.max_body,
            max_sessions=args.max_sessions,
            shutdown_timeout=args.shutdown_timeout,
            allow_custom_code=args.allow_custom_code,
            streams=args.streams,
        )
    except (ActorFlowError, ValueError) as exc:  # GraphError, a bad limit, ...
        sys.stderr.write(f"actorflow serve: {exc}\n")
        return 1
    if failure is not None:
        sys.stderr.write(
            f"actorflow serve: the flow kept failing and was given up: {failure}\n"
            "exiting with status 3 so that a process supervisor restarts the server\n"
        )
        return 3
    return 0
