"""aiges ``dto``: request and response records, with aiges's constructor signatures."""

from __future__ import annotations

from typing import Any

from actorflow.compat.aiges.types import *  # noqa: F403 - aiges's dto re-exports them
from actorflow.compat.aiges.types import DataText, Once
from actorflow.compat.aiges.types import __all__ as _TYPES
from actorflow.wrapper._dto import DataListCls as DataListCls
from actorflow.wrapper._dto import DataListNode as DataListNode
from actorflow.wrapper._dto import Response as Response
from actorflow.wrapper._dto import ResponseData as _ResponseData
from actorflow.wrapper._dto import SessionCreateResponse as SessionCreateResponse


class ResponseData(_ResponseData):
    """aiges's ``ResponseData(key, data, length, type, status)``; the size is ``.len``."""

    __slots__ = ()

    def __init__(
        self,
        key: str = "",
        data: Any = "",
        length: int = 0,
        type: int = DataText,
        status: int = Once,
    ) -> None:
        super().__init__(key, data, length, type, status)


__all__ = [
    "DataListCls",
    "DataListNode",
    "Response",
    "ResponseData",
    "SessionCreateResponse",
    *_TYPES,
]
