"""The one OpenAPI generator of ``actorflow serve``: graphs and wrappers.

A graph is described from its ports; a wrapper (served as a one-node graph) from its
field declarations (``wrapper_openapi``). Both documents share the paths every served
app has (``/v1/schema``, ``/metrics``, ``/healthz``, ``/readyz``).

Graphs:

The payload type of an external ``input`` node is the declared type of the unit input
it feeds; the type of an ``output`` node is the declared type of the unit output that
feeds it. Types map to JSON Schema (draft 2020-12, which OpenAPI 3.1 uses):
``np.ndarray`` is an image (base64 string, or a ``{"base64", "dtype", "shape"}`` tensor),
``bytes`` a base64 string, Python scalars their JSON types, anything else is open.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from actorflow.graph import Graph
from actorflow.serve._codec import port_kind
from actorflow.unit import Registry, default_registry
from actorflow.wrapper._dto import TYPE_NAMES

if TYPE_CHECKING:
    from actorflow.wrapper._base import WrapperBase

DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect of every generated schema (OpenAPI 3.1's default)."""

_SCALARS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    dict: {"type": "object"},
    list: {"type": "array"},
}

_TENSOR = {
    "type": "object",
    "properties": {
        "base64": {"type": "string", "contentEncoding": "base64"},
        "dtype": {"type": "string", "examples": ["float32", "uint8"]},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
    },
    "required": ["base64", "dtype", "shape"],
}


_IMAGE_OUT: dict[str, Any] = {
    "type": "object",
    "description": "an image, encoded (PNG by default; JPEG with ?images=jpeg or "
    "Accept: image/jpeg)",
    "properties": {
        "format": {"enum": ["png", "jpeg"]},
        "width": {"type": "integer"},
        "height": {"type": "integer"},
        "base64": {"type": "string", "contentEncoding": "base64"},
    },
    "required": ["format", "width", "height", "base64"],
}
_DETECTIONS: dict[str, Any] = {
    "description": "one record per object (?detections=columns: column arrays instead)",
    "anyOf": [
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "box": {"type": "array", "items": {"type": "number"}, "minItems": 4},
                    "score": {"type": "number"},
                    "class_id": {"type": "integer"},
                },
                "required": ["box", "score", "class_id"],
                "additionalProperties": True,
            },
        },
        {"type": "object", "required": ["xyxy", "confidence", "class_id"]},
    ],
}


def type_schema(port_type: Any, *, direction: str) -> dict[str, Any]:
    """JSON Schema for one payload type (``direction`` is ``input`` or ``output``)."""
    kind = port_kind(port_type)
    if getattr(port_type, "__name__", "") == "Detections" and direction == "output":
        return _DETECTIONS
    if kind == "image":
        if direction == "output":
            return {"anyOf": [_IMAGE_OUT, {"type": "array", "description": "?images=list"}]}
        encoded = {
            "type": "string",
            "contentEncoding": "base64",
            "contentMediaType": "image/*",
            "description": "an encoded image (PNG, JPEG)",
        }
        return {
            "anyOf": [
                encoded,
                {"type": "object", "properties": {"base64": encoded}, "required": ["base64"]},
                _TENSOR,
                {"type": "array", "description": "nested lists of numbers: a float32 tensor"},
            ]
        }
    if kind == "bytes":
        return {"type": "string", "contentEncoding": "base64"}
    return dict(_SCALARS.get(port_type, {}))


