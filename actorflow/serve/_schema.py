"""JSON Schema and OpenAPI descriptions generated from a graph's input and output ports.

The payload type of an external ``input`` node is the declared type of the unit input
it feeds; the type of an ``output`` node is the declared type of the unit output that
feeds it. Types map to JSON Schema (draft 2020-12, which OpenAPI 3.1 uses):
``np.ndarray`` is an image (base64 string, or a ``{"base64", "dtype", "shape"}`` tensor),
``bytes`` a base64 string, Python scalars their JSON types, anything else is open.
"""

from __future__ import annotations

from typing import Any

from actorflow.graph import Graph
from actorflow.serve._codec import port_kind
from actorflow.unit import Registry, default_registry

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
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text exposition"}},
                }
            },
            "/healthz": {"get": {"responses": {"200": {"description": "alive"}}}},
            "/readyz": {
                "get": {
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    }
                }
            },
        },
        "components": {"schemas": {"InferRequest": req, "InferResponse": resp, "Problem": problem}},
    }
