from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from actorflow.wrapper import load_wrapper


@pytest.fixture
def schema(echo_file: Path) -> dict[str, Any]:
    return load_wrapper(echo_file)().schema()


def test_every_generated_schema_is_valid_json_schema(schema: dict[str, Any]) -> None:
    for name in ("request", "response", "error"):
        jsonschema.Draft202012Validator.check_schema(schema[name])
    for component in schema["openapi"]["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(component)


def test_request_schema_snapshot(schema: dict[str, Any]) -> None:
    request = schema["request"]
    assert request["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert request["required"] == ["parameter", "payload"]
    params = request["properties"]["parameter"]
    assert params["required"] == ["mode"]
    assert params["additionalProperties"] is False
    assert params["properties"] == {
        "mode": {
            "type": "string",
            "enum": ["music", "humming"],
            "default": "humming",
            "examples": ["humming"],
        },
        "name": {
            "type": "string",
            "minLength": 2,
            "maxLength": 8,
            "default": "abc",
            "examples": ["abc"],
        },
        "count": {"type": "integer", "minimum": 1, "maximum": 5, "default": 2, "examples": [2]},
        "ratio": {
            "type": "number",
            "minimum": 0.0,
            "maximum": 1.0,
            "default": 0.5,
            "examples": [0.5],
        },
        "loud": {"type": "boolean", "default": False, "examples": [False]},
        "sleep_ms": {
            "type": "integer",
            "minimum": 0,
            "maximum": 1000,
            "default": 0,
            "examples": [0],
        },
        "fail": {"type": "integer", "minimum": 0, "maximum": 99999, "default": 0, "examples": [0]},
    }
    payload = request["properties"]["payload"]
    assert payload["required"] == ["data"]
    assert payload["properties"] == {
        "data": {"type": "string", "contentEncoding": "base64", "contentMediaType": "audio/*"},
        "note": {"type": "string", "contentMediaType": "text/plain", "examples": ["hello"]},
        "meta": {},
    }


@pytest.mark.parametrize(
    ("request_doc", "valid"),
    [
        pytest.param(
            {"parameter": {"mode": "music"}, "payload": {"data": base64.b64encode(b"x").decode()}},
            True,
            id="valid",
        ),
        pytest.param({"parameter": {"mode": "jazz"}, "payload": {"data": ""}}, False, id="enum"),
        pytest.param(
            {"parameter": {"mode": "music", "count": 9}, "payload": {"data": ""}}, False, id="range"
        ),
        pytest.param(
            {"parameter": {"mode": "music", "name": "x"}, "payload": {"data": ""}},
            False,
            id="length",
        ),
        pytest.param(
            {"parameter": {"mode": "music", "loud": "no"}, "payload": {"data": ""}},
            False,
            id="type",
        ),
        pytest.param({"parameter": {}, "payload": {"data": ""}}, False, id="missing"),
        pytest.param({"parameter": {"mode": "music"}, "payload": {}}, False, id="missing-body"),
    ],
)
def test_request_schema_accepts_and_rejects_like_the_validator(
    schema: dict[str, Any], echo_file: Path, request_doc: dict[str, Any], valid: bool
) -> None:
    errors = list(jsonschema.Draft202012Validator(schema["request"]).iter_errors(request_doc))
    assert (not errors) is valid
    wrapper = load_wrapper(echo_file)()
    try:
        wrapper.check_request(request_doc["parameter"], request_doc["payload"])
        accepted = True
    except ValueError:
        accepted = False
    assert accepted is valid


def test_response_schema_describes_declared_keys(schema: dict[str, Any]) -> None:
    payload = schema["response"]["properties"]["payload"]
    assert payload["properties"]["output_text"]["properties"]["type"] == {"const": "text"}
    assert payload["properties"]["raw"]["properties"]["type"] == {"const": "audio"}
    sample = {
        "code": 0,
        "message": "success",
        "payload": {
            "output_text": {"type": "text", "status": 3, "len": 2, "encoding": "utf8", "data": "hi"}
        },
    }
    jsonschema.validate(sample, schema["response"])


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/")
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_is_structurally_sound(schema: dict[str, Any]) -> None:
    doc = schema["openapi"]
    assert doc["openapi"].startswith("3.1")
    assert doc["info"] == {
        "title": "echo",
        "version": "1.2.3",
        "description": "Echo service for tests.",
    }
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        for method, operation in item.items():
            assert method in {"get", "post"}
            assert operation["operationId"]
            for status, response in operation["responses"].items():
                assert status.isdigit()
                assert response["description"]
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert isinstance(_resolve(doc, ref), dict), ref
    infer = doc["paths"]["/v1/infer"]["post"]
    assert set(infer["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert set(infer["responses"]) == {"200", "400", "413", "429", "500"}
    form = doc["components"]["schemas"]["RequestForm"]
    assert form["properties"]["data"] == {"type": "string", "contentMediaType": "audio/*"}
    assert form["required"] == ["mode", "data"]


def test_single_body_wrapper_also_takes_a_raw_body(tmp_path: Path) -> None:
    path = tmp_path / "one.py"
    path.write_text(
        "from actorflow.wrapper import WrapperBase, ImageBodyField, IntegerParamField\n"
        "class Req:\n"
        "    k = IntegerParamField('k', value=1)\n"
        "    img = ImageBodyField('img', media_type='image/png')\n"
        "class Wrapper(WrapperBase):\n"
        "    requestCls = Req\n",
        encoding="utf-8",
    )
    infer = load_wrapper(path)().schema()["openapi"]["paths"]["/v1/infer"]["post"]
    assert "image/png" in infer["requestBody"]["content"]
    assert [(p["name"], p["in"]) for p in infer["parameters"]] == [("k", "query")]
