"""Units for the hello graphs: a counting source, a scaler, a printing sink.

This directory is a *driver dir*: graph files list it under ``[driver] dir`` and
actorflow imports every module in it (only this directory, never its subfolders).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from actorflow.errors import UnitConfigError
from actorflow.unit import Context, FlowUnit, Input, Packet, flowunit, source


@source(name="hello_count", outputs={"number": int})
async def hello_count(*, count: int = 10, start: int = 0) -> AsyncIterator[int]:
    """Yield ``count`` integers from ``start``; the stream then ends."""
    for number in range(start, start + count):
        yield number


@flowunit(name="hello_scale", inputs={"number": float}, outputs={"number": float})
async def hello_scale(number: float, *, factor: float = 2.0) -> float:
    """Multiply by ``factor`` (inline on the event loop: it is one multiplication)."""
    return number * factor


class HelloPrint(FlowUnit):
    """Print every value it receives, one per line, after ``prefix``.

    Ports:
        value (in): anything printable.
    """

    name = "hello_print"
    value = Input("value", Any)

    def __init__(self, *, prefix: str = "") -> None:
        if not isinstance(prefix, str):
            msg = f"prefix must be a string, got {prefix!r}"
            raise UnitConfigError(msg)
        self._prefix = prefix

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        """Print the payload."""
        print(f"{self._prefix}{packet.data}")  # printing is this unit's job
