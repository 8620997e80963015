"""The shared-session multiplexer: requests from different clients batch together."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from aiohttp.test_utils import TestClient, TestServer

from actorflow.graph import graph_from_dict
from actorflow.runtime import Flow
from actorflow.serve import STATE, build_app
from actorflow.serve._mux import Multiplexer
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


class Batches:
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()


BATCHES = Batches()


@pytest.fixture(autouse=True)
def fresh() -> None:
    global BATCHES  # the unit reads the module-level recorder
    BATCHES = Batches()


class Square(FlowUnit):
    """Squares ints in batches; drops negative numbers (a filter)."""

    name: ClassVar[str] = "test_mux_square"
    x: ClassVar[Input[Any]] = Input("x", int)
    y: ClassVar[Output[Any]] = Output("y", int)

    async def process_batch(self, ctx: Context, packets: list[Packet[Any]]) -> None:
        BATCHES.sizes.append(len(packets))
        BATCHES.entered.set()
        await BATCHES.release.wait()
        for p in packets:
            if p.data >= 0:
                await ctx.emit(self.y, p.replace(p.data * p.data))


class Split(FlowUnit):
    name: ClassVar[str] = "test_mux_split"
    x: ClassVar[Input[Any]] = Input("x", int)
    y: ClassVar[Output[Any]] = Output("y", int, expand=True)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        await ctx.emit(self.y, packet.replace(packet.data))


def graph(unit: str = "test_mux_square", batch_size: int = 32) -> dict[str, Any]:
    return {
        "name": "squares",
        "nodes": {
            "x": {"type": "input"},
            "sq": {
                "flowunit": unit,
                "batch_size": batch_size,
                "batch_timeout": 0.001,
                "queue_size": 256,
            },
            "y": {"type": "output"},
        },
        "edges": ["x -> sq:x", "sq:y -> y"],
    }


async def test_eligibility() -> None:
    assert Multiplexer.eligible(graph_from_dict(graph()))
    assert not Multiplexer.eligible(graph_from_dict(graph("test_mux_split")))
    two_outputs = graph()
    two_outputs["nodes"]["z"] = {"type": "output"}
    two_outputs["edges"].append("sq:y -> z")
    assert not Multiplexer.eligible(graph_from_dict(two_outputs))


async def test_requests_from_many_clients_share_batches() -> None:
    flow = Flow(graph())
    app = build_app(flow, max_sessions=64)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert app[STATE].mux is not None
        first = asyncio.ensure_future(client.post("/v1/infer", json={"inputs": {"x": 1}}))
        await BATCHES.entered.wait()  # the first batch (of one) is held in the unit
        rest = [
            asyncio.ensure_future(client.post("/v1/infer", json={"inputs": {"x": i}}))
            for i in range(2, 22)
        ]
        async with asyncio.timeout(5):
            while flow.statistics().nodes["sq"].mailbox_used < 20:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        BATCHES.release.set()
        answers = [await (await r).json() for r in [first, *rest]]
    assert [a["outputs"]["y"] for a in answers] == [[i * i] for i in range(1, 22)]
    assert BATCHES.sizes == [1, 20]  # the 20 queued requests ran as one batch


async def test_filtered_items_answer_with_no_outputs() -> None:
    BATCHES.release.set()
    async with TestClient(TestServer(build_app(Flow(graph())), host="127.0.0.1")) as client:
        resp = await client.post("/v1/infer", json={"inputs": [{"x": 2}, {"x": -1}, {"x": 3}]})
        assert await resp.json() == {"outputs": {"y": [4, 9]}, "errors": []}


async def test_shared_session_can_be_turned_off() -> None:
    BATCHES.release.set()
    app = build_app(Flow(graph()), shared_session=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert app[STATE].mux is None
        resp = await client.post("/v1/infer", json={"inputs": {"x": 5}})
        assert await resp.json() == {"outputs": {"y": [25]}, "errors": []}


async def test_full_graph_is_429_in_shared_mode() -> None:
    flow = Flow(
        {
            **graph(batch_size=2),
            "nodes": {
                **graph()["nodes"],
                "sq": {"flowunit": "test_mux_square", "batch_size": 2, "queue_size": 2},
            },
        }
    )
    app = build_app(flow)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        first = asyncio.ensure_future(client.post("/v1/infer", json={"inputs": {"x": 1}}))
        await BATCHES.entered.wait()
        resp = await client.post("/v1/infer", json={"inputs": [{"x": 2}, {"x": 3}, {"x": 4}]})
        assert resp.status == 429
        assert "Retry-After" in resp.headers
        BATCHES.release.set()
        assert await (await first).json() == {"outputs": {"y": [1]}, "errors": []}
        again = await client.post("/v1/infer", json={"inputs": {"x": 6}})
        assert await again.json() == {"outputs": {"y": [36]}, "errors": []}
    assert app[STATE].mux is not None
    assert app[STATE].mux.discarded == 2  # the refused request's first two items ran


async def test_hundred_concurrent_clients_in_shared_mode_get_their_own_results() -> None:
    BATCHES.release.set()
    app = build_app(Flow(graph()), max_sessions=128)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:

        async def one(i: int) -> Any:
            resp = await client.post("/v1/infer", json={"inputs": [{"x": i}, {"x": i + 1000}]})
            assert resp.status == 200
            return (await resp.json())["outputs"]["y"]

        answers = await asyncio.gather(*(one(i) for i in range(100)))
    assert answers == [[i * i, (i + 1000) ** 2] for i in range(100)]
    assert max(BATCHES.sizes) > 1  # requests shared batches


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-request"])
async def test_requests_after_the_flow_stopped_get_503(shared: bool) -> None:
    BATCHES.release.set()
    flow = Flow(graph())
    app = build_app(flow, shared_session=shared)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        await flow.stop()
        resp = await client.post("/v1/infer", json={"inputs": {"x": 2}})
        assert resp.status == 503
        assert "Retry-After" in resp.headers
        assert (await client.get("/readyz")).status == 503
