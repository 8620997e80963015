"""The ModelBox form: TOML or JSON holding a graphviz DOT ``graphconf``.

::

    [driver]
    dir = ["units"]                  # directories scanned for Python flowunit modules
    [graph]
    format = "graphviz"
    graphconf = '''digraph demo {
      input[type=input]
      process[flowunit=process, factor=2]
      output[type=output]
      input -> process -> output
    }'''

DOT is parsed with pydot (a maintained parser, not a hand-written one). Node and edge
attributes become the dict form of ``actorflow.graph._dict``; positions inside the
DOT text are mapped back to the file, so messages name ``file:line:column``.
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from actorflow.errors import GraphSyntaxError, GraphValidationError
from actorflow.graph._dict import graph_from_dict
from actorflow.graph._formats._common import (
    MAX_NODES,
    check_depth,
    depth_error,
    describe,
    position,
    typed_value,
)
from actorflow.graph._model import Graph, Location
from actorflow.graph._validate import suggest

TOP_LEVEL_KEYS = ("driver", "graph", "flow", "profile", "log")
"""Sections a ModelBox file may have; ``flow``, ``profile`` and ``log`` are ignored."""
EDGE_ATTRIBUTES = ("policy", "queue_size")
"""Edge attributes the runtime reads."""
COSMETIC_NODE_ATTRIBUTES = frozenset(
    {
        "shape",
        "color",
        "style",
        "fillcolor",
        "fontcolor",
        "fontname",
        "fontsize",
        "xlabel",
        "tooltip",
        "penwidth",
    }
)
"""DOT drawing attributes: dropped, never handed to a unit."""
COSMETIC_EDGE_ATTRIBUTES = frozenset(
    {
        "label",
        "color",
        "style",
        "arrowhead",
        "arrowtail",
        "penwidth",
        "weight",
        "constraint",
        "dir",
        "fontcolor",
        "fontname",
        "fontsize",
        "xlabel",
        "tooltip",
        "headlabel",
        "taillabel",
    }
)
"""DOT drawing attributes of edges: ignored."""
_DOT_DEFAULTS = frozenset({"node", "edge", "graph"})
_ESCAPE = re.compile(r'\\(["\\])')
_PARSE_LOCK = threading.Lock()  # pydot's pyparsing grammar is not thread-safe


def load_modelbox(
    doc: Mapping[str, Any], *, text: str, path: str, base_dir: Path, name: str | None
) -> Graph:
    """Compile a parsed ModelBox document (TOML or JSON) into a ``Graph``.

    Raises:
        GraphSyntaxError: the document or its DOT text cannot be parsed.
        GraphValidationError: values are wrong; every problem is listed.
    """
    problems: list[str] = []
    problems.extend(
        f"unknown section {key!r}{_at(text, _section_pattern(key), path)}"
        f"{suggest(key, TOP_LEVEL_KEYS)}; a ModelBox file has: {', '.join(TOP_LEVEL_KEYS)}"
        for key in doc
        if key not in TOP_LEVEL_KEYS
    )
    graph_section = doc.get("graph")
    if not isinstance(graph_section, Mapping):
        msg = f"[graph] must be a table with 'graphconf', got {describe(graph_section)}"
        raise GraphSyntaxError(msg, path=path)
    fmt = graph_section.get("format", "graphviz")
    if fmt != "graphviz":
        problems.append(f"[graph] format must be 'graphviz', got {fmt!r}")
    dot_text = _graphconf(graph_section.get("graphconf"), path)
    origin = _DotOrigin(text, dot_text, path)
    dot = parse_dot(dot_text, origin)
    compiled, locations = _compile(dot, origin, problems)
    compiled["name"] = name or _dot_name(dot) or _flow_name(doc) or Path(path).stem or "graph"
    driver = doc.get("driver")
    if driver is None:  # a bare DOT file, as `actorflow graph --format dot` writes one
        driver = _dot_driver(dot)
    compiled["driver"] = {"dir": driver_dirs(driver, problems)}
    check_depth(compiled, path)
    try:
        graph = graph_from_dict(compiled, base_dir=base_dir, source=path, locations=locations)
    except GraphValidationError as exc:
        raise GraphValidationError([*problems, *exc.problems], source=path) from None
    if problems:
        raise GraphValidationError(problems, source=path)
    return graph


def parse_dot(dot_text: str, origin: _DotOrigin | None = None) -> Any:
    """Parse one DOT ``digraph`` with pydot; return the ``pydot.Dot``.

    Raises:
        GraphSyntaxError: the DOT text is invalid, not one digraph, or nested too deeply.
    """
    import pyparsing  # pydot's parser loads only for DOT documents

    with warnings.catch_warnings():
        # pydot 4 builds its grammar with pyparsing's deprecated camelCase names
        warnings.simplefilter("ignore", DeprecationWarning)
        from pydot.dot_parser import GraphParser

    origin = origin or _DotOrigin("", dot_text, "<string>")
    try:
        with _PARSE_LOCK:
            graphs = list(GraphParser.parser.parse_string(dot_text, parse_all=True))
    except pyparsing.ParseBaseException as exc:
        where = origin.location(exc.loc)
        msg = f"graphconf is not valid DOT: {exc.msg}"
        raise GraphSyntaxError(msg, path=where.path, line=where.line, column=where.column) from None
    except RecursionError:
        raise depth_error(origin.path) from None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        # pydot builds objects in parse actions: Node(name, obj_dict, **attrs) and
        # Edge(src, dst, obj_dict, **attrs) cannot take attributes with those names.
        reserved = re.search(r"argument '(\w+)'", str(exc))
        word = reserved.group(1) if reserved else ""
        found = origin.find(rf"\b{re.escape(word)}\s*=") if word else None
        where = found or origin.location(0)
        msg = (
            f"attribute {word!r} is reserved by the DOT parser; rename it"
            if word
            else f"graphconf cannot be read as DOT: {exc}"
        )
        raise GraphSyntaxError(msg, path=where.path, line=where.line, column=where.column) from None
    if len(graphs) != 1:
        msg = f"graphconf must hold exactly one digraph, found {len(graphs)}"
        raise GraphSyntaxError(msg, path=origin.path)
    dot = graphs[0]
    if dot.get_type() != "digraph":
        msg = f"graphconf must be a 'digraph' (edges 'a -> b'), got {dot.get_type()!r}"
        raise GraphSyntaxError(msg, path=origin.path, line=origin.location(0).line)
    return dot


def unquote(text: str) -> str:
    """Strip DOT double quotes (and their escapes) from an id or value."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return _ESCAPE.sub(r"\1", text[1:-1])
    return text


