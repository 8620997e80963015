"""``Packet``: one item travelling on an edge."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

T = TypeVar("T")
"""The payload type of a packet."""
U = TypeVar("U")
"""The payload type of a derived packet."""

SessionId = int
"""Which stream a packet belongs to: one per source node, one per external session."""

EMPTY_META: Mapping[str, Any] = MappingProxyType({})


class Packet(Generic[T]):
    """One item travelling on an edge.

    Packets are immutable by convention: fan-out hands the *same* object (and the same
    array) to every consumer, so a unit never writes into ``packet.data``; it emits a
    new packet with ``replace``.

    Attributes:
        data: the payload.
        session: the stream the packet belongs to.
        seq: position in that session's stream; kept by 1:1 units.
        lineage: index path below the root item, one level per expand (``(face,)``).
        meta: free-form metadata carried along unchanged.
    """

    __slots__ = ("data", "lineage", "meta", "seq", "session")

    def __init__(
        self,
        data: T,
        session: SessionId = 0,
        seq: int = 0,
        lineage: tuple[int, ...] = (),
        meta: Mapping[str, Any] = EMPTY_META,
    ) -> None:
        self.data = data
        self.session = session
        self.seq = seq
        self.lineage = lineage
        self.meta = meta

    def replace(self, data: U) -> Packet[U]:
        """Return a packet with the same identity (session, seq, lineage, meta) and new data."""
        return Packet(data, self.session, self.seq, self.lineage, self.meta)

    def with_meta(self, **meta: Any) -> Packet[T]:
        """Return a copy whose ``meta`` has ``meta`` merged in."""
        return Packet(
            self.data, self.session, self.seq, self.lineage, MappingProxyType({**self.meta, **meta})
        )

    def __repr__(self) -> str:
        data = type(self.data).__name__
        shape = getattr(self.data, "shape", None)
        if shape is not None:
            data += f"{list(shape)}"
        return (
            f"Packet(session={self.session}, seq={self.seq}, lineage={self.lineage}, data={data})"
        )
