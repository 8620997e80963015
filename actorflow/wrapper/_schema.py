"""JSON Schema and OpenAPI 3.1 documents generated from a wrapper's field declarations.

The HTTP contract they describe (served by ``actorflow serve wrapper.py``):

* ``POST /v1/infer`` with JSON ``{"parameter": {...}, "payload": {key: value}}`` (binary
  body values base64-encoded), or ``multipart/form-data`` (parameters as form
  fields, body fields as file parts), or, when the wrapper has one body field, the
  raw body with parameters in the query string.
* ``200``: ``{"code": 0, "message": "success", "payload": {key: item}}``; an error
  code from the wrapper: ``500`` with ``{"code", "message"}`` (the ``wrapperError``
  text); a request that breaks the declarations: ``400`` naming the field.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from actorflow.wrapper._dto import TYPE_NAMES

if TYPE_CHECKING:
    from actorflow.wrapper._base import WrapperBase

DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect of every generated schema (OpenAPI 3.1's default)."""

INFER_PATH = "/v1/infer"
SCHEMA_PATH = "/v1/schema"
"""The OpenAPI document (as for graphs served by ``actorflow serve``)."""
JSONSCHEMA_PATH = "/v1/jsonschema"
"""The request, response and error JSON Schemas."""


def request_schema(cls: type[WrapperBase]) -> dict[str, Any]:
    """The JSON form of a request, as a JSON Schema."""
    params = cls.param_fields()
    bodies = cls.body_fields()
    parameter: dict[str, Any] = {
        "type": "object",
        "properties": {f.key: f.json_schema() for f in params},
        "additionalProperties": False,
    }
    if required_params := [f.key for f in params if f.required]:
        parameter["required"] = required_params
    payload: dict[str, Any] = {
        "type": "object",
        "properties": {f.key: f.json_schema() for f in bodies},
        "additionalProperties": False,
    }
    required_bodies = [f.key for f in bodies if f.required]
    if required_bodies:
        payload["required"] = required_bodies
    top_required = [
        k for k, need in (("parameter", required_params), ("payload", required_bodies)) if need
    ]
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "title": f"{cls.service_name()} request",
        "type": "object",
        "properties": {"parameter": parameter, "payload": payload},
        "additionalProperties": False,
    }
    if top_required:
        schema["required"] = top_required
    return schema


def response_schema(cls: type[WrapperBase]) -> dict[str, Any]:
    """A successful response, as a JSON Schema; declared keys are described."""
    properties: dict[str, Any] = {}
    for field in cls.response_fields():
        item = _item_schema()
        item["properties"]["type"] = {"const": field.type_name}
        if field.description:
            item["description"] = field.description
        properties[field.key] = item
    return {
        "$schema": DIALECT,
        "title": f"{cls.service_name()} response",
        "type": "object",
        "properties": {
            "code": {"const": 0},
            "message": {"type": "string"},
            "payload": {
                "type": "object",
                "properties": properties,
                "additionalProperties": _item_schema(),
            },
        },
        "required": ["code", "message", "payload"],
    }


def error_schema() -> dict[str, Any]:
    """An error response: a wrapper error code, or a request that broke a rule."""
    return {
        "$schema": DIALECT,
        "title": "error",
        "type": "object",
        "properties": {
            "code": {
                "type": "integer",
                "description": "the wrapper's error code, or the "
                "HTTP status for errors found before the wrapper ran",
            },
            "message": {"type": "string"},
            "error": {"type": "string", "description": "the message again (every served error)"},
            "status": {"type": "integer", "description": "the HTTP status"},
            "field": {"type": "string", "description": "the offending field (400 only)"},
            "reason": {
                "type": "string",
                "description": "the kind of problem: a broken rule (enum, length, range, "
                "type, missing, unknown), body, json, depth, size, parts, timeout, "
                "overloaded, not_ready, wrapper_error or unit_failed "
                "(docs/reference/errors.md)",
            },
        },
        "required": ["code", "message", "error", "reason", "status"],
    }


