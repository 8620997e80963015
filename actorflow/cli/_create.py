"""``actorflow create -n NAME``: scaffold a wrapper project whose own test passes.

The project holds ``wrapper.py`` (a ``WrapperBase`` subclass with declared fields
and a local debug run), ``graph.toml`` (a graph with the wrapper as a node),
``tests/test_wrapper.py`` (debug run, validation, the graph, and HTTP serving),
``README.md`` and ``pyproject.toml``. ``python -m pytest`` in the project passes as
generated.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from string import Template

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
"""Project names: a letter, then letters, digits, ``_`` or ``-`` (64 at most)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``create`` command to the ``actorflow`` CLI."""
    parser = subparsers.add_parser(
        "create",
        help="scaffold a wrapper project (wrapper.py, graph, test, README)",
        description="Generate a wrapper project whose test passes as generated.",
    )
    parser.add_argument("-n", "--name", required=True, help="project name (folder name)")
    parser.add_argument("--dir", default=".", help="where to create the project folder")
    parser.set_defaults(func=run, handler=run)


def run(args: argparse.Namespace) -> int:
    """Generate the project named ``args.name`` under ``args.dir``; return the exit status."""
    try:
        root = create_project(args.name, Path(args.dir))
    except (ValueError, FileExistsError) as exc:
        print(f"actorflow create: {exc}", file=sys.stderr)
        return 2
    print(f"created {root}")
    print(f"next: cd {root} && python wrapper.py && python -m pytest")
    return 0


def create_project(name: str, directory: Path) -> Path:
    """Write the project files into ``directory / name`` and return that folder.

    Raises:
        ValueError: ``name`` is not a valid project name.
        FileExistsError: the folder exists and is not empty.
    """
    if not NAME_PATTERN.match(name):
        msg = (
            f"invalid project name {name!r}: start with a letter, then letters, digits, "
            "'_' or '-' (at most 64 characters)"
        )
        raise ValueError(msg)
    root = directory / name
    if root.exists() and any(root.iterdir()):
        msg = f"{root} already exists and is not empty; pick another name or --dir"
        raise FileExistsError(msg)
    values = {"name": name, "service": re.sub(r"\W", "_", name).lower()}
    for relative, template in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values), encoding="utf-8")
    return root


def main(argv: list[str] | None = None) -> int:
    """Run ``create`` on its own: ``python -m actorflow.cli._create -n NAME``."""
    parser = argparse.ArgumentParser(prog="actorflow")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["create", *(sys.argv[1:] if argv is None else argv)])
    return run(args)


WRAPPER = '''\
"""$name: a wrapper service (actorflow wrapper SDK).

Run it locally:  python wrapper.py
Serve it:        actorflow serve wrapper.py   (POST /v1/infer, GET /v1/schema)
"""

from __future__ import annotations

import json
from collections import Counter

from actorflow.wrapper import (
    IntegerParamField,
    JsonBodyField,
    Response,
    ResponseData,
    StringBodyField,
    StringParamField,
    WrapperBase,
)

ERRORS = {
    1001: "the text holds no words",
}


class UserRequest:
    """What a request carries: parameters (control values) and body fields (data)."""

    case = StringParamField("case", enums=["lower", "keep"], value="lower",
                            description="fold words to lower case, or keep them")
    top = IntegerParamField("top", minimum=1, maximum=50, value=3,
                            description="how many words to return")
    text = StringBodyField("text", value="the cat and the hat and the bat")


class UserResponse:
    """What a response carries."""

    words = JsonBodyField("words", description="the most frequent words and their counts")


class Wrapper(WrapperBase):
    """Count the most frequent words of a text."""

    serviceId = "$service"
    version = "0.1.0"
    requestCls = UserRequest()
    responseCls = UserResponse()
    config = {"min_length": 1}  # what the local debug run passes to wrapperInit

    def wrapperInit(self, config: dict) -> int:
        self.min_length = int(config.get("min_length", 1))
        return 0

    def wrapperOnceExec(self, params: dict, reqData) -> Response:
        text = str(reqData.get("text").data, "utf-8")
        if params["case"] == "lower":
            text = text.lower()
        words = [w for w in text.split() if len(w) >= self.min_length]
        if not words:
            return self.response_err(1001)
        top = Counter(words).most_common(params["top"])
        body = [{"word": word, "count": count} for word, count in top]
        data = json.dumps(body)
        return Response([ResponseData("words", body, len(data.encode()))])

    def wrapperFini(self) -> int:
        return 0

    def wrapperError(self, code: int) -> str:
        return ERRORS.get(code, f"unknown error {code}")


if __name__ == "__main__":
    m = Wrapper()
    m.schema()
    m.run()
'''

GRAPH = """\
# $name as a node of a graph: each session sends requests to `input` and gets the
# wrapper's Response objects from `output`. replicas = concurrent execs (threads).
[graph]
format = "graphviz"
graphconf = \'\'\'digraph $service {
  input   [type=input]
  service [flowunit=wrapper, path="wrapper.py", replicas=4]
  output  [type=output]
  input -> service -> output
}\'\'\'
"""

TEST = '''\
"""Tests of the $name wrapper: debug run, validation, the graph, HTTP serving."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from actorflow.runtime import Flow
from actorflow.wrapper import WrapperRequestError, build_app, load_wrapper

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = ROOT / "wrapper.py"


