"""aiges ``sdk``: ``WrapperBase`` and the field classes, with aiges's signatures.

Differences from aiges that a wrapper can notice: ``schema()`` prints (and returns)
actorflow's JSON Schema / OpenAPI document instead of the athena gateway template,
and declared limits are enforced on served requests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from actorflow.compat.aiges.dto import DataListCls as DataListCls
from actorflow.compat.aiges.dto import DataListNode as DataListNode
from actorflow.compat.aiges.dto import Response as Response
from actorflow.compat.aiges.dto import ResponseData as ResponseData
from actorflow.compat.aiges.types import AUDIO, IMAGE, STRING, VIDEO
from actorflow.wrapper import _fields
from actorflow.wrapper._base import WrapperBase as _WrapperBase

type_map = {"text": STRING, "audio": AUDIO, "image": IMAGE, "video": VIDEO}

Field = _fields.Field
"""aiges's field base class."""
ParamField = _fields.ParamField
"""aiges's base class of parameter fields."""
PayloadField = _fields.BodyField
"""aiges's base class of body (payload) fields."""


class WrapperBase(_WrapperBase):
    """aiges's ``WrapperBase``: subclass it and implement the ``wrapper*`` hooks."""

    def schema(self) -> dict[str, Any]:
        """Print the JSON Schema / OpenAPI document (as aiges printed its schema)."""
        doc = super().schema()
        print(json.dumps(doc, indent=4, ensure_ascii=False))
        return doc

    def wrapperError(self, ret: int) -> str:
        """Aiges's default: no message (the server then says ``error code N``)."""
        return ""


class StringParamField(_fields.StringParamField):
    """aiges's ``StringParamField(key, minLength=0, maxLength=50, enums=[], ...)``."""

    def __init__(
        self,
        key: str,
        minLength: int = 0,
        maxLength: int = 50,
        enums: Sequence[str] = (),
        required: bool = False,
        value: str = "",
    ) -> None:
        # aiges's debug run sent "" when no value was given; with enums that is no value.
        test = None if value == "" and enums and "" not in enums else value
        super().__init__(
            key,
            enums=enums,
            minLength=minLength,
            maxLength=maxLength,
            required=required,
            value=test,
        )
        self.data_type = "string"


class NumberParamField(_fields.NumberParamField):
    """aiges's ``NumberParamField(key, minimum=0, maximum=100, enums=[], ...)``."""

    def __init__(
        self,
        key: str,
        minimum: float = 0,
        maximum: float = 100,
        enums: Sequence[float] = (),
        required: bool = False,
        value: float = 0,
    ) -> None:
        super().__init__(
            key, minimum=minimum, maximum=maximum, enums=enums, required=required, value=value
        )
        self.data_type = "number"


class IntegerParamField(_fields.IntegerParamField):
    """aiges's ``IntegerParamField(key, minimum=0, maximum=100, enums=[], ...)``."""

    def __init__(
        self,
        key: str,
        minimum: int = 0,
        maximum: int = 100,
        enums: Sequence[int] = (),
        required: bool = False,
        value: int = 0,
    ) -> None:
        super().__init__(
            key, minimum=minimum, maximum=maximum, enums=enums, required=required, value=value
        )
        self.data_type = "integer"


class BooleanParamField(_fields.BooleanParamField):
    """aiges's ``BooleanParamField(key, default=False, required=False)``."""

    def __init__(self, key: str, default: bool = False, required: bool = False) -> None:
        super().__init__(key, required=required, value=default)
        self.data_type = "boolean"
        self.default = default


class StringBodyField(_fields.StringBodyField):
    """aiges's ``StringBodyField(key, value="", need_base64=False)``."""

    def __init__(self, key: str, value: str = "", need_base64: bool = False) -> None:
        super().__init__(key, value)
        self.need_base64 = need_base64


class JsonBodyField(_fields.JsonBodyField):
    """aiges's ``JsonBodyField(key, value="", need_base64=False)`` (JSON text)."""

    def __init__(self, key: str, value: Any = "", need_base64: bool = False) -> None:
        super().__init__(key, value if value != "" else None)
        self.need_base64 = need_base64


class AudioBodyField(_fields.AudioBodyField):
    """aiges's ``AudioBodyField(key, path="")``; the file is read by the debug run."""

    def __init__(self, key: str, path: str = "") -> None:
        super().__init__(key, path or None)


class ImageBodyField(_fields.ImageBodyField):
    """aiges's ``ImageBodyField(key, path="", need_base64=False)``."""

    def __init__(self, key: str, path: str = "", need_base64: bool = False) -> None:
        super().__init__(key, path or None)
        self.need_base64 = need_base64


__all__ = [
    "AUDIO",
    "IMAGE",
    "STRING",
    "VIDEO",
    "AudioBodyField",
    "BooleanParamField",
    "DataListCls",
    "DataListNode",
    "Field",
    "ImageBodyField",
    "IntegerParamField",
    "JsonBodyField",
    "NumberParamField",
    "ParamField",
    "PayloadField",
    "Response",
    "ResponseData",
    "StringBodyField",
    "StringParamField",
    "WrapperBase",
    "type_map",
]
