"""A DOT parser in linear time for the ``graphconf`` of ModelBox graph files.

pydot (a pyparsing grammar) took 2.6 ms per node: 26 s for a 10,000-node graph, inside
the documented ``MAX_NODES``. This parser reads the DOT language (graphviz's grammar:
``strict``, ``digraph``/``graph``, node, edge and attribute statements, ``ID = ID``,
subgraphs, edge chains, subgraph endpoints, ports, quoted strings with ``+``
concatenation, HTML strings, the three comment forms) with one compiled regex per
token and no backtracking, so its time grows linearly with the text (measured in
``benchmarks/loaders.py``). Every statement keeps the offset where it starts, so
callers can name ``file:line:column`` without searching the text again.

Guarantees: ``parse`` returns a ``DotGraph`` or raises ``DotSyntaxError`` (with the
offset of the offending token); never another exception, whatever the input.
Subgraph nesting is limited to ``MAX_NESTING``. A node may be declared with
attributes once (graphviz merges repeated statements silently, which hides typos and
copy-paste mistakes); a bare ``a`` only mentions it.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

MAX_NESTING = 64
"""Deepest nesting of subgraphs (``{ { ... } }``)."""

_TOKEN = re.compile(
    r"""
    (?P<space>(?:[ \t\r\n\f\v]++|//[^\n]*+|/\*(?:[^*]++|\*(?!/))*+\*/|(?<![^\n])\#[^\n]*+)++)
    |(?P<arrow>->|--)
    |(?P<punct>[{}\[\];,:=+])
    |(?P<id>[A-Za-z_\x80-\U0010ffff][A-Za-z_0-9\x80-\U0010ffff]*+)
    |(?P<number>-?(?:\.[0-9]++|[0-9]++(?:\.[0-9]*+)?))
    |(?P<string>"(?:[^"\\]++|\\.)*+")
    |(?P<html><)
    """,
    re.VERBOSE | re.DOTALL,
)
_UNESCAPE = re.compile(r'\\(["\\])|\\\r?\n')
_KEYWORDS = frozenset({"strict", "graph", "digraph", "subgraph", "node", "edge"})


class DotSyntaxError(ValueError):
    """The text is not DOT.

    ``offset`` is where the problem is; ``first``, for a duplicate, where the first
    occurrence was.
    """

    def __init__(self, message: str, offset: int, first: int | None = None) -> None:
        super().__init__(message)
        self.offset, self.first = offset, first


@dataclass
class DotNode:
    """One node statement: ``name [attrs]``."""

    name: str
    attrs: dict[str, str]
    offset: int


@dataclass
class DotEdge:
    """One edge of an edge statement (a chain ``a -> b -> c`` gives two).

    ``source``/``target`` are ``node`` or ``node:port`` (a compass point is dropped);
    ``attr_offsets`` says where each attribute's name starts.
    """

    source: str
    target: str
    attrs: dict[str, str]
    offset: int
    attr_offsets: dict[str, int] = field(default_factory=dict)


@dataclass
class DotGraph:
    """A parsed graph: ``kind`` is ``digraph`` or ``graph``."""

    kind: str
    name: str
    strict: bool
    nodes: list[DotNode]
    edges: list[DotEdge]
    attrs: dict[str, str]
    """Graph attributes (``key = value`` statements at the top level)."""


class _Token:
    """One token.

    ``kind`` is ``id`` (names, numbers and strings alike), ``arrow``, ``end``, or the
    punctuation character itself; ``word`` is the keyword an unquoted id spells.
    """

    __slots__ = ("kind", "offset", "quoted", "text", "word")

    def __init__(self, kind: str, text: str, offset: int, quoted: bool = False) -> None:
        self.kind, self.text, self.offset, self.quoted = kind, text, offset, quoted
        lowered = text.lower() if kind == "id" and not quoted else ""
        self.word = lowered if lowered in _KEYWORDS else None


def _unquote(raw: str) -> str:
    return _UNESCAPE.sub(lambda m: m.group(1) or "", raw[1:-1])


def _html(text: str, start: int) -> tuple[str, int]:
    """An HTML string ``<...>`` (nested angle brackets) starting at ``start``."""
    depth, i = 0, start
    while True:
        lt, gt = text.find("<", i), text.find(">", i)
        if gt < 0:
            msg = "unterminated HTML string (missing '>')"
            raise DotSyntaxError(msg, start)
        if 0 <= lt < gt:
            depth, i = depth + 1, lt + 1
            continue
        depth, i = depth - 1, gt + 1
        if depth == 0:
            return text[start:i], i


def _stray(text: str, pos: int) -> DotSyntaxError:
    if text.startswith("/*", pos):
        return DotSyntaxError("unterminated comment", pos)
    what = "unterminated string" if text[pos] == '"' else f"unexpected {text[pos]!r}"
    return DotSyntaxError(what, pos)


def tokens(text: str) -> list[_Token]:
    """Split ``text`` into tokens (comments and blanks dropped), in one pass.

    The list ends with a few ``end`` tokens, so that looking ahead never runs off it.
    """
    out: list[_Token] = []
    append = out.append
    pos = 0
    while pos < len(text):
        for m in _TOKEN.finditer(text, pos):
            start = m.start()
            if start != pos:  # finditer skipped what no token matches
                raise _stray(text, pos)
            kind = m.lastgroup
            pos = m.end()
            if kind == "space":
                continue
            if kind == "id" or kind == "number":
                append(_Token("id", m.group(), start))
            elif kind == "punct":
                append(_Token(m.group(), m.group(), start))
            elif kind == "arrow":
                append(_Token("arrow", m.group(), start))
            elif kind == "string":
                append(_Token("id", _unquote(m.group()), start, quoted=True))
            else:  # html: find its end by hand, then scan on from there
                raw, pos = _html(text, start)
                append(_Token("id", raw, start))
                break
        else:
            if pos < len(text):
                raise _stray(text, pos)
    out.extend(_Token("end", "", len(text)) for _ in range(4))
    return out


class _Parser:
    def __init__(self, text: str, max_nodes: int | None) -> None:
        self.max_nodes = max_nodes
        self.names: set[str] = set()
        self.tokens = tokens(text)
        self.last = len(self.tokens) - 4
        self.i = 0
        self.nodes: list[DotNode] = []
        self.edges: list[DotEdge] = []
        self.declared: dict[str, int] = {}
        self.graph_attrs: dict[str, str] = {}
        self.arrow = "->"

    # -- token helpers -------------------------------------------------------------

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, self.last)]

    def take(self) -> _Token:
        token = self.peek()
        self.i += 1
        return token

    def is_punct(self, text: str, ahead: int = 0) -> bool:
        return self.tokens[min(self.i + ahead, self.last)].kind == text

    def keyword(self, token: _Token) -> str | None:
        return token.word

    def expect(self, text: str, what: str) -> _Token:
        token = self.peek()
        if token.kind == text:
            return self.take()
        msg = f"expected {what}, found {_show(token)}"
        raise DotSyntaxError(msg, token.offset)

    def identifier(self, what: str) -> _Token:
        token = self.peek()
        if token.kind != "id" or token.word is not None:
            msg = f"expected {what}, found {_show(token)}"
            raise DotSyntaxError(msg, token.offset)
        self.i += 1
        while self.is_punct("+") and token.quoted:  # "a" + "b": concatenation
            self.i += 1
            more = self.peek()
            if more.kind != "id" or not more.quoted:
                msg = f"expected a quoted string after '+', found {_show(more)}"
                raise DotSyntaxError(msg, more.offset)
            self.i += 1
            token = _Token("id", token.text + more.text, token.offset, quoted=True)
        return token

    # -- grammar ---------------------------------------------------------------------

    def graph(self) -> DotGraph:
        strict = self.keyword(self.peek()) == "strict"
        if strict:
            self.i += 1
        head = self.peek()
        kind = self.keyword(head)
        if kind not in ("graph", "digraph"):
            msg = f"expected 'digraph' (or 'graph'), found {_show(head)}"
            raise DotSyntaxError(msg, head.offset)
        self.i += 1
        self.arrow = "->" if kind == "digraph" else "--"
        name = ""
        if self.peek().kind == "id" and self.keyword(self.peek()) is None:
            name = self.identifier("a graph name").text
        self.expect("{", "'{' to open the graph")
        self.statements(1)
        self.expect("}", "'}' to close the graph")
        trailing = self.peek()
        if trailing.kind != "end":
            msg = f"graphconf must hold exactly one digraph; found {_show(trailing)} after it"
            raise DotSyntaxError(msg, trailing.offset)
        return DotGraph(kind, name, strict, self.nodes, self.edges, self.graph_attrs)

    def statements(self, depth: int) -> list[str]:
        """Statements up to the closing ``}``; returns the node ids they mention."""
        mentioned: list[str] = []
        while not self.is_punct("}"):
            if self.peek().kind == "end":
                msg = "missing '}' at the end of the text"
                raise DotSyntaxError(msg, self.peek().offset)
            mentioned.extend(self.statement(depth))
            if self.is_punct(";"):
                self.i += 1
        return mentioned

    def statement(self, depth: int) -> list[str]:
        token = self.peek()
        word = self.keyword(token)
        if word in ("node", "edge", "graph") and self.is_punct("[", 1):
            self.i += 1
            self.attributes()  # defaults for later statements: drawing only, ignored
            return []
        if word is None and token.kind == "id" and self.is_punct("=", 1):
            self.i += 2
            value = self.identifier("a value after '='").text
            if depth == 1:  # a graph attribute (subgraphs' are drawing only)
                self.graph_attrs[token.text] = value
            return []
        if word == "subgraph" or self.is_punct("{"):
            group = self.subgraph(depth)
            if self.peek().kind == "arrow":
                return group + self.edge_chain([(token.offset, group)], depth)
            return group
        if token.kind != "id" or word is not None:
            msg = f"expected a statement (node, edge or attribute), found {_show(token)}"
            raise DotSyntaxError(msg, token.offset)
        endpoint = self.endpoint()
        if self.peek().kind == "arrow":
            chain = self.edge_chain([(token.offset, [endpoint])], depth)
            return [endpoint.partition(":")[0], *chain]
        name = endpoint.partition(":")[0]
        attrs, _ = self.attributes() if self.is_punct("[") else ({}, {})
        if attrs:  # a bare `a` only mentions a node; attributes declare it, once
            if name in self.declared:
                msg = f"node {name!r} is declared twice; give it one statement with every attribute"
                raise DotSyntaxError(msg, token.offset, first=self.declared[name])
            self.declared[name] = token.offset
        self.nodes.append(DotNode(name, attrs, token.offset))
        return [name]

    def subgraph(self, depth: int) -> list[str]:
        if depth >= MAX_NESTING:
            msg = f"subgraph nesting depth is over the limit of {MAX_NESTING}"
            raise DotSyntaxError(msg, self.peek().offset)
        if self.keyword(self.peek()) == "subgraph":
            self.i += 1
            if self.peek().kind == "id" and self.keyword(self.peek()) is None:
                self.identifier("a subgraph name")
        self.expect("{", "'{' to open the subgraph")
        mentioned = self.statements(depth + 1)
        self.expect("}", "'}' to close the subgraph")
        return mentioned

    def endpoint(self) -> str:
        """``node``, ``node:port`` (``node:port:compass`` drops the compass point)."""
        token = self.identifier("a node id")
        name = token.text
        if self.max_nodes is not None and name not in self.names:
            self.names.add(name)
            if len(self.names) > self.max_nodes:
                msg = f"graph has over {self.max_nodes} nodes, the limit"
                raise DotSyntaxError(msg, token.offset)
        if not self.is_punct(":"):
            return name
        self.i += 1
        port = self.identifier("a port name after ':'").text
        if self.is_punct(":"):
            self.i += 1
            self.identifier("a compass point after ':'")
        return f"{name}:{port}"

    def edge_chain(self, groups: list[tuple[int, list[str]]], depth: int) -> list[str]:
        """The rest of ``a -> b -> {c d} [attrs]``; ``groups`` holds the first end."""
        mentioned: list[str] = []
        while self.peek().kind == "arrow":
            arrow = self.take()
            if arrow.text != self.arrow:
                kind = "digraph" if self.arrow == "->" else "graph"
                msg = f"'{arrow.text}' in a {kind}; use '{self.arrow}'"
                raise DotSyntaxError(msg, arrow.offset)
            start = self.peek().offset
            if self.keyword(self.peek()) == "subgraph" or self.is_punct("{"):
                group = self.subgraph(depth)
            else:
                group = [self.endpoint()]
            mentioned.extend(end.partition(":")[0] for end in group)
            groups.append((start, group))
        attrs, attr_offsets = self.attributes() if self.is_punct("[") else ({}, {})
        for (offset, sources), (_, targets) in itertools.pairwise(groups):
            for src in sources:
                for dst in targets:
                    self.edges.append(DotEdge(src, dst, dict(attrs), offset, attr_offsets))
        return mentioned

    def attributes(self) -> tuple[dict[str, str], dict[str, int]]:
        """``[a=b, c=d] [e=f]``: values as text, and where each name starts."""
        attrs: dict[str, str] = {}
        offsets: dict[str, int] = {}
        while self.is_punct("["):
            self.i += 1
            while not self.is_punct("]"):
                key = self.identifier("an attribute name")
                self.expect("=", f"'=' after attribute {key.text!r}")
                attrs[key.text] = self.identifier(f"a value for attribute {key.text!r}").text
                offsets[key.text] = key.offset
                if self.is_punct(",") or self.is_punct(";"):
                    self.i += 1
            self.i += 1
        return attrs, offsets


def _show(token: _Token) -> str:
    return "the end of the text" if token.kind == "end" else repr(token.text[:40])


def parse(text: str, *, max_nodes: int | None = None) -> DotGraph:
    """Parse one DOT graph, stopping as soon as it names more than ``max_nodes`` nodes.

    Raises:
        DotSyntaxError: the text is not one DOT graph, or has too many nodes (``offset``
            says where).
    """
    return _Parser(text, max_nodes).graph()
