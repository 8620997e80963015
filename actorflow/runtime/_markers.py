"""Control items that travel in mailboxes beside packets.

Markers are never dropped by a policy and never counted as packets. Each one is
forwarded by a node once it has arrived from every lane that can carry it (the
count is computed from the graph, see ``_plan.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actorflow.errors import NodeFailed


class Marker:
    """Base class of control items."""

    __slots__ = ("lineage", "origin", "seq", "session")

    def __init__(self, session: int, lineage: tuple[int, ...], origin: str, seq: int = 0) -> None:
        self.session, self.lineage, self.origin, self.seq = session, lineage, origin, seq

    @property
    def key(self) -> tuple[type[Marker], int, int, tuple[int, ...]]:
        """Identity used to count arrivals of the same marker over several lanes."""
        return (type(self), self.session, self.seq, self.lineage)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(session={self.session}, lineage={self.lineage})"


class SessionEnd(Marker):
    """No more packets of ``session`` will come; ``origin`` is the session's origin key."""

    __slots__ = ()

    @property
    def key(self) -> tuple[type[Marker], int, int, tuple[int, ...]]:
        """One end per session, whatever ``seq`` each path saw."""
        return (SessionEnd, self.session, 0, ())


class GroupEnd(Marker):
    """Every child of the expanded parent at ``lineage`` has been emitted by ``origin``."""

    __slots__ = ()


class Failed(Marker):
    """The packet at (``session``, ``seq``, ``lineage``) failed at a node upstream.

    It stands in for the lost packet so that joins, collapses and sessions account for
    it; an output node hands ``error`` to the session.
    """

    __slots__ = ("error",)

    def __init__(
        self, session: int, lineage: tuple[int, ...], origin: str, seq: int, error: NodeFailed
    ) -> None:
        super().__init__(session, lineage, origin, seq)
        self.error = error

    @property
    def key(self) -> tuple[type[Marker], int, int, tuple[int, ...]]:
        """Failures are never merged: each stands for its own packet."""
        return (Failed, self.session, self.seq, (*self.lineage, id(self)))