def form_schema(cls: type[WrapperBase]) -> dict[str, Any]:
    """The ``multipart/form-data`` form of a request."""
    properties: dict[str, Any] = {f.key: f.json_schema() for f in cls.param_fields()}
    for field in cls.body_fields():
        properties[field.key] = {"type": "string", "contentMediaType": field.media_type}
    required = [f.key for f in (*cls.param_fields(), *cls.body_fields()) if f.required]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def openapi(cls: type[WrapperBase]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the served wrapper."""
    components = {
        "Request": _component(request_schema(cls)),
        "RequestForm": form_schema(cls),
        "Response": _component(response_schema(cls)),
        "Error": _component(error_schema()),
    }
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": "#/components/schemas/Request"}},
        "multipart/form-data": {
            "schema": {"$ref": "#/components/schemas/RequestForm"},
            "encoding": {f.key: {"contentType": f.media_type} for f in cls.body_fields()},
        },
    }
    query: list[dict[str, Any]] = []
    if len(cls.body_fields()) == 1:
        (body,) = cls.body_fields()
        content[body.media_type] = {
            "schema": {"type": "string", "contentMediaType": body.media_type}
        }
        query = [
            {
                "name": f.key,
                "in": "query",
                "required": False,
                "schema": f.json_schema(),
                "description": f"with a raw {body.media_type} body only",
            }
            for f in cls.param_fields()
        ]
    infer: dict[str, Any] = {
        "operationId": "infer",
        "summary": f"Run {cls.service_name()} once",
        "requestBody": {"required": True, "content": content},
        "responses": {
            "200": _json_response("the wrapper's response", "Response"),
            "400": _json_response("the request breaks a field declaration", "Error"),
            "413": _json_response("the body is larger than the server accepts", "Error"),
            "429": _json_response("too many requests waiting; retry after Retry-After", "Error"),
            "500": _json_response("the wrapper returned an error code or raised", "Error"),
        },
    }
    if query:
        infer["parameters"] = query
    return {
        "openapi": "3.1.0",
        "info": {
            "title": cls.service_name(),
            "version": str(cls.version),
            "description": (cls.__doc__ or "").strip().splitlines()[0]
            if cls.__doc__
            else f"{cls.service_name()}, served by actorflow",
        },
        "paths": {
            INFER_PATH: {"post": infer},
            SCHEMA_PATH: {
                "get": {
                    "operationId": "schema",
                    "summary": "This document",
                    "responses": {"200": _any_json("the OpenAPI document")},
                }
            },
            JSONSCHEMA_PATH: {
                "get": {
                    "operationId": "jsonschema",
                    "summary": "The request, response and error JSON Schemas",
                    "responses": {"200": _any_json("the schemas")},
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text exposition format"}},
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness",
                    "responses": {"200": _any_json("alive")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness (init done)",
                    "responses": {"200": _any_json("ready"), "503": _any_json("not ready")},
                }
            },
        },
        "components": {"schemas": components},
    }


def wrapper_schema(cls: type[WrapperBase]) -> dict[str, Any]:
    """Everything ``WrapperBase.schema()`` returns."""
    return {
        "request": request_schema(cls),
        "response": response_schema(cls),
        "error": error_schema(),
        "openapi": openapi(cls),
    }


def _item_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "type": {"enum": sorted(set(TYPE_NAMES.values()))},
            "status": {"type": "integer", "minimum": 0, "maximum": 3},
            "len": {"type": "integer", "minimum": 0},
            "encoding": {"enum": ["utf8", "base64", "json"]},
            "data": {},
        },
        "required": ["type", "status", "len", "encoding", "data"],
    }


def _component(schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    schema.pop("$schema", None)
    return schema


def _json_response(description: str, name: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
    }


def _any_json(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