class _DotOrigin:
    """Maps offsets in the DOT text to positions in the file that held it."""

    def __init__(self, file_text: str, dot_text: str, path: str) -> None:
        self.path, self.dot = path, dot_text
        self._file = file_text
        self._start = file_text.find(dot_text) if dot_text and file_text else -1
        self._escaped = False
        if self._start < 0 and dot_text:
            encoded = json.dumps(dot_text)[1:-1]  # a JSON string holds it with escapes
            self._start = file_text.find(encoded)
            self._escaped = self._start >= 0
        if self._start < 0:
            key = file_text.find("graphconf")
            self._key = position(file_text, key) if key >= 0 else None

    def location(self, offset: int) -> Location:
        if self._start < 0:
            return Location(self.path, *(self._key or (None, None)))
        if self._escaped:
            offset = len(json.dumps(self.dot[:offset])) - 2
        return Location(self.path, *position(self._file, self._start + offset))

    def find(self, pattern: str) -> Location | None:
        match = re.compile(pattern).search(self.dot)
        return self.location(match.start()) if match else None


def _graphconf(value: object, path: str) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    if not isinstance(value, str) or not value.strip():
        msg = (
            "[graph] graphconf must be the DOT text of a digraph, as in "
            f"graphconf = '''digraph demo {{ ... }}''', got {describe(value)}"
        )
        raise GraphSyntaxError(msg, path=path)
    return value


def driver_dirs(driver: object, problems: list[str]) -> list[str]:
    """Read ``[driver] dir`` (a string or a list of strings), reporting a wrong shape."""
    if driver is None:
        return []
    if not isinstance(driver, Mapping):
        problems.append(f"[driver] must be a table with 'dir', got {describe(driver)}")
        return []
    problems.extend(
        f"[driver] has unknown key {key!r}; it takes 'dir' (a directory or a list of "
        "directories of Python flowunit modules)"
        for key in driver
        if key not in ("dir", "skip-default")
    )
    dirs = driver.get("dir", [])
    if isinstance(dirs, str):
        dirs = [dirs]
    if not isinstance(dirs, list) or not all(isinstance(d, str) and d for d in dirs):
        problems.append(f"[driver] dir must be a directory or a list of directories, got {dirs!r}")
        return []
    return list(dirs)


DOT_DRIVER_ATTRIBUTE = "actorflow_driver_dir"
"""Graph attribute of a bare DOT file: its driver dirs, as a JSON list of paths."""


