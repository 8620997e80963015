"""Field declarations: what a wrapper's request and response carry.

A request class declares *parameters* (``StringParamField``, ``NumberParamField``,
``IntegerParamField``, ``BooleanParamField``: small control values) and *body* fields
(``ImageBodyField``, ``AudioBodyField``, ``StringBodyField``, ``JsonBodyField``: the
data). A response class declares body fields only. The declarations drive three
things: the JSON Schema / OpenAPI document, request validation, and the test values
of the local debug run (``value=`` for parameters and text, ``path=`` for files).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from actorflow.wrapper._dto import DataAudio, DataImage, DataText, DataVideo
from actorflow.wrapper._errors import WrapperRequestError


class Field:
    """Base class of every field; ``key`` is the name on the wire."""

    kind: ClassVar[str] = ""
    """``param`` or ``body``."""

    def __init__(self, key: str, *, required: bool, description: str = "") -> None:
        if not isinstance(key, str) or not key:
            msg = f"{type(self).__name__}: key must be a non-empty string, got {key!r}"
            raise TypeError(msg)
        self.key, self.required, self.description = key, required, description

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r})"

    def json_schema(self) -> dict[str, Any]:
        """This field's JSON Schema (draft 2020-12)."""
        raise NotImplementedError

    def _error(self, message: str, reason: str) -> WrapperRequestError:
        return WrapperRequestError(
            f"{self.kind} {self.key!r}: {message}", field=self.key, reason=reason
        )


class ParamField(Field):
    """A control parameter (``parameter`` section of a request)."""

    kind = "parameter"
    json_type: ClassVar[str] = ""

    def __init__(
        self, key: str, *, enums: Sequence[Any] | None, required: bool, value: Any, description: str
    ) -> None:
        super().__init__(key, required=required, description=description)
        self.enums: list[Any] = list(enums) if enums else []
        self.value = value

    @property
    def test_value(self) -> Any:
        """The value the local debug run sends (``value=``)."""
        return self.value

    def check(self, value: Any, *, from_text: bool = False) -> Any:
        """Validate ``value`` (converting text first when ``from_text``) and return it.

        Raises:
            WrapperRequestError: naming this field and the violated rule.
        """
        if from_text and isinstance(value, str):
            value = self._parse_text(value)
        value = self._check_type(value)
        if self.enums and value not in self.enums:
            allowed = ", ".join(repr(e) for e in self.enums)
            msg = f"{value!r} is not one of the allowed values {allowed}"
            raise self._error(msg, "enum")
        self._check_limits(value)
        return value

    def json_schema(self) -> dict[str, Any]:
        """This parameter's JSON Schema: type, enum, limits, default, example."""
        schema: dict[str, Any] = {"type": self.json_type}
        if self.enums:
            schema["enum"] = list(self.enums)
        schema.update(self._limits_schema())
        if self.value is not None:
            schema["default"] = self.value
            schema["examples"] = [self.value]
        if self.description:
            schema["description"] = self.description
        return schema

    def _parse_text(self, text: str) -> Any:
        return text

    def _check_type(self, value: Any) -> Any:
        raise NotImplementedError

    def _check_limits(self, value: Any) -> None:
        """Range and length checks; the default has none."""

    def _limits_schema(self) -> dict[str, Any]:
        return {}

    def _type_error(self, value: Any, expected: str) -> WrapperRequestError:
        return self._error(f"expected {expected}, got {value!r} ({type(value).__name__})", "type")


