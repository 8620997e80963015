"""``Buffer`` and ``BufferList``: ModelBox's data containers, over NumPy without copies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


class Buffer:
    """One item of data; ``np.array(buf, copy=False)`` returns the array itself.

    The payload is kept as given: an ``np.ndarray`` stays the same object (no copy on
    the way in or out), ``bytes`` are viewed as ``uint8``, anything else is returned
    by ``as_object()``.
    """

    __slots__ = ("_data", "_meta")

    def __init__(self, data: Any) -> None:
        self._data = data
        self._meta: dict[str, Any] = {}

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray[Any, Any]:
        data = self._data
        if isinstance(data, bytes | bytearray | memoryview):
            array: np.ndarray[Any, Any] = np.frombuffer(data, dtype=np.uint8)
        elif isinstance(data, np.ndarray):
            array = data
        else:
            array = np.asarray(data)
        if dtype is not None and array.dtype != np.dtype(dtype):
            if copy is False:
                msg = f"buffer holds {array.dtype}, not {np.dtype(dtype)}; a copy is needed"
                raise ValueError(msg)
            return array.astype(dtype)
        return array.copy() if copy else array

    def as_object(self) -> Any:
        """The payload, as it travelled through the graph."""
        return self._data

    def get_bytes(self) -> int:
        """Size of the payload in bytes (ModelBox name)."""
        return int(np.asarray(self).nbytes)

    def set(self, key: str, value: Any) -> None:
        """Set a metadata value."""
        self._meta[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        """Get a metadata value."""
        return self._meta.get(key, default)

    def __repr__(self) -> str:
        shape = getattr(self._data, "shape", None)
        kind = type(self._data).__name__ + (str(list(shape)) if shape is not None else "")
        return f"Buffer({kind})"


class BufferList:
    """A list of buffers; after ``recv(out)``, ``out.get_buffer_list(port)`` per output."""

    def __init__(self, items: list[Buffer] | None = None) -> None:
        self._items: list[Buffer] = list(items or [])
        self._ports: dict[str, BufferList] = {}

    def push_back(self, data: Any) -> None:
        """Append data (a NumPy array is kept as is, not copied)."""
        self._items.append(data if isinstance(data, Buffer) else Buffer(data))

    def size(self) -> int:
        """How many buffers the list holds."""
        return len(self._items)

    def get_buffer_list(self, port: str) -> BufferList:
        """The buffers received on output ``port`` by the last ``recv`` into this list.

        Raises:
            KeyError: no output node is called ``port`` in what was received.
        """
        try:
            return self._ports[port]
        except KeyError:
            names = ", ".join(repr(p) for p in self._ports) or "none"
            msg = f"no data for output {port!r} in this receive; outputs received: {names}"
            raise KeyError(msg) from None

    def set_ports(self, ports: dict[str, BufferList]) -> None:
        """Replace what ``get_buffer_list`` returns (used by ``recv``)."""
        self._ports = ports

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Buffer:
        return self._items[index]

    def __iter__(self) -> Iterator[Buffer]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"BufferList(size={len(self._items)}, ports={list(self._ports)})"