def _dot_driver(dot: Any) -> dict[str, Any] | None:
    raw = dot.get_attributes().get(DOT_DRIVER_ATTRIBUTE)
    if raw is None:
        return None
    text = unquote(str(raw))
    try:
        dirs = json.loads(text)
    except ValueError:
        dirs = text
    return {"dir": dirs}


def _section_pattern(key: str) -> str:
    return r'(?m)^\s*\[?\s*"?' + re.escape(key) + '"?'


def _at(text: str, pattern: str, path: str) -> str:
    """`` (file:line:column)`` of the first match of ``pattern`` in ``text``, or ``""``."""
    match = re.search(pattern, text)
    if match is None:
        return ""
    line, column = position(text, match.start())
    return f" ({Location(path, line, column)})"


def _dot_name(dot: Any) -> str:
    return unquote(str(dot.get_name() or "")).strip()


def _flow_name(doc: Mapping[str, Any]) -> str:
    flow = doc.get("flow")
    return str(flow.get("name", "")) if isinstance(flow, Mapping) else ""


def _compile(
    dot: Any, origin: _DotOrigin, problems: list[str]
) -> tuple[dict[str, Any], dict[str, Location]]:
    nodes: dict[str, dict[str, Any]] = {}
    locations: dict[str, Location] = {}
    edges: list[dict[str, Any]] = []
    declared: set[str] = set()
    for graph in _walk(dot):
        for node in graph.get_nodes():
            node_id = unquote(node.get_name())
            if node_id in _DOT_DEFAULTS:
                continue
            attrs = nodes.setdefault(node_id, {})
            for key, raw in node.get_attributes().items():
                if key not in COSMETIC_NODE_ATTRIBUTES:
                    attrs[key] = typed_value(unquote(str(raw)))
            if node_id not in declared:
                declared.add(node_id)
                loc = origin.find(_node_pattern(node_id)) or origin.find(_id_pattern(node_id))
                if loc is not None:
                    locations[node_id] = loc
        for edge in graph.get_edges():
            edges.extend(_edges(edge, origin, nodes, locations, problems))
    if len(nodes) > MAX_NODES:
        problems.append(f"graph has {len(nodes)} nodes, over the limit of {MAX_NODES}")
    return {"nodes": nodes, "edges": edges}, locations


def _walk(graph: Any) -> Iterator[Any]:
    stack = [graph]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.get_subgraphs())


def _edges(
    edge: Any,
    origin: _DotOrigin,
    nodes: dict[str, dict[str, Any]],
    locations: dict[str, Location],
    problems: list[str],
) -> list[dict[str, Any]]:
    attrs: dict[str, Any] = {}
    for key, raw in edge.get_attributes().items():
        if key in EDGE_ATTRIBUTES:
            attrs[key] = typed_value(unquote(str(raw)))
        elif key not in COSMETIC_EDGE_ATTRIBUTES:
            found = origin.find(rf"\b{re.escape(key)}\s*=")
            problems.append(
                f"edge {_endpoint_text(edge.get_source())} -> "
                f"{_endpoint_text(edge.get_destination())}"
                f"{f' ({found})' if found else ''}: unknown attribute "
                f"{key!r}{suggest(key, EDGE_ATTRIBUTES)}; edges take "
                f"{', '.join(EDGE_ATTRIBUTES)}"
            )
    out = []
    for src in _endpoints(edge.get_source()):
        for dst in _endpoints(edge.get_destination()):
            key = f"{src} -> {dst}"
            loc = origin.find(_edge_pattern(src, dst))
            if loc is not None:
                locations.setdefault(key, loc)
            out.append({"from": src, "to": dst, **attrs})
    return out


def _endpoints(end: object) -> list[str]:
    if isinstance(end, Mapping):  # `a -> {b c}`: pydot hands over the anonymous subgraph
        return [unquote(n) for n in end.get("nodes", {})]
    parts = [unquote(p) for p in str(end).split(":")]
    return [":".join(parts[:2])]  # a third part is a compass point: drawing only


def _endpoint_text(end: object) -> str:
    return "{" + " ".join(_endpoints(end)) + "}" if isinstance(end, Mapping) else str(end)


def _id_pattern(node_id: str) -> str:
    return rf'(?<![\w"])(?:"{re.escape(node_id)}"|{re.escape(node_id)}(?![\w]))'


def _node_pattern(node_id: str) -> str:
    return _id_pattern(node_id) + r"\s*\["


def _edge_pattern(src: str, dst: str) -> str:
    def end(text: str) -> str:
        node, _, port = text.partition(":")
        return _id_pattern(node) + (rf'\s*:\s*"?{re.escape(port)}"?' if port else "")

    return end(src) + r"(?:\s*:\s*\w+)?\s*->\s*" + end(dst)
