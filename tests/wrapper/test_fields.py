from __future__ import annotations

from typing import Any

import pytest

from actorflow.wrapper import (
    AudioBodyField,
    BooleanParamField,
    DataAudio,
    DataListCls,
    DataOnce,
    IntegerParamField,
    JsonBodyField,
    NumberParamField,
    Response,
    StringBodyField,
    StringParamField,
    WrapperBase,
    WrapperRequestError,
)


class Req:
    mode = StringParamField("mode", enums=["music", "humming"], required=True)
    name = StringParamField("name", minLength=2, maxLength=4)
    count = IntegerParamField("count", minimum=1, maximum=5, value=3)
    level = IntegerParamField("level", enums=[1, 2, 4])
    ratio = NumberParamField("ratio", minimum=0, maximum=1)
    loud = BooleanParamField("loud")
    data = AudioBodyField("data")
    note = StringBodyField("note", required=False)
    meta = JsonBodyField("meta", required=False)


class W(WrapperBase):
    requestCls = Req()


VALID: dict[str, Any] = {"mode": "music"}


@pytest.mark.parametrize(
    ("params", "field", "reason", "message"),
    [
        pytest.param(
            {"mode": "jazz"},
            "mode",
            "enum",
            r"parameter 'mode': 'jazz' is not one of the allowed values 'music', "
            r"'humming'",
            id="enum-string",
        ),
        pytest.param(
            {**VALID, "level": 3},
            "level",
            "enum",
            r"parameter 'level': 3 is not one",
            id="enum-integer",
        ),
        pytest.param(
            {**VALID, "name": "a"},
            "name",
            "length",
            r"parameter 'name': length 1 is below minLength 2",
            id="too-short",
        ),
        pytest.param(
            {**VALID, "name": "abcde"},
            "name",
            "length",
            r"parameter 'name': length 5 is above maxLength 4",
            id="too-long",
        ),
        pytest.param(
            {**VALID, "count": 0},
            "count",
            "range",
            r"parameter 'count': 0 is below the minimum 1",
            id="below-minimum",
        ),
        pytest.param(
            {**VALID, "count": 6},
            "count",
            "range",
            r"parameter 'count': 6 is above the maximum 5",
            id="above-maximum",
        ),
        pytest.param(
            {**VALID, "ratio": 1.5},
            "ratio",
            "range",
            r"parameter 'ratio': 1.5 is above the maximum 1",
            id="number-range",
        ),
        pytest.param(
            {**VALID, "count": "3"},
            "count",
            "type",
            r"parameter 'count': expected an integer, got '3' \(str\)",
            id="integer-type",
        ),
        pytest.param(
            {**VALID, "count": 2.5}, "count", "type", r"expected an integer", id="integer-fraction"
        ),
        pytest.param(
            {**VALID, "count": True},
            "count",
            "type",
            r"expected an integer",
            id="bool-is-not-integer",
        ),
        pytest.param(
            {**VALID, "ratio": "x"}, "ratio", "type", r"expected a number", id="number-type"
        ),
        pytest.param(
            {**VALID, "ratio": float("nan")}, "ratio", "type", r"expected a finite number", id="nan"
        ),
        pytest.param(
            {**VALID, "loud": 1}, "loud", "type", r"expected a boolean", id="boolean-type"
        ),
        pytest.param({**VALID, "mode": 3}, "mode", "type", r"expected a string", id="string-type"),
        pytest.param(
            {},
            "mode",
            "missing",
            r"parameter 'mode' is required but missing",
            id="missing-required",
        ),
        pytest.param(
            {**VALID, "mdoe": "x"},
            "mdoe",
            "unknown",
            r"unknown parameter 'mdoe'; did you mean 'mode'\?",
            id="unknown",
        ),
    ],
)
def test_invalid_parameters_are_rejected_naming_the_field(
    params: dict[str, Any], field: str, reason: str, message: str
) -> None:
    with pytest.raises(WrapperRequestError, match=message) as info:
        W().check_request(params, {"data": b"x"})
    assert (info.value.field, info.value.reason) == (field, reason)


@pytest.mark.parametrize(
    ("payload", "field", "reason", "message"),
    [
        pytest.param(
            {}, "data", "missing", r"body field 'data' is required but missing", id="missing-body"
        ),
        pytest.param({"data": "not base64!"}, "data", "type", r"not valid base64", id="bad-base64"),
        pytest.param(
            {"data": 12}, "data", "type", r"expected base64 text, got int", id="binary-type"
        ),
        pytest.param(
            {"data": b"x", "note": 5}, "note", "type", r"expected a string", id="text-type"
        ),
        pytest.param(
            {"data": b"x", "note": b"\xff\xfe"}, "note", "type", r"not valid UTF-8", id="text-utf8"
        ),
        pytest.param(
            {"data": b"x", "meta": b"{nope"}, "meta", "type", r"not valid JSON", id="json-part"
        ),
        pytest.param(
            {"data": b"x", "extra": b""},
            "extra",
            "unknown",
            r"unknown body field 'extra'",
            id="unknown-body",
        ),
    ],
)
def test_invalid_bodies_are_rejected_naming_the_field(
    payload: dict[str, Any], field: str, reason: str, message: str
) -> None:
    with pytest.raises(WrapperRequestError, match=message) as info:
        W().check_request(VALID, payload)
    assert (info.value.field, info.value.reason) == (field, reason)