def port_types(
    graph: Graph, registry: Registry | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``({input: type}, {output: type})`` for the graph's external ports."""
    registry = registry or default_registry
    inputs: dict[str, Any] = dict.fromkeys(graph.inputs, object)
    outputs: dict[str, Any] = dict.fromkeys(graph.outputs, object)

    def unit_port(node_id: str, port: str | None, side: str) -> Any:
        node = graph.node(node_id)
        cls = type(node.instance) if node.instance is not None else None
        if cls is None and node.unit:
            try:
                cls = registry.get(node.unit)
            except LookupError:
                return object
        ports = getattr(cls, side, ()) if cls is not None else ()
        for p in ports:
            if port is None or p.name == port:
                return p.type
        return object

    for edge in graph.edges:
        if edge.src.node in inputs and graph.node(edge.dst.node).kind == "unit":
            inputs[edge.src.node] = unit_port(edge.dst.node, edge.dst.port, "inputs")
        if edge.dst.node in outputs and graph.node(edge.src.node).kind == "unit":
            outputs[edge.dst.node] = unit_port(edge.src.node, edge.src.port, "outputs")
    return inputs, outputs


def request_schema(inputs: dict[str, Any]) -> dict[str, Any]:
    """Schema of a ``POST /v1/infer`` JSON body."""
    group = {
        "type": "object",
        "properties": {p: type_schema(t, direction="input") for p, t in inputs.items()},
        "additionalProperties": False,
        "minProperties": 1,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "InferRequest",
        "type": "object",
        "properties": {
            "inputs": {"oneOf": [group, {"type": "array", "items": group, "minItems": 1}]}
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }


def response_schema(outputs: dict[str, Any]) -> dict[str, Any]:
    """Schema of a ``POST /v1/infer`` response."""
    error = {
        "type": "object",
        "properties": {
            "port": {"type": "string"},
            "seq": {"type": "integer"},
            "lineage": {"type": "array", "items": {"type": "integer"}},
            "node": {"type": ["string", "null"]},
            "error": {"type": "string"},
        },
        "required": ["port", "seq", "error"],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "InferResponse",
        "type": "object",
        "properties": {
            "outputs": {
                "type": "object",
                "properties": {
                    p: {"type": "array", "items": type_schema(t, direction="output")}
                    for p, t in outputs.items()
                },
                "additionalProperties": False,
            },
            "errors": {"type": "array", "items": error},
        },
        "required": ["outputs", "errors"],
    }


def openapi(graph: Graph, registry: Registry | None = None) -> dict[str, Any]:
    """An OpenAPI 3.1 document for the server of ``graph``."""
    inputs, outputs = port_types(graph, registry)
    req, resp = request_schema(inputs), response_schema(outputs)
    multipart = {
        "type": "object",
        "properties": {
            p: (
                {"type": "string", "format": "binary"}
                if port_kind(t) != "json"
                else type_schema(t, direction="input")
            )
            for p, t in inputs.items()
        },
    }
    problem = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    problem_ref = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"actorflow: {graph.name}", "version": "1"},
        "paths": {
            "/v1/infer": {
                "post": {
                    "summary": "Run the graph on one request (one session)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/InferRequest"}
                            },
                            "multipart/form-data": {"schema": multipart},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the session's results",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/InferResponse"}
                                }
                            },
                        },
                        "400": {"description": "malformed request", **problem_ref},
                        "413": {"description": "body larger than the server's limit"},
                        "429": {
                            "description": "overloaded; retry after the Retry-After header",
                            **problem_ref,
                        },
                        "503": {"description": "shutting down", **problem_ref},
                    },
                }
            },
            "/v1/stream": {
                "get": {
                    "summary": "WebSocket: frames in, results out, one session per connection",
                    "responses": {"101": {"description": "switching protocols"}},
                }
            },
            **common_paths(),
        },
        "components": {"schemas": {"InferRequest": req, "InferResponse": resp, "Problem": problem}},
    }


def common_paths() -> dict[str, Any]:
    """The paths every served app has, whatever it serves."""
    return {
        "/v1/schema": {
            "get": {
                "operationId": "schema",
                "summary": "This document",
                "responses": {"200": _any_json("the OpenAPI document")},
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
                "summary": "Liveness: 200 while the flow runs",
                "responses": {"200": _any_json("alive"), "503": _any_json("flow down")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness (the flow runs: every unit opened, wrapperInit done)",
                "responses": {"200": _any_json("ready"), "503": _any_json("not ready")},
            }
        },
    }


def wrapper_request_schema(cls: type[WrapperBase]) -> dict[str, Any]:
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


def wrapper_response_schema(cls: type[WrapperBase]) -> dict[str, Any]:
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
                "overloaded, not_running, shutting_down, wrapper_error or unit_failed "
                "(docs/reference/errors.md)",
            },
        },
        "required": ["code", "message", "error", "reason", "status"],
    }


def wrapper_form_schema(cls: type[WrapperBase]) -> dict[str, Any]:
    """The ``multipart/form-data`` form of a request."""
    properties: dict[str, Any] = {f.key: f.json_schema() for f in cls.param_fields()}
    for field in cls.body_fields():
        properties[field.key] = {"type": "string", "contentMediaType": field.media_type}
    required = [f.key for f in (*cls.param_fields(), *cls.body_fields()) if f.required]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def wrapper_openapi(cls: type[WrapperBase]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the served wrapper."""
    components = {
        "Request": _component(wrapper_request_schema(cls)),
        "RequestForm": wrapper_form_schema(cls),
        "Response": _component(wrapper_response_schema(cls)),
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
            "/v1/infer": {"post": infer},
            "/v1/jsonschema": {
                "get": {
                    "operationId": "jsonschema",
                    "summary": "The request, response and error JSON Schemas",
                    "responses": {"200": _any_json("the schemas")},
                }
            },
            **common_paths(),
        },
        "components": {"schemas": components},
    }


def wrapper_schema(cls: type[WrapperBase]) -> dict[str, Any]:
    """Everything ``WrapperBase.schema()`` returns."""
    return {
        "request": wrapper_request_schema(cls),
        "response": wrapper_response_schema(cls),
        "error": error_schema(),
        "openapi": wrapper_openapi(cls),
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
