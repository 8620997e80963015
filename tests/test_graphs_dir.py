"""Every file in graphs/ loads and validates; those that need no model run end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from actorflow.cli._common import load_checked
from actorflow.errors import CustomCodeDisabled
from actorflow.graph import load_graph
from actorflow.runtime import Flow, Status

pytestmark = pytest.mark.anyio

GRAPHS = Path(__file__).resolve().parents[1] / "graphs"
FILES = sorted(p for p in GRAPHS.iterdir() if p.suffix in (".toml", ".json"))
CUSTOM_CODE = {p.name for p in FILES if "dynamic_blocks_definitions" in p.read_text()}
"""Files carrying dynamic blocks: refused by default, loaded with custom code enabled."""


def test_the_examples_are_there() -> None:
    names = {p.name for p in FILES}
    assert {
        "hello.toml",
        "hello.json",
        "modelbox_hello.toml",
        "workflow_hello.json",
        "workflow_block.json",
    } <= names
    assert "workflow_block.json" in CUSTOM_CODE


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_graph_file_loads_and_validates(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTORFLOW_ALLOW_CUSTOM_CODE", raising=False)
    if path.name in CUSTOM_CODE:
        with pytest.raises(CustomCodeDisabled):
            load_graph(path)
    graph = load_checked(path, allow_custom_code=path.name in CUSTOM_CODE)
    assert graph.nodes


@pytest.mark.parametrize("name", ["hello.toml", "hello.json"])
async def test_source_graphs_run_to_the_end(name: str) -> None:
    flow = Flow(GRAPHS / name)
    with anyio.fail_after(10):
        await flow.run_async()
        assert await flow.wait() is Status.STOP
    stats = flow.statistics()
    assert stats.nodes["show"].processed == {"hello.toml": 20, "hello.json": 5}[name]


async def _session_results(flow: Flow, port: str, values: list[Any]) -> dict[str, list[Any]]:
    results: dict[str, list[Any]] = {}
    with anyio.fail_after(10):
        async with flow:
            session = flow.create_external_data_map()
            for value in values:
                await session.send(port, value)
            await session.close()
            async for result in session:
                assert result.ok, result.error
                results.setdefault(result.port, []).append(result.data)
    return results


async def test_modelbox_hello_runs_through_a_session() -> None:
    results = await _session_results(Flow(GRAPHS / "modelbox_hello.toml"), "input", [2, 4])
    assert results == {"output": [1.0, 2.0]}


async def test_workflow_hello_runs_through_a_session() -> None:
    results = await _session_results(Flow(GRAPHS / "workflow_hello.json"), "number", [1, 2])
    assert results == {"scaled": [10, 20], "negated": [-10, -20]}


async def test_workflow_block_runs_with_custom_code() -> None:
    flow = Flow()
    flow.init(GRAPHS / "workflow_block.json", allow_custom_code=True)
    results = await _session_results(flow, "number", [1, 2])
    assert results == {"message": ["2 apples", "4 apples"], "total": [2.0, 6.0]}
