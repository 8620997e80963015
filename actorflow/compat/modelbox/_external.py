"""``ExternalDataMap``: one session of a running flow, with ModelBox's synchronous API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from actorflow.compat.modelbox._buffer import Buffer, BufferList
from actorflow.compat.modelbox._log import error
from actorflow.compat.modelbox._status import Status, StatusCode
from actorflow.errors import SessionClosed

if TYPE_CHECKING:
    from actorflow.compat.modelbox._flow import Flow
    from actorflow.runtime import Session


class ExternalDataMap:
    """Send data into the graph's ``input`` nodes and receive its ``output`` nodes' results.

    Create with ``flow.create_external_data_map()``. ``send`` waits while the graph is
    full (backpressure); ``shutdown()`` ends the input (results of what was sent still
    arrive); ``recv`` returns ``STATUS_SUCCESS`` per result, then ``STATUS_EOF``;
    ``close()`` drops what is left.
    """

    def __init__(self, flow: Flow, session: Session) -> None:
        self._flow = flow
        self._session = session
        self._eof = False
        self.done = False
        """End of stream was received, or the map was closed (the flow may then stop)."""

    def create_buffer_list(self) -> BufferList:
        """A new, empty ``BufferList`` (for ``send``, or to receive into)."""
        return BufferList()

    def send(self, port: str, buffer_list: BufferList) -> Status:
        """Send every buffer of ``buffer_list`` to input node ``port``, in order."""
        items = [b.as_object() if isinstance(b, Buffer) else b for b in buffer_list]
        try:
            self._flow.call(self._send, port, items)
        except SessionClosed as exc:
            return Status(StatusCode.STATUS_SHUTDOWN, str(exc))
        except KeyError as exc:
            error(str(exc.args[0]))
            return Status(StatusCode.STATUS_NOTFOUND, str(exc.args[0]))
        except RuntimeError as exc:
            return Status(StatusCode.STATUS_SHUTDOWN, str(exc))
        return Status()

    def shutdown(self) -> Status:
        """End the input; results of what was sent still arrive, then ``STATUS_EOF``."""
        try:
            self._flow.call(self._session.close)
        except RuntimeError as exc:
            return Status(StatusCode.STATUS_SHUTDOWN, str(exc))
        return Status()

    def close(self) -> Status:
        """Drop what is left of this session's work and end its stream. Idempotent."""
        try:
            self._flow.call(self._close)
        except RuntimeError as exc:
            return Status(StatusCode.STATUS_SHUTDOWN, str(exc))
        return Status()

    def recv(self, out_buffer: BufferList, timeout: int = 0) -> Status:
        """Receive the next result into ``out_buffer``.

        ``out_buffer.get_buffer_list(port)`` then holds it, under its output node's
        name. Returns ``STATUS_SUCCESS``, ``STATUS_EOF`` once every result was received,
        ``STATUS_FAULT`` (with the message) for an item whose processing failed, or
        ``STATUS_TIMEDOUT`` when ``timeout`` milliseconds (0: no limit) passed first.
        """
        if self._eof:
            return Status(StatusCode.STATUS_EOF)
        try:
            result = self._flow.call(self._recv, timeout / 1000 if timeout > 0 else None)
        except RuntimeError as exc:
            return Status(StatusCode.STATUS_SHUTDOWN, str(exc))
        if result is None:
            return Status(StatusCode.STATUS_TIMEDOUT)
        if result is _EOF:
            self._eof = True
            return Status(StatusCode.STATUS_EOF)
        if result.error is not None:
            return Status(StatusCode.STATUS_FAULT, str(result.error))
        out_buffer.set_ports({result.port: BufferList([Buffer(result.data)])})
        return Status()

    # -- on the flow's loop ------------------------------------------------------------

    async def _send(self, port: str, items: list[Any]) -> None:
        for item in items:
            await self._session.send(port, item)

    async def _close(self) -> None:
        await self._session.abort()
        self._finished()

    async def _recv(self, timeout: float | None) -> Any:
        with anyio.move_on_after(timeout):
            try:
                return await self._session.recv()
            except anyio.EndOfStream:
                self._finished()
                return _EOF
        return None

    def _finished(self) -> None:
        self.done = True
        self._flow.session_changed()


_EOF = object()
