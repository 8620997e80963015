"""Actor spans as a Chrome trace (open in Perfetto or ``chrome://tracing``).

With ``Flow(trace=True)`` every ``process`` / ``process_batch`` call on the event loop
and every blocking call on a node's executor thread is recorded as a complete event
("X"): one track per replica and one per executor thread, with the packet's session and
position as arguments. Off by default: a disabled tracer costs one ``is None`` check
per packet.

Guarantees: at most ``limit`` spans are kept (the first ones; ``dropped`` counts the
rest), so a long run cannot grow memory without bound; ``write()`` produces a JSON
document in the Trace Event Format.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_LIMIT = 200_000
"""Spans kept per flow; about 100 bytes each."""


class Tracer:
    """Collects spans from the event loop and from executor threads."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self.dropped = 0
        self._spans: list[tuple[str, str, float, float, dict[str, Any]]] = []
        self._origin = time.perf_counter()
        self._lock = threading.Lock()

    def span(self, track: str, name: str, start: float, end: float, **args: Any) -> None:
        """Record one span; ``start``/``end`` are ``time.perf_counter()`` readings."""
        with self._lock:  # executor threads record too
            if len(self._spans) >= self.limit:
                self.dropped += 1
                return
            self._spans.append((track, name, start, end, args))

    def __len__(self) -> int:
        return len(self._spans)

    def events(self) -> list[dict[str, Any]]:
        """The spans as Trace Event Format events, with one named track each."""
        pid = os.getpid()
        tids: dict[str, int] = {}
        events: list[dict[str, Any]] = []
        with self._lock:
            spans = list(self._spans)
        for track, name, start, end, args in spans:
            tid = tids.setdefault(track, len(tids) + 1)
            events.append(
                {
                    "name": name,
                    "cat": track.split("/")[0],
                    "ph": "X",
                    "pid": pid,
                    "tid": tid,
                    "ts": round((start - self._origin) * 1e6, 3),
                    "dur": round((end - start) * 1e6, 3),
                    "args": args,
                }
            )
        events.extend(
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": track}}
            for track, tid in tids.items()
        )
        return events

    def write(self, path: str | Path) -> Path:
        """Write the trace as JSON to ``path``; return the path."""
        target = Path(path)
        document = {
            "traceEvents": self.events(),
            "displayTimeUnit": "ms",
            "otherData": {"dropped_spans": self.dropped},
        }
        target.write_text(json.dumps(document))
        return target
