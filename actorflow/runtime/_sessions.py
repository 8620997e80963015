"""``SessionTable``: every session of one flow, their ledgers, and their retirement.

Guarantees:

* Session ids are unique per flow; each session (external or a source's stream) has
  a ledger from the moment it is opened.
* A session that reached its end is retired: the flow stops tracking it and keeps its
  ledger among the latest ``RETIRED_SESSIONS_KEPT``, so a long-running server's memory
  does not grow with the number of requests served.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from actorflow.runtime._markers import Failed
from actorflow.runtime._node import Sender
from actorflow.runtime._session import Session
from actorflow.runtime._stats import SessionCounters, SessionStatistics
from actorflow.unit._packet import EMPTY_META

RETIRED_SESSIONS_KEPT = 1000
"""Finished sessions whose ledgers ``statistics()`` still shows (the most recent ones)."""


class SessionTable:
    """The sessions of one flow (see the module docstring)."""

    def __init__(self) -> None:
        self.open: dict[int, Session] = {}
        """Sessions that can still receive packets."""
        self.ledgers: dict[int, SessionCounters] = {}
        """Ledgers of sessions not retired yet (external and source streams), by id."""
        self.aborted: set[int] = set()
        self.finished = 0
        self._retired: deque[tuple[int, SessionCounters]] = deque(maxlen=RETIRED_SESSIONS_KEPT)
        self._next = 1

    def new_ledger(self) -> int:
        """Allocate a session id and its ledger (a source's stream uses just that)."""
        session_id = self._next
        self._next += 1
        self.ledgers[session_id] = SessionCounters()
        return session_id

    def open_session(
        self,
        inputs: dict[str, list[Sender]],
        checks: Mapping[str, Callable[[Any], None]],
        *,
        ends_expected: int,
        result_buffer: int,
        meta: Mapping[str, Any] | None = None,
    ) -> Session:
        """Open an external session (``meta`` goes with every packet it sends)."""
        session_id = self.new_ledger()
        session = Session(
            session_id,
            inputs,
            self.ledgers[session_id],
            ends_expected=ends_expected,
            result_buffer=result_buffer,
            on_abort=self.aborted.add,
            on_finish=self.retire,
            checks=checks,
            meta=meta or EMPTY_META,
        )
        self.open[session_id] = session
        return session

    def retire(self, session_id: int) -> None:
        """A session reached its end: stop tracking it, keep its ledger among the recent.

        Nothing of a finished session is left in the graph (its end marker came after
        its last packet on every path).
        """
        if self.open.pop(session_id, None) is None:
            return
        self.aborted.discard(session_id)
        ledger = self.ledgers.pop(session_id, None)
        if ledger is not None:
            self._retired.append((session_id, ledger))
        self.finished += 1

    def end_arrived(self, session_id: int) -> None:
        """A sink node saw the end of ``session_id``."""
        target = self.open.get(session_id)
        if target is not None:
            target.end_arrived()

    def deliver_error(self, node: str, marker: Failed) -> None:
        """A sink failed a packet: its session receives the error (port: the sink's id)."""
        target = self.open.get(marker.session)
        if target is not None:
            target.deliver_error(node, marker)

    def finish_all(self) -> None:
        """The flow ended: end every open session's stream."""
        for session in list(self.open.values()):
            session.finish()

    def statistics(self) -> dict[int, SessionStatistics]:
        """Snapshots of every ledger: retired (latest first kept) and live."""
        return {sid: c.snapshot(sid) for sid, c in (*self._retired, *self.ledgers.items())}
