"""Parsers for graph files; each compiles its document into the dict form.

Forms (chosen by ``format``, else by suffix, else by content):

* ModelBox: TOML or JSON with ``[graph] graphconf`` holding a DOT digraph (``_modelbox``);
* workflow JSON with ``steps`` and ``$``-selectors (``_workflow``);
* the dict form itself written as TOML or JSON (``nodes`` and ``edges``);
* a bare DOT ``digraph`` (``.dot`` / ``.gv``), as ``to_dot`` renders it.

Every document is size-checked before parsing and depth-checked after, so the only
errors that escape are ``GraphSyntaxError``, ``GraphValidationError`` and
``CustomCodeDisabled``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actorflow.errors import GraphError, GraphSyntaxError
from actorflow.graph._dict import graph_from_dict
from actorflow.graph._formats._common import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    check_depth,
    check_size,
    depth_error,
    describe,
    read_text,
)
from actorflow.graph._formats._modelbox import load_modelbox
from actorflow.graph._formats._render import to_dot, to_mermaid
from actorflow.graph._formats._workflow import custom_code_allowed, load_workflow
from actorflow.graph._model import Graph

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "FORMATS",
    "custom_code_allowed",
    "load",
    "load_document",
    "to_dot",
    "to_mermaid",
]

FORMATS = ("auto", "toml", "json", "dot")
"""Formats ``load`` accepts (``dict`` is handled by ``load_graph`` itself)."""
_SUFFIXES = {".toml": "toml", ".json": "json", ".dot": "dot", ".gv": "dot"}
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def load(
    source: str | Path,
    *,
    format: str = "auto",
    name: str | None = None,
    allow_custom_code: bool | None = None,
) -> Graph:
    """Parse a graph file or document text (see ``actorflow.graph.load_graph``).

    Raises:
        GraphSyntaxError: the document cannot be parsed or breaks a size/depth limit.
        GraphValidationError: values are wrong; every problem is listed.
        CustomCodeDisabled: a workflow carries code and custom code is not enabled.
    """
    fmt = format.lower().removeprefix("format_")
    if fmt not in FORMATS:
        msg = f"unknown graph format {format!r}; formats are: {', '.join(FORMATS)}"
        raise GraphSyntaxError(msg)
    if _is_path(source):
        path = Path(source)
        text = read_text(path)
        label, base_dir = str(path), path.resolve().parent
        if fmt == "auto":
            fmt = _SUFFIXES.get(path.suffix.lower(), "auto")
    else:
        text, label, base_dir = str(source), "<string>", Path.cwd()
        check_size(len(text.encode("utf-8", "surrogatepass")), label)
    if fmt == "auto":
        fmt = _sniff(text)
    if fmt == "dot":
        return load_modelbox(
            {"graph": {"graphconf": text}}, text=text, path=label, base_dir=base_dir, name=name
        )
    doc = _parse_toml(text, label) if fmt == "toml" else _parse_json(text, label)
    return load_document(
        doc,
        text=text,
        path=label,
        base_dir=base_dir,
        name=name,
        allow_custom_code=allow_custom_code,
    )


def load_document(
    doc: object,
    *,
    text: str = "",
    path: str = "<dict>",
    base_dir: Path | None = None,
    name: str | None = None,
    allow_custom_code: bool | None = None,
) -> Graph:
    """Compile an already parsed document of any form into a ``Graph``."""
    if not isinstance(doc, Mapping):
        msg = f"a graph document must be an object/table, got {describe(doc)}"
        raise GraphSyntaxError(msg, path=path)
    check_depth(doc, path)
    base = base_dir or Path.cwd()
    try:
        if "steps" in doc:
            return load_workflow(
                doc,
                text=text,
                path=path,
                base_dir=base,
                name=name,
                allow_custom_code=allow_custom_code,
            )
        if "graph" in doc:
            return load_modelbox(doc, text=text, path=path, base_dir=base, name=name)
        if "nodes" in doc:
            named = {**doc, "name": name or doc.get("name") or Path(path).stem or "graph"}
            return graph_from_dict(named, base_dir=base, source=path)
    except GraphError:
        raise
    except (RecursionError, MemoryError):
        raise depth_error(path) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a shape we missed
        msg = f"unexpected document shape: {type(exc).__name__}: {exc}"
        raise GraphSyntaxError(msg, path=path) from exc
    msg = (
        "not a graph document: expected a [graph] table with 'graphconf' (ModelBox), "
        "'steps' (workflow JSON), or 'nodes' and 'edges'"
    )
    raise GraphSyntaxError(msg, path=path)


def _is_path(source: str | Path) -> bool:
    if isinstance(source, Path):
        return True
    if "\n" in source or len(source) > 4096 or source.lstrip()[:1] in ("{", "[", "#"):
        return False
    stripped = source.strip()
    if stripped.startswith(("digraph", "strict", "graph ")):
        return False
    if Path(stripped).suffix.lower() in _SUFFIXES:
        return True
    try:
        if Path(stripped).is_file():
            return True
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False
    # One line with a path separator and nothing a document would hold: a missing file.
    return ("/" in stripped or "\\" in stripped) and not any(c in stripped for c in "=[{\"'")


def _sniff(text: str) -> str:
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("{"):
        return "json"
    if re.match(r"(strict\s+)?(di)?graph\b", head):
        return "dot"
    return "toml"


def _parse_toml(text: str, path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        line = int(match.group(1)) if match else None
        column = int(match.group(2)) if match else None
        message = _TOML_POSITION.sub("", message)
        msg = f"invalid TOML: {message}"
        raise GraphSyntaxError(msg, path=path, line=line, column=column) from None
    except (RecursionError, MemoryError):
        raise depth_error(path) from None


def _parse_json(text: str, path: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"invalid JSON: {exc.msg}"
        raise GraphSyntaxError(msg, path=path, line=exc.lineno, column=exc.colno) from None
    except (RecursionError, MemoryError):
        raise depth_error(path) from None
    except ValueError as exc:  # an integer of thousands of digits
        msg = f"invalid JSON: {exc}"
        raise GraphSyntaxError(msg, path=path) from None
