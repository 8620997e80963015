"""Request validation: turn received parameters and body data into hook arguments.

Every rule of the field declarations is checked (enum, length, range, type,
missing, unknown); every problem is reported, each naming its field. Body data is
handed on without copying: bytes stay the same object, other buffers become a
``memoryview`` over them.
"""

from __future__ import annotations

import base64
import binascii
import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from actorflow.wrapper._dto import DataListCls, DataListNode, DataOnce
from actorflow.wrapper._errors import WrapperRequestError
from actorflow.wrapper._fields import BodyField, ParamField

RAW_TYPES = (bytes, bytearray, memoryview)


def check_params(
    fields: Sequence[ParamField], params: Mapping[str, Any] | None, *, from_text: bool = False
) -> dict[str, Any]:
    """Validate ``params`` against ``fields``; fill optional ones left out with ``value``.

    Args:
        fields: the declared parameters.
        params: what the request carries.
        from_text: values arrived as text (form fields, query string) and are converted
            to the declared types first.

    Raises:
        WrapperRequestError: every problem, the first one's field in ``field``.
    """
    params = dict(params or {})
    problems: list[WrapperRequestError] = []
    result: dict[str, Any] = {}
    for field in fields:
        if field.key in params:
            try:
                result[field.key] = field.check(params.pop(field.key), from_text=from_text)
            except WrapperRequestError as exc:
                problems.append(exc)
        elif field.required:
            problems.append(_missing(field))
        elif field.value is not None:
            result[field.key] = field.value
    problems.extend(_unknown("parameter", key, [f.key for f in fields]) for key in params)
    _raise(problems)
    return result


def check_payload(
    fields: Sequence[BodyField], payload: Mapping[str, Any] | None, *, status: int = DataOnce
) -> DataListCls:
    """Validate body data and wrap it as a ``DataListCls`` in declaration order.

    A value that is already bytes-like (a file part, a raw body) is taken as is;
    a text value (the JSON form) is decoded per field: base64 for binary fields,
    UTF-8 for text, any JSON value for JSON fields.

    Raises:
        WrapperRequestError: every problem, the first one's field in ``field``.
    """
    payload = dict(payload or {})
    problems: list[WrapperRequestError] = []
    items: list[DataListNode] = []
    for field in fields:
        if field.key not in payload:
            if field.required:
                problems.append(_missing(field))
            continue
        try:
            data = to_data(field, payload.pop(field.key))
        except WrapperRequestError as exc:
            problems.append(exc)
            continue
        items.append(DataListNode(field.key, data, _nbytes(data), field.data_type, status))
    problems.extend(_unknown("body field", key, [f.key for f in fields]) for key in payload)
    _raise(problems)
    return DataListCls(items)


def to_data(field: BodyField, value: Any) -> bytes | memoryview:
    """Convert one received body value to the bytes handed to the wrapper (no copies)."""
    if isinstance(value, RAW_TYPES):
        data: bytes | memoryview = value if isinstance(value, bytes) else memoryview(value)
        field.check_bytes(data)
        return data
    if field.binary:
        if not isinstance(value, str):
            msg = f"body field {field.key!r}: expected base64 text, got {type(value).__name__}"
            raise WrapperRequestError(msg, field=field.key, reason="type")
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            msg = f"body field {field.key!r}: not valid base64 text"
            raise WrapperRequestError(msg, field=field.key, reason="type") from None
    return field.to_bytes(value)


def _nbytes(data: bytes | memoryview) -> int:
    return data.nbytes if isinstance(data, memoryview) else len(data)


def _missing(field: ParamField | BodyField) -> WrapperRequestError:
    return WrapperRequestError(
        f"{field.kind} {field.key!r} is required but missing", field=field.key, reason="missing"
    )


def _unknown(kind: str, key: str, known: list[str]) -> WrapperRequestError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    accepted = ", ".join(repr(k) for k in known) or "none"
    msg = f"unknown {kind} {key!r}{hint} (declared: {accepted})"
    return WrapperRequestError(msg, field=key, reason="unknown")


def _raise(problems: list[WrapperRequestError]) -> None:
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    first = problems[0]
    raise WrapperRequestError(
        "; ".join(str(p) for p in problems),
        field=first.field,
        reason=first.reason,
        problems=tuple(problems),
    )
