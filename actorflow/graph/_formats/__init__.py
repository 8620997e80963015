"""Parsers for graph files; each compiles its document into the dict form."""

from __future__ import annotations

from pathlib import Path

from actorflow.errors import GraphSyntaxError
from actorflow.graph._model import Graph


def load(source: str | Path, *, format: str, name: str | None,
         allow_custom_code: bool | None) -> Graph:
    """Parse a graph file or document text (see ``actorflow.graph.load_graph``)."""
    msg = (f"cannot load {str(source)[:80]!r}: graph files (TOML/JSON) are not supported "
           "yet; pass the dict form")
    raise GraphSyntaxError(msg)
