"""``Ledger``: the one place a node's outcomes are recorded.

Every packet a node takes ends in exactly one outcome, and each method here records
one outcome in the node's counters *and* in the ledger of the packet's session, so
the two can never disagree (DESIGN §5; the identities are in ``_stats.py``):

=========== ================================ ======================================
method      node counters                    session ledger
=========== ================================ ======================================
``deliver`` processed                        delivered (a sink consumed it)
``process`` processed (filtered if no copy)  merged/spawned/filtered, by copies made
``fail``    failed                           failed (+ spawned for copies already out)
``cancel``  cancelled                        cancelled
``drop``    (counted on the lane)            dropped
``spawn``   --                               spawned (fan-out copies, expand children)
=========== ================================ ======================================

A session's ledger may already be retired (the session ended); node counters are
still updated then.
"""

from __future__ import annotations

from actorflow.runtime._stats import NodeCounters, SessionCounters


class Ledger:
    """Records the outcomes of one node's packets; see the module docstring."""

    __slots__ = ("counters", "sessions")

    def __init__(self, counters: NodeCounters, sessions: dict[int, SessionCounters]) -> None:
        self.counters = counters
        self.sessions = sessions

    def deliver(self, session: int, count: int = 1) -> None:
        """A node without outgoing edges consumed ``count`` packets of ``session``."""
        self.counters.processed += count
        ledger = self.sessions.get(session)
        if ledger is not None:
            ledger.delivered += count

    def process(self, session: int, parts: int, copies: int) -> None:
        """One item made of ``parts`` received packets was processed into ``copies``.

        ``parts`` is 1 for a plain packet, more for a join or collapse (the extra parts
        are merged) and 0 for a collapse of an empty group (the item is spawned).
        ``copies`` counts the packets put into consumer lanes; none means the item
        was filtered.
        """
        counters = self.counters
        counters.processed += parts
        if not copies:
            counters.filtered += 1
        ledger = self.sessions.get(session)
        if ledger is None:
            return
        if parts != 1:
            if parts:
                ledger.merged += parts - 1
            else:
                ledger.spawned += 1
        if copies:
            if copies > 1:
                ledger.spawned += copies - 1
        else:
            ledger.filtered += 1

    def process_batch(self, session: int, items: int, parts: int, copies: int) -> None:
        """Batch members of one session were processed.

        ``items`` members, made of ``parts`` received packets, produced ``copies``
        packets: the difference is spawned or filtered.
        """
        counters = self.counters
        counters.processed += parts
        if copies < items:
            counters.filtered += items - copies
        ledger = self.sessions.get(session)
        if ledger is None:
            return
        ledger.merged += parts - items
        if copies >= items:
            ledger.spawned += copies - items
        else:
            ledger.filtered += items - copies

    def fail(self, session: int, count: int = 1, copies: int = 0) -> None:
        """``count`` packets failed; ``copies`` packets were emitted before the failure."""
        self.counters.failed += count
        ledger = self.sessions.get(session)
        if ledger is not None:
            ledger.failed += count
            ledger.spawned += copies

    def cancel(self, session: int, count: int = 1) -> None:
        """``count`` packets were left unprocessed (stop, cancellation, abort)."""
        self.counters.cancelled += count
        ledger = self.sessions.get(session)
        if ledger is not None:
            ledger.cancelled += count

    def drop(self, session: int, count: int = 1) -> None:
        """``count`` packets were discarded by a declared policy (lane or join eviction)."""
        ledger = self.sessions.get(session)
        if ledger is not None:
            ledger.dropped += count

    def spawn(self, session: int, count: int) -> None:
        """``count`` extra packets of ``session`` entered the graph (fan-out, expand)."""
        ledger = self.sessions.get(session)
        if ledger is not None:
            ledger.spawned += count
