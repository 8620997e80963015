"""actorflow.integrations.aiohttp with real aiohttp servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from actorflow.integrations.aiohttp import (
    ADMISSION,
    FLOW,
    ClientGone,
    Overloaded,
    attach,
    results_to_json,
    run_session,
)
from actorflow.runtime import Flow
from actorflow.unit import Context, FlowUnit, Input, Output, Packet

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


class Gate:
    """Lets a test hold a unit inside ``process`` and see that it got there."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()


GATE = Gate()


class Tag(FlowUnit):
    """Returns its input wrapped with a tag; waits on ``GATE`` first."""

    name: ClassVar[str] = "test_integration_tag"
    x: ClassVar[Input[Any]] = Input("x", int)
    y: ClassVar[Output[Any]] = Output("y", dict)

    async def process(self, ctx: Context, packet: Packet[Any]) -> None:
        GATE.entered.set()
        await GATE.release.wait()
        await ctx.emit(self.y, packet.replace({"value": packet.data, "tag": packet.data * 10}))


def graph(queue_size: int = 512) -> dict[str, Any]:
    return {
        "name": "tagger",
        "nodes": {
            "x": {"type": "input"},
            "tag": {"flowunit": "test_integration_tag", "queue_size": queue_size},
            "y": {"type": "output"},
        },
        "edges": ["x -> tag:x", "tag:y -> y"],
    }


@pytest.fixture(autouse=True)
def fresh_gate() -> None:
    global GATE  # the unit reads the module-level gate
    GATE = Gate()


class Handled:
    """Records how each request ended, so tests can wait on it."""

    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.changed = asyncio.Event()


def make_app(flow: Flow, handled: Handled, **attach_options: Any) -> web.Application:
    app = web.Application()
    attach(app, flow, **attach_options)

    async def handle(request: web.Request) -> web.Response:
        values = [int(v) for v in request.query["v"].split(",")]
        try:
            results = await run_session(request, [("x", v) for v in values])
        except Overloaded as exc:
            handled.outcomes.append("429")
            return web.json_response(
                {"error": str(exc)},
                status=429,
                headers={"Retry-After": str(round(exc.retry_after))},
            )
        except ClientGone:
            handled.outcomes.append("gone")
            raise
        except asyncio.CancelledError:
            handled.outcomes.append("cancelled")
            raise
        finally:
            handled.changed.set()
        handled.outcomes.append("200")
        return web.json_response(results_to_json(results))

    app.router.add_get("/tag", handle)
    return app


async def test_flow_runs_with_the_app_and_stops_at_cleanup() -> None:
    flow = Flow(graph())
    app = make_app(flow, Handled())
    assert app[FLOW] is flow
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert flow.state == "running"
        resp = await client.get("/tag", params={"v": "4"})
        assert await resp.json() == {"outputs": {"y": [{"value": 4, "tag": 40}]}, "errors": []}
    assert flow.state == "stopped"


async def test_hundred_concurrent_clients_get_exactly_their_own_results() -> None:
    flow = Flow(graph())
    async with TestClient(TestServer(make_app(flow, Handled()), host="127.0.0.1")) as client:

        async def one(i: int) -> list[Any]:
            resp = await client.get("/tag", params={"v": f"{i},{i + 1000}"})
            assert resp.status == 200
            return list((await resp.json())["outputs"]["y"])

        answers = await asyncio.gather(*(one(i) for i in range(100)))
    for i, answer in enumerate(answers):
        assert answer == [{"value": i, "tag": i * 10}, {"value": i + 1000, "tag": (i + 1000) * 10}]
    sessions = flow.statistics().sessions.values()
    assert len(sessions) == 100
    assert all(s.balanced and s.delivered == 2 for s in sessions)


async def test_full_graph_is_rejected_not_queued() -> None:
    GATE.release.clear()
    flow = Flow(graph(queue_size=2))
    handled = Handled()
    async with TestClient(TestServer(make_app(flow, handled), host="127.0.0.1")) as client:
        first = asyncio.ensure_future(client.get("/tag", params={"v": "1"}))
        await GATE.entered.wait()  # in process; end markers take no packet slot
        filler = flow.session()
        filler.send_nowait("x", 2)
        filler.send_nowait("x", 5)  # now the mailbox (2 slots) is full
        resp = await client.get("/tag", params={"v": "3"})
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        GATE.release.set()
        done = await first
        assert done.status == 200
        done.release()
        await filler.close()
        assert [r.data["value"] async for r in filler] == [2, 5]
    assert handled.outcomes.count("429") == 1
    rejected = [s for s in flow.statistics().sessions.values() if s.sent == 0]
    assert len(rejected) == 1  # the rejected request sent nothing


async def test_session_limit_answers_overloaded() -> None:
    GATE.release.clear()
    flow = Flow(graph())
    handled = Handled()
    app = make_app(flow, handled, max_sessions=1)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        first = asyncio.ensure_future(client.get("/tag", params={"v": "1"}))
        await GATE.entered.wait()
        resp = await client.get("/tag", params={"v": "2"})
        assert resp.status == 429
        assert app[ADMISSION].rejected == 1
        GATE.release.set()
        done = await first
        assert done.status == 200
        done.release()


@pytest.mark.parametrize(
    ("handler_cancellation", "outcome"),
    [
        pytest.param(True, "cancelled", id="handler-cancelled"),
        pytest.param(False, "gone", id="disconnect-detected"),
    ],
)
async def test_client_disconnect_aborts_its_session(
    handler_cancellation: bool, outcome: str
) -> None:
    """Work queued for a client that went away is cancelled and counted as cancelled."""
    GATE.release.clear()
    flow = Flow(graph())
    handled = Handled()
    runner = web.AppRunner(make_app(flow, handled), handler_cancellation=handler_cancellation)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            request = asyncio.ensure_future(
                http.get(f"http://127.0.0.1:{port}/tag", params={"v": "1,2,3"})
            )
            await GATE.entered.wait()
            request.cancel()  # the client gives up and closes its connection
            with pytest.raises(asyncio.CancelledError):
                await request
        async with asyncio.timeout(5):
            while outcome not in handled.outcomes:
                handled.changed.clear()
                await handled.changed.wait()
        (session,) = flow.statistics().sessions.values()
        assert (session.sent, session.delivered) == (3, 0)
        GATE.release.set()
    finally:
        await runner.cleanup()
    (session,) = flow.statistics().sessions.values()
    assert session.cancelled == 3
    assert session.balanced


async def test_run_session_without_a_request() -> None:
    flow = Flow(graph())
    await flow.run_async()
    try:
        results = await run_session(None, {"x": 5}, flow=flow)
    finally:
        await flow.stop()
    assert [r.data for r in results] == [{"value": 5, "tag": 50}]