class StringParamField(ParamField):
    """A string parameter.

    Args:
        key: the parameter's name.
        enums: the allowed values (empty: any string within the length limits).
        minLength: the shortest allowed length, in characters.
        maxLength: the longest allowed length, in characters.
        required: requests must carry it; an optional one left out takes ``value``.
        value: the test value of the local debug run, and the default and example in
            the schema.
        description: shown in the schema.
    """

    json_type = "string"

    def __init__(
        self,
        key: str,
        enums: Sequence[str] | None = None,
        minLength: int | None = None,
        maxLength: int | None = None,
        required: bool = False,
        value: str | None = None,
        *,
        description: str = "",
    ) -> None:
        super().__init__(key, enums=enums, required=required, value=value, description=description)
        self.min_length, self.max_length = minLength, maxLength

    def _check_type(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise self._type_error(value, "a string")
        return value

    def _check_limits(self, value: Any) -> None:
        if self.min_length is not None and len(value) < self.min_length:
            msg = f"length {len(value)} is below minLength {self.min_length}"
            raise self._error(msg, "length")
        if self.max_length is not None and len(value) > self.max_length:
            msg = f"length {len(value)} is above maxLength {self.max_length}"
            raise self._error(msg, "length")

    def _limits_schema(self) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        if self.min_length is not None:
            limits["minLength"] = self.min_length
        if self.max_length is not None:
            limits["maxLength"] = self.max_length
        return limits


class NumberParamField(ParamField):
    """A number parameter (``int`` or ``float``; booleans are refused).

    Args:
        key: the parameter's name.
        minimum: the smallest allowed value (inclusive).
        maximum: the largest allowed value (inclusive).
        enums: the allowed values.
        required: requests must carry it; an optional one left out takes ``value``.
        value: the test value, default and example.
        description: shown in the schema.
    """

    json_type = "number"

    def __init__(
        self,
        key: str,
        minimum: float | None = None,
        maximum: float | None = None,
        enums: Sequence[float] | None = None,
        required: bool = False,
        value: float | None = None,
        *,
        description: str = "",
    ) -> None:
        super().__init__(key, enums=enums, required=required, value=value, description=description)
        self.minimum, self.maximum = minimum, maximum

    def _parse_text(self, text: str) -> Any:
        try:
            return float(text) if any(c in text for c in ".eEnN") else int(text)
        except ValueError:
            raise self._type_error(text, "a number") from None

    def _check_type(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._type_error(value, "a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise self._type_error(value, "a finite number")
        return value

    def _check_limits(self, value: Any) -> None:
        if self.minimum is not None and value < self.minimum:
            msg = f"{value!r} is below the minimum {self.minimum!r}"
            raise self._error(msg, "range")
        if self.maximum is not None and value > self.maximum:
            msg = f"{value!r} is above the maximum {self.maximum!r}"
            raise self._error(msg, "range")

    def _limits_schema(self) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        if self.minimum is not None:
            limits["minimum"] = self.minimum
        if self.maximum is not None:
            limits["maximum"] = self.maximum
        return limits


class IntegerParamField(NumberParamField):
    """An integer parameter; ``3.0`` is accepted as ``3`` (JSON Schema's rule).

    Args:
        key: the parameter's name.
        minimum: the smallest allowed value (inclusive).
        maximum: the largest allowed value (inclusive).
        enums: the allowed values.
        required: requests must carry it; an optional one left out takes ``value``.
        value: the test value, default and example.
        description: shown in the schema.
    """

    json_type = "integer"

    def __init__(
        self,
        key: str,
        minimum: int | None = None,
        maximum: int | None = None,
        enums: Sequence[int] | None = None,
        required: bool = False,
        value: int | None = None,
        *,
        description: str = "",
    ) -> None:
        super().__init__(
            key,
            minimum=minimum,
            maximum=maximum,
            enums=enums,
            required=required,
            value=value,
            description=description,
        )

    def _parse_text(self, text: str) -> Any:
        try:
            return int(text)
        except ValueError:
            raise self._type_error(text, "an integer") from None

    def _check_type(self, value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._type_error(value, "an integer")
        return value


class BooleanParamField(ParamField):
    """A boolean parameter; form and query values accept ``true/false/1/0/yes/no``.

    Args:
        key: the parameter's name.
        required: requests must carry it; an optional one left out takes ``value``.
        value: the test value, default and example (``default=`` is the aiges spelling).
        default: same as ``value``.
        description: shown in the schema.
    """

    json_type = "boolean"
    _TEXT: ClassVar[dict[str, bool]] = {
        "true": True,
        "1": True,
        "yes": True,
        "false": False,
        "0": False,
        "no": False,
    }

    def __init__(
        self,
        key: str,
        value: bool | None = None,
        required: bool = False,
        *,
        default: bool | None = None,
        description: str = "",
    ) -> None:
        super().__init__(
            key,
            enums=None,
            required=required,
            value=value if value is not None else default,
            description=description,
        )

    def _parse_text(self, text: str) -> Any:
        try:
            return self._TEXT[text.strip().lower()]
        except KeyError:
            raise self._type_error(text, "a boolean (true/false)") from None

    def _check_type(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise self._type_error(value, "a boolean")
        return value


class BodyField(Field):
    """A body (payload) field: binary data, text or JSON.

    Body fields of a request are required unless declared ``required=False``.
    """

    kind = "body field"
    data_type: ClassVar[int] = DataText
    type_name: ClassVar[str] = "text"
    default_media_type: ClassVar[str] = "application/octet-stream"
    binary: ClassVar[bool] = True

    def __init__(
        self,
        key: str,
        *,
        path: str | None = None,
        value: Any = None,
        media_type: str | None = None,
        required: bool = True,
        description: str = "",
    ) -> None:
        super().__init__(key, required=required, description=description)
        self.path, self.value = path, value
        self.media_type = media_type or self.default_media_type

    def json_schema(self) -> dict[str, Any]:
        """JSON form: binary data as a base64 string; text as a string; JSON as itself."""
        schema: dict[str, Any] = {
            "type": "string",
            "contentEncoding": "base64",
            "contentMediaType": self.media_type,
        }
        if self.description:
            schema["description"] = self.description
        return schema

    def to_bytes(self, value: Any) -> bytes | memoryview:
        """Turn a value received in the JSON form into the bytes handed to the wrapper."""
        if isinstance(value, bytes):
            return value
        if isinstance(value, bytearray | memoryview):
            return memoryview(value)
        msg = f"expected base64 text, got {type(value).__name__}"
        raise self._error(msg, "type")

    def check_bytes(self, data: bytes | memoryview) -> None:
        """Validate raw bytes received as a file part or a raw body (binary: anything)."""


class ImageBodyField(BodyField):
    """An image in the request or response body.

    Args:
        key: the field's name.
        path: a test image for the local debug run (relative paths resolve from the
            wrapper file's directory, then the working directory).
        media_type: the declared media type (default ``image/*``).
        required: requests must carry it.
        description: shown in the schema.
    """

    data_type = DataImage
    type_name = "image"
    default_media_type = "image/*"

    def __init__(
        self,
        key: str,
        path: str | None = None,
        *,
        media_type: str | None = None,
        required: bool = True,
        description: str = "",
    ) -> None:
        super().__init__(
            key, path=path, media_type=media_type, required=required, description=description
        )


class AudioBodyField(BodyField):
    """Audio in the request or response body; ``path`` names a test file."""

    data_type = DataAudio
    type_name = "audio"
    default_media_type = "audio/*"

    def __init__(
        self,
        key: str,
        path: str | None = None,
        *,
        media_type: str | None = None,
        required: bool = True,
        description: str = "",
    ) -> None:
        super().__init__(
            key, path=path, media_type=media_type, required=required, description=description
        )


class VideoBodyField(BodyField):
    """Video in the request or response body; ``path`` names a test file."""

    data_type = DataVideo
    type_name = "video"
    default_media_type = "video/*"

    def __init__(
        self,
        key: str,
        path: str | None = None,
        *,
        media_type: str | None = None,
        required: bool = True,
        description: str = "",
    ) -> None:
        super().__init__(
            key, path=path, media_type=media_type, required=required, description=description
        )


class StringBodyField(BodyField):
    """Text in the request or response body, handed to the wrapper as UTF-8 bytes.

    Args:
        key: the field's name.
        value: the test text of the local debug run.
        path: alternatively, a file holding the test text.
        media_type: the declared media type (default ``text/plain``).
        required: requests must carry it.
        description: shown in the schema.
    """

    type_name = "text"
    default_media_type = "text/plain"
    binary = False

    def __init__(
        self,
        key: str,
        value: str | None = None,
        *,
        path: str | None = None,
        media_type: str | None = None,
        required: bool = True,
        description: str = "",
    ) -> None:
        super().__init__(
            key,
            path=path,
            value=value,
            media_type=media_type,
            required=required,
            description=description,
        )

    def json_schema(self) -> dict[str, Any]:
        """A plain string."""
        schema: dict[str, Any] = {"type": "string", "contentMediaType": self.media_type}
        if self.value is not None:
            schema["examples"] = [self.value]
        if self.description:
            schema["description"] = self.description
        return schema

    def to_bytes(self, value: Any) -> bytes | memoryview:
        """Encode text as UTF-8."""
        if not isinstance(value, str):
            msg = f"expected a string, got {type(value).__name__}"
            raise self._error(msg, "type")
        return value.encode()

    def check_bytes(self, data: bytes | memoryview) -> None:
        """Text parts must be UTF-8."""
        try:
            str(data, "utf-8")
        except UnicodeDecodeError as exc:
            msg = f"text is not valid UTF-8 ({exc.reason} at byte {exc.start})"
            raise self._error(msg, "type") from None


class JsonBodyField(BodyField):
    """A JSON document in the body, handed to the wrapper as its UTF-8 JSON text.

    In the JSON form of a request the value is any JSON value (re-serialised); as a
    file part or raw body it must parse as JSON.

    Args:
        key: the field's name.
        value: the test value of the local debug run (a JSON value, or JSON text).
        path: alternatively, a file holding the test JSON.
        json_schema: a JSON Schema the document must follow (used in the schema only).
        required: requests must carry it.
        description: shown in the schema.
    """

    type_name = "text"
    default_media_type = "application/json"
    binary = False

    def __init__(
        self,
        key: str,
        value: Any = None,
        *,
        path: str | None = None,
        json_schema: dict[str, Any] | None = None,
        required: bool = True,
        description: str = "",
    ) -> None:
        super().__init__(key, path=path, value=value, required=required, description=description)
        self.document_schema = json_schema

    def json_schema(self) -> dict[str, Any]:
        """The declared document schema, or any JSON value."""
        schema: dict[str, Any] = dict(self.document_schema or {})
        if self.description:
            schema.setdefault("description", self.description)
        return schema

    def to_bytes(self, value: Any) -> bytes | memoryview:
        """Serialise a JSON value as UTF-8 JSON text."""
        return json.dumps(value, ensure_ascii=False).encode()

    def check_bytes(self, data: bytes | memoryview) -> None:
        """JSON parts must parse."""
        try:
            json.loads(bytes(data))
        except ValueError as exc:
            msg = f"not valid JSON: {exc}"
            raise self._error(msg, "type") from None
