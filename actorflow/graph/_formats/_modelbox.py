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

DOT is parsed by ``_dot`` in linear time (pydot took 26 s for 10,000 nodes). Node and edge
attributes become the dict form of ``actorflow.graph._dict``; positions inside the
DOT text are mapped back to the file, so messages name ``file:line:column``.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actorflow.errors import GraphSyntaxError, GraphValidationError
from actorflow.graph._dict import graph_from_dict
from actorflow.graph._formats._common import (
    MAX_NODES,
    check_depth,
    describe,
    position,
    typed_value,
)
from actorflow.graph._formats._dot import DotGraph, DotSyntaxError, parse
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
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f\x7f-\U0010ffff]')
"""Characters ``json.dumps`` writes as more than one character."""


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
    compiled["name"] = name or dot.name.strip() or _flow_name(doc) or Path(path).stem or "graph"
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


def parse_dot(dot_text: str, origin: _DotOrigin | None = None) -> DotGraph:
    """Parse one DOT ``digraph`` (``_dot``, linear time).

    Raises:
        GraphSyntaxError: the DOT text is invalid, not one digraph, nested too deeply,
            or declares a node twice; it names ``file:line:column``.
    """
    origin = origin or _DotOrigin("", dot_text, "<string>")
    try:
        dot = parse(dot_text, max_nodes=MAX_NODES)
    except DotSyntaxError as exc:
        where = origin.location(exc.offset)
        msg = f"graphconf is not valid DOT: {exc}"
        if exc.first is not None:
            msg += f" (first declared at {origin.location(exc.first)})"
        raise GraphSyntaxError(msg, path=where.path, line=where.line, column=where.column) from None
    if dot.kind != "digraph":
        msg = f"graphconf must be a 'digraph' (edges 'a -> b'), got {dot.kind!r}"
        raise GraphSyntaxError(msg, path=origin.path, line=origin.location(0).line)
    return dot


class _DotOrigin:
    """Maps offsets in the DOT text to positions in the file that held it.

    The line starts of the file (and, for DOT held in a JSON string, where the escapes
    are) are indexed once, so each lookup costs a binary search, not a scan.
    """

    def __init__(self, file_text: str, dot_text: str, path: str) -> None:
        self.path, self.dot = path, dot_text
        self._file = file_text
        self._start = file_text.find(dot_text) if dot_text and file_text else -1
        self._escapes: tuple[list[int], list[int]] | None = None
        self._key: tuple[int, int] | None = None
        if self._start < 0 and dot_text:
            encoded = json.dumps(dot_text)[1:-1]  # a JSON string holds it with escapes
            self._start = file_text.find(encoded)
            if self._start >= 0:
                self._escapes = _escape_index(dot_text)
        if self._start < 0:
            key = file_text.find("graphconf")
            self._key = position(file_text, key) if key >= 0 else None
        self._lines = [0, *(m.end() for m in re.finditer("\n", file_text))]

    def location(self, offset: int) -> Location:
        if self._start < 0:
            return Location(self.path, *(self._key or (None, None)))
        if self._escapes is not None:
            after, extra = self._escapes
            i = bisect.bisect_right(after, offset) - 1
            offset += extra[i] if i >= 0 else 0
        absolute = self._start + offset
        line = bisect.bisect_right(self._lines, absolute)
        return Location(self.path, line, absolute - self._lines[line - 1] + 1)


def _escape_index(dot: str) -> tuple[list[int], list[int]]:
    """Offsets just past each character JSON escapes, and the extra characters so far."""
    after: list[int] = []
    extra: list[int] = []
    total = 0
    for match in _JSON_ESCAPED.finditer(dot):
        total += len(json.dumps(match.group())) - 3  # '"\\n"' is 4 characters: 1 extra
        after.append(match.end())
        extra.append(total)
    return after, extra


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


def _dot_driver(dot: DotGraph) -> dict[str, Any] | None:
    text = dot.attrs.get(DOT_DRIVER_ATTRIBUTE)
    if text is None:
        return None
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


def _flow_name(doc: Mapping[str, Any]) -> str:
    flow = doc.get("flow")
    return str(flow.get("name", "")) if isinstance(flow, Mapping) else ""


def _compile(
    dot: DotGraph, origin: _DotOrigin, problems: list[str]
) -> tuple[dict[str, Any], dict[str, Location]]:
    nodes: dict[str, dict[str, Any]] = {}
    locations: dict[str, Location] = {}
    for node in dot.nodes:
        attrs = nodes.setdefault(node.name, {})
        for key, raw in node.attrs.items():
            if key not in COSMETIC_NODE_ATTRIBUTES:
                attrs[key] = typed_value(raw)
        if node.attrs or node.name not in locations:
            locations[node.name] = origin.location(node.offset)
    edges: list[dict[str, Any]] = []
    for edge in dot.edges:
        attrs = {}
        for key, raw in edge.attrs.items():
            if key in EDGE_ATTRIBUTES:
                attrs[key] = typed_value(raw)
            elif key not in COSMETIC_EDGE_ATTRIBUTES:
                where = origin.location(edge.attr_offsets.get(key, edge.offset))
                problems.append(
                    f"edge {edge.source} -> {edge.target} ({where}): unknown attribute "
                    f"{key!r}{suggest(key, EDGE_ATTRIBUTES)}; edges take "
                    f"{', '.join(EDGE_ATTRIBUTES)}"
                )
        locations.setdefault(f"{edge.source} -> {edge.target}", origin.location(edge.offset))
        edges.append({"from": edge.source, "to": edge.target, **attrs})
    return {"nodes": nodes, "edges": edges}, locations