def test_every_problem_is_reported() -> None:
    with pytest.raises(WrapperRequestError) as info:
        W().check_request({"mode": "jazz", "count": 9}, {})
    assert [(p.field, p.reason) for p in info.value.problems] == [
        ("mode", "enum"),
        ("count", "range"),
        ("data", "missing"),
    ]
    assert info.value.field == "mode"


def test_valid_request_fills_defaults_and_keeps_the_bytes_object() -> None:
    data = b"\x00\x01binary"
    params, req = W().check_request({"mode": "humming", "ratio": 1}, {"data": data})
    assert params == {"mode": "humming", "count": 3, "ratio": 1}
    assert isinstance(req, DataListCls)
    (node,) = req.list
    assert node.data is data  # handed over, not copied
    assert (node.key, node.len, node.type, node.status) == ("data", 8, DataAudio, DataOnce)


def test_buffers_are_wrapped_in_a_memoryview_without_copying() -> None:
    buffer = bytearray(b"abc")
    _, req = W().check_request(VALID, {"data": buffer})
    view = req.list[0].data
    assert isinstance(view, memoryview)
    buffer[0] = ord("z")
    assert bytes(view) == b"zbc"


def test_json_form_values_are_decoded_per_field() -> None:
    _, req = W().check_request(VALID, {"data": "AAE=", "note": "hé", "meta": {"a": [1]}})
    assert [bytes(n.data) for n in req.list] == [b"\x00\x01", "hé".encode(), b'{"a": [1]}']


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", 3), ("true", True), ("0.25", 0.25), ("music", "music")],
)
def test_text_values_are_converted_to_the_declared_type(text: str, value: Any) -> None:
    field = {3: "count", True: "loud", 0.25: "ratio", "music": "mode"}[value]
    params, _ = W().check_request({**VALID, field: text}, {"data": b""}, from_text=True)
    assert params[field] == value
    assert type(params[field]) is type(value)


def test_text_that_does_not_convert_names_the_field() -> None:
    with pytest.raises(WrapperRequestError, match=r"parameter 'loud': expected a boolean"):
        W().check_request({**VALID, "loud": "maybe"}, {"data": b""}, from_text=True)


def test_integral_float_counts_as_integer() -> None:
    params, _ = W().check_request({**VALID, "count": 4.0}, {"data": b""})
    assert params["count"] == 4
    assert type(params["count"]) is int


def test_duplicate_keys_are_refused_at_class_creation() -> None:
    class Dup:
        a = StringParamField("x")
        b = IntegerParamField("x")

    with pytest.raises(TypeError, match=r"declares the key 'x' twice \(a and b\)"):
        type("Bad", (WrapperBase,), {"requestCls": Dup()})


def test_response_class_must_not_declare_parameters() -> None:
    class Resp:
        p = StringParamField("p")

    with pytest.raises(TypeError, match=r"declares parameters \['p'\]"):
        type("Bad", (WrapperBase,), {"responseCls": Resp})


@pytest.mark.parametrize(
    ("hook", "args"),
    [
        ("wrapperInit", ({},)),
        ("wrapperOnceExec", ({}, DataListCls())),
        ("wrapperFini", ()),
        ("wrapperError", (1,)),
        ("wrapperCreate", ({}, "s")),
        ("wrapperDestroy", ("h",)),
    ],
)
def test_unimplemented_hooks_raise_naming_the_hook(hook: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(NotImplementedError, match=rf"^W does not implement {hook}\("):
        getattr(W(), hook)(*args)


def test_exec_must_return_a_response() -> None:
    class NoneExec(W):
        def wrapperOnceExec(self, params, reqData):
            return None

    with pytest.raises(TypeError, match=r"wrapperOnceExec returned NoneType; it must return"):
        NoneExec().exec({}, DataListCls())


def test_response_err_returns_a_failed_response() -> None:
    response = W().response_err(3001)
    assert isinstance(response, Response)
    assert response.error_code == 3001


def test_hooks_declared_without_self_or_with_extra_parameters_are_called() -> None:
    calls = []

    class Loose(WrapperBase):
        def wrapperInit(cls, config):
            calls.append(("init", config))
            return 0

        def wrapperOnceExec(self, params, reqData, persId=0):
            calls.append(("exec", persId))
            return Response()

        def wrapperFini() -> int:  # type: ignore[misc]
            calls.append(("fini",))
            return 0

    wrapper = Loose()
    wrapper.init({"a": 1})
    wrapper.exec({}, DataListCls())
    assert wrapper.fini() == 0
    assert calls == [("init", {"a": 1}), ("exec", 0), ("fini",)]


def test_error_message_falls_back_when_wrapper_error_is_missing() -> None:
    assert W().error_message(7) == "error code 7"


def test_parameter_fields_take_the_documented_positional_order() -> None:
    text = StringParamField("mode", ["a", "b"], 1, 4, True, "a")
    assert (text.enums, text.min_length, text.max_length, text.required, text.value) == (
        ["a", "b"],
        1,
        4,
        True,
        "a",
    )
    number = IntegerParamField("n", 1, 5, [1, 3], False, 3)
    assert (number.minimum, number.maximum, number.enums, number.value) == (1, 5, [1, 3], 3)
    assert BooleanParamField("b", True).value is True
