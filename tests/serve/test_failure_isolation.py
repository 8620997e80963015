"""A served flow that bad requests cannot kill, and that comes back when it does fail.

Real aiohttp servers on 127.0.0.1, the shipped graph files, no sleeps.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from actorflow.errors import FlowFailed
from actorflow.runtime import Flow, RestartPolicy
from actorflow.serve import build_app
from actorflow.unit import flowunit

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]

GRAPHS = Path(__file__).parents[2] / "graphs"


@flowunit(name="test_isolation_fragile", fatal_errors=(MemoryError,))
async def fragile(x: int) -> int:
    """Fails plainly on negative numbers; a 'device loss' (fatal) on 13."""
    if x == 13:
        raise MemoryError("device lost")
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * 2


def fragile_graph() -> dict[str, Any]:
    return {
        "nodes": {
            "x": {"type": "input"},
            "f": {"flowunit": "test_isolation_fragile"},
            "y": {"type": "output"},
        },
        "edges": ["x -> f", "f -> y"],
    }


async def test_a_thousand_wrong_typed_requests_among_good_ones_never_hurt_the_flow() -> None:
    """The modelbox_hello graph: every good request answered, every bad one a 400 naming
    the port and the problem, the flow ready at the end."""
    flow = Flow(GRAPHS / "modelbox_hello.toml")
    rng = random.Random(9)
    kinds = ["good"] * 1000 + ["bad"] * 1000
    rng.shuffle(kinds)
    async with TestClient(TestServer(build_app(flow), host="127.0.0.1")) as c:
        for i, kind in enumerate(kinds):
            value: Any = float(i) if kind == "good" else rng.choice(["x", [1], {"a": 1}, None])
            response = await c.post("/v1/infer", json={"inputs": {"input": value}})
            body = await response.json()
            if kind == "good":
                assert response.status == 200, body
                assert body["outputs"]["output"] == [i * 0.5]
            else:
                assert response.status == 400, body
                assert (body["field"], body["reason"]) == ("input", "type")
                assert body["expected"] == "float"
                assert "input 'input'" in body["error"]
                assert "expects float" in body["error"]
        assert (await c.get("/readyz")).status == 200
        assert (await c.get("/healthz")).status == 200
        node = flow.statistics().nodes["process"]
        assert (node.processed, node.failed, node.restarts) == (1000, 0, 0)


async def test_failing_items_are_errors_and_the_unit_never_restarts() -> None:
    flow = Flow(fragile_graph())
    async with TestClient(TestServer(build_app(flow), host="127.0.0.1")) as c:
        for i in range(60):  # far past the restart intensity of the old rule
            response = await c.post("/v1/infer", json={"inputs": {"x": -i - 1}})
            assert response.status in (200, 422, 500), await response.text()
            text = await response.text()
            assert "ValueError" in text
            assert "negative" in text
        response = await c.post("/v1/infer", json={"inputs": {"x": 4}})
        assert (await response.json())["outputs"]["y"] == [8]
        assert flow.state == "running"


async def test_a_flow_that_fails_is_restarted_and_serves_again() -> None:
    flow = Flow(fragile_graph(), restart=RestartPolicy(max_restarts=0))
    app = build_app(flow, restart=RestartPolicy(max_restarts=2, backoff_initial_s=0.01))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        failed = await c.post("/v1/infer", json={"inputs": {"x": 13}})
        assert "device lost" in await failed.text()
        await flow.join()  # the node's fatal error failed the flow
        assert flow.state == "failed"
        health = await c.get("/healthz")
        if health.status == 503:  # seen while it is down; the restart may already be done
            assert "device lost" in (await health.json())["error"]
        async with asyncio.timeout(10):
            while flow.state != "running":  # noqa: ASYNC110 - the keeper rebuilds it meanwhile
                await asyncio.sleep(0)
        response = await c.post("/v1/infer", json={"inputs": {"x": 5}})
        assert (await response.json())["outputs"]["y"] == [10]
        assert (await c.get("/healthz")).status == 200


async def test_a_flow_that_keeps_failing_is_given_up_and_healthz_says_so() -> None:
    flow = Flow(fragile_graph(), restart=RestartPolicy(max_restarts=0))
    gave_up: list[FlowFailed] = []
    done = asyncio.Event()

    def give_up(failure: FlowFailed) -> None:
        gave_up.append(failure)
        done.set()

    app = build_app(flow, restart=RestartPolicy(max_restarts=0), on_give_up=give_up)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        await c.post("/v1/infer", json={"inputs": {"x": 13}})
        async with asyncio.timeout(10):
            await done.wait()
        health = await c.get("/healthz")
        assert health.status == 503
        body = await health.json()
        assert body["flow"] == "failed"
        assert "node 'f'" in body["error"]
        assert (await c.get("/readyz")).status == 503
    assert "device lost" in str(gave_up[0])