def test_debug_run_succeeds() -> None:
    result = subprocess.run([sys.executable, str(WRAPPER)], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "words: type=text" in result.stdout
    assert result.stdout.rstrip().endswith("ok")


def test_requests_are_validated() -> None:
    wrapper = load_wrapper(WRAPPER)()
    with pytest.raises(WrapperRequestError, match="'top'"):
        wrapper.check_request({"top": 99}, {"text": "a b"})


def test_exec_counts_words() -> None:
    wrapper = load_wrapper(WRAPPER)()
    wrapper.init()
    params, req = wrapper.check_request({"top": 1}, {"text": "b a b"})
    response = wrapper.exec(params, req)
    assert response.list[0].data == [{"word": "b", "count": 2}]
    assert wrapper.exec(*wrapper.check_request({}, {"text": " "})).error_code == 1001


def test_graph_runs_the_wrapper() -> None:
    async def main() -> list:
        async with Flow(ROOT / "graph.toml") as flow:
            session = flow.create_external_data_map()
            await session.send("input", {"parameter": {"top": 1}, "payload": {"text": "x y x"}})
            await session.close()
            return [result async for result in session]

    (result,) = asyncio.run(asyncio.wait_for(main(), 30))
    assert result.ok
    assert result.data.list[0].data == [{"word": "x", "count": 2}]


def test_served_over_http() -> None:
    async def main() -> tuple:
        app = build_app(WRAPPER)
        async with TestServer(app, host="127.0.0.1") as server, TestClient(server) as client:
            ok = await client.post("/v1/infer", json={"payload": {"text": "a a b"}})
            bad = await client.post("/v1/infer", json={"parameter": {"case": "upper"},
                                                       "payload": {"text": "a"}})
            return ok.status, await ok.json(), bad.status, await bad.json()

    status, body, bad_status, bad_body = asyncio.run(asyncio.wait_for(main(), 30))
    assert status == 200
    assert body["payload"]["words"]["data"][0] == {"word": "a", "count": 2}
    assert bad_status == 400
    assert bad_body["field"] == "case"
'''

README = """\
# $name

A wrapper service built with the actorflow wrapper SDK.

    python wrapper.py                 # local debug run: init -> once-exec -> fini
    python -m pytest                  # the project's tests
    actorflow serve wrapper.py        # HTTP: POST /v1/infer, GET /v1/schema

A request over HTTP:

    curl -s localhost:8080/v1/infer -H 'Content-Type: application/json' \\
         -d '{"parameter": {"top": 2}, "payload": {"text": "a b a"}}'

`graph.toml` runs the same wrapper as a graph node with four replicas.
Edit `UserRequest` / `UserResponse` in `wrapper.py` to change the contract: the
schema, the request validation and the debug run's test values follow.
"""

PYPROJECT = """\
[project]
name = "$name"
version = "0.1.0"
description = "A wrapper service built with actorflow"
requires-python = ">=3.11"
dependencies = ["actorflow"]

[project.optional-dependencies]
test = ["pytest>=8"]

[tool.pytest.ini_options]
testpaths = ["tests"]
addopts = ["-ra", "--import-mode=importlib", "-p", "no:cacheprovider"]
"""

FILES = {
    "wrapper.py": WRAPPER,
    "graph.toml": GRAPH,
    "tests/test_wrapper.py": TEST,
    "README.md": README,
    "pyproject.toml": PYPROJECT,
}
"""Relative path -> ``string.Template`` text (``$$name``, ``$$service``)."""


if __name__ == "__main__":
    raise SystemExit(main())
