"""The unit side of a network sink: one delivery object per ``open``, counted across all.

``DeliverySink`` is the base of ``http_sink`` and ``websocket_sink``. It hands each packet
to its delivery object (``HttpDelivery``, ``WebSocketDelivery``) and reports the sink's
ledger in ``describe()``, so ``flow.statistics()`` and ``/metrics`` show it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from actorflow.flowunits.sinks._delivery import (
    DeadLetterLog,
    Item,
    flow_name_of,
    idempotency_key,
)
from actorflow.flowunits.sinks._ledger import SinkLedger
from actorflow.unit import Context, FlowUnit, Input, Packet

COUNTS = ("accepted", "delivered", "retried", "dead_lettered", "pending")
"""The ledger fields a sink reports under ``describe()["sink"]``."""


class Delivery(Protocol):
    """What a sink's delivery object offers (``HttpDelivery``, ``WebSocketDelivery``)."""

    ledger: SinkLedger

    async def open(self) -> None:
        """Start (open the client session, connect)."""

    async def submit(self, item: Item) -> None:
        """Accept one item; returns once it has a slot (delivery goes on)."""

    async def close(self) -> None:
        """Settle every accepted item (bounded, also when cancelled); then close."""


class DeliverySink(FlowUnit):
    """The unit side of a network sink: one delivery object per ``open``.

    Subclasses set ``delivery_class`` and call ``_configure`` from ``__init__``, which
    builds a delivery once so that bad parameters fail at ``build()``. The counts
    (``accepted``, ``delivered``, ``retried``, ``dead_lettered``) add up over every
    open/close cycle (restarts included). Guarantee: once ``close`` has returned or was
    cancelled, ``delivered + dead_lettered == accepted``. Each packet's idempotency key
    is derived from flow, node, session, position and lineage, so it is the same on
    every attempt and after a restart.
    """

    item: ClassVar[Input[Any]] = Input("in", object)
    delivery_class: ClassVar[Callable[..., Delivery]]

    def _configure(
        self, url: str, options: dict[str, Any], dead_letter: str | None, flow_name: str | None
    ) -> None:
        self._options = options
        self.delivery_class(url, **options)  # validate now: configuration errors at build()
        self.url, self._dead_letter_path, self.flow_name = url, dead_letter, flow_name
        self.dead_letters = DeadLetterLog(None)
        self.delivery: Delivery | None = None
        self._closed_counts = dict.fromkeys(COUNTS, 0)

    def _count(self, name: str) -> int:
        current = getattr(self.delivery.ledger, name) if self.delivery is not None else 0
        return int(self._closed_counts[name] + current)

    @property
    def accepted(self) -> int:
        """Packets the sink took responsibility for, over every open/close cycle."""
        return self._count("accepted")

    @property
    def delivered(self) -> int:
        """Items delivered, over every open/close cycle."""
        return self._count("delivered")

    @property
    def retried(self) -> int:
        """Extra attempts (HTTP) or re-sends after a reconnect (WebSocket)."""
        return self._count("retried")

    @property
    def dead_lettered(self) -> int:
        """Items written to the dead-letter record, over every open/close cycle."""
        return self._count("dead_lettered")

    async def settled(self) -> None:
        """Return once every item accepted so far is delivered or dead-lettered."""
        if self.delivery is not None:
            await self.delivery.ledger.settled()

    def describe(self) -> Mapping[str, Any]:
        """``{"sink": {accepted, delivered, retried, dead_lettered, pending}}``."""
        return {"sink": {name: self._count(name) for name in COUNTS}}

    async def open(self, ctx: Context) -> None:
        """Create the delivery object (resolving the dead-letter path) and start it."""
        if self._dead_letter_path is not None and self.dead_letters.path is None:
            self.dead_letters = DeadLetterLog(ctx.resolve_path(self._dead_letter_path))
        self.delivery = self.delivery_class(
            self.url, dead_letter=self.dead_letters, name=ctx.node, **self._options
        )
        await self.delivery.open()

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Submit the packet with its idempotency key; waits only for a free slot."""
        assert self.delivery is not None
        flow = self.flow_name or flow_name_of(ctx)
        key = idempotency_key(flow, ctx.node, packet.session, packet.seq, packet.lineage)
        await self.delivery.submit(
            Item(packet.data, key, packet.session, packet.seq, packet.lineage)
        )

    async def close(self, ctx: Context) -> None:
        """Settle every accepted item (see the delivery's ``close``), then close."""
        if self.delivery is not None:
            try:
                await self.delivery.close()
            finally:
                for name in COUNTS:
                    if name != "pending":
                        self._closed_counts[name] += getattr(self.delivery.ledger, name)
                self.delivery = None
