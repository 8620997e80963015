"""Each network sink's ledger in ``flow.statistics()`` and on ``/metrics``."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from support.servers import Scripted, serve
from support.sinks import Items, WatchedHttpSink

import actorflow as af
from actorflow.serve import build_app

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


class Collect(af.FlowUnit):
    inp = af.Input("in")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        pass


def half_rejected() -> Scripted:
    """First attempt 503 (``Retry-After: 0``); then the even items 200, the odd 400."""
    order: dict[str, int] = {}

    def script(key: str, n: int) -> str:
        index = order.setdefault(key, len(order))
        if n == 0:
            return "503 0"
        return "ok" if index % 2 == 0 else "400"

    return Scripted(script)


EXPECTED = {"accepted": 6, "delivered": 3, "retried": 6, "dead_lettered": 3, "pending": 0}


async def test_sink_counts_show_in_statistics_while_running_and_after_stop() -> None:
    server = half_rejected()
    async with await serve(server.handle) as ts:
        src = Items(count=6)
        sink = WatchedHttpSink(expect=6, url=str(ts.make_url("/hook")), backoff_base=0.01)
        flow = af.Flow([src], [sink(src)])
        await flow.run_async()
        await sink.all_accepted.wait()
        await sink.settled()
        running = flow.statistics().nodes["http_sink"].info["sink"]
        await flow.stop()
    assert running == EXPECTED
    assert flow.statistics().nodes["http_sink"].info["sink"] == EXPECTED
    assert {r["reason"] for r in sink.dead_letters.records} == {"sink_rejected"}


def samples(text: str, family: str) -> dict[str, float]:
    """``node -> value`` of one family, by the Prometheus text parser."""
    found = {f.name: f for f in text_string_to_metric_families(text)}[family]
    return {s.labels["node"]: s.value for s in found.samples if not s.name.endswith("_created")}


async def test_sink_counts_on_metrics() -> None:
    server = half_rejected()
    async with await serve(server.handle) as ts:
        src = Items(count=6)
        sink = WatchedHttpSink(expect=6, url=str(ts.make_url("/hook")), backoff_base=0.01)
        app = build_app(af.Flow([src], [sink(src)]))
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            await sink.all_accepted.wait()
            await sink.settled()
            text = await (await client.get("/metrics")).text()
    for name, value in EXPECTED.items():
        family = "actorflow_sink_pending" if name == "pending" else f"actorflow_sink_{name}"
        assert samples(text, family) == {"http_sink": float(value)}, name
    assert "actorflow_sink_delivered_total{" in text


async def test_units_that_are_not_sinks_report_no_sink_metrics() -> None:
    src = Items(count=1)
    flow = af.Flow([src], [Collect()(src)])
    app = build_app(flow)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        text = await (await client.get("/metrics")).text()
    assert samples(text, "actorflow_sink_delivered") == {}
