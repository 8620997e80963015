"""``load_graph``: one entry point for every graph form.

A mapping is the dict form; a path or text is parsed by the format modules in
``_formats`` (chosen by ``format``, or by suffix and content when ``format="auto"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from actorflow.graph._dict import graph_from_dict
from actorflow.graph._model import Graph

Format = Literal["auto", "toml", "json", "dict"]
"""Graph document formats accepted by ``load_graph``."""


def load_graph(
    source: str | Path | Mapping[str, Any],
    *,
    format: Format = "auto",
    name: str | None = None,
    allow_custom_code: bool | None = None,
) -> Graph:
    """Load a graph from a dict, a file path, or document text.

    Args:
        source: a mapping (the dict form), a ``Path`` or path string to a graph file,
            or the text of a document (then ``format`` must say which, or be detectable).
        format: ``auto`` picks by suffix, then by content.
        name: the graph's name when loading text.
        allow_custom_code: let workflow dynamic blocks run Python code. ``None`` reads
            the environment variable ``ACTORFLOW_ALLOW_CUSTOM_CODE``.

    Raises:
        GraphSyntaxError: the document cannot be parsed (file, line and column named).
        GraphValidationError: the document's values are wrong.
    """
    if isinstance(source, Mapping):
        return graph_from_dict(source, source=name or "<dict>")
    from actorflow.graph import _formats

    return _formats.load(source, format=format, name=name, allow_custom_code=allow_custom_code)
