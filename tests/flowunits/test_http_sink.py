"""HttpDelivery / HttpSink against real aiohttp servers on 127.0.0.1.

Every fault test counts both sides: items the server accepted plus dead-letter records
equal the items submitted, exactly.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from support.servers import Scripted, serve

from actorflow.errors import UnitConfigError
from actorflow.flowunits.sinks._delivery import (
    AllowList,
    DeadLetterLog,
    Item,
    SsrfBlocked,
    full_jitter,
    idempotency_key,
    parse_retry_after,
)
from actorflow.flowunits.sinks.http import HttpDelivery, HttpSink

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_leftover_tasks")]


class Recorder:
    """Injectable sleep that records each delay and yields once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


def item(i: int, data: Any = None) -> Item:
    return Item({"i": i} if data is None else data, idempotency_key("f", "n", 1, i, ()), 1, i)


async def run_items(url: str, n: int, **options: Any) -> HttpDelivery:
    options.setdefault("sleep", Recorder())
    async with HttpDelivery(url, **options) as delivery:
        for i in range(n):
            await delivery.submit(item(i))
    return delivery


async def test_full_jitter_stays_under_the_exponential_cap() -> None:
    rnd = random.Random(1).random
    for attempt in range(10):
        assert 0 <= full_jitter(attempt, 0.1, 5.0, rnd) < min(5.0, 0.1 * 2**attempt)


async def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_idempotency_key_depends_on_identity_only() -> None:
    assert idempotency_key("f", "n", 1, 2, (3,)) == idempotency_key("f", "n", 1, 2, (3,))
    assert idempotency_key("f", "n", 1, 2, (3,)) != idempotency_key("f", "n", 1, 2, (4,))


async def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(UnitConfigError, match="absolute http"):
        HttpSink(url="ftp://example.org/x")


async def test_delivers_json_with_idempotency_key() -> None:
    server = Scripted(lambda key, n: "ok")
    async with await serve(server.handle) as ts:
        delivery = await run_items(str(ts.make_url("/hook")), 20)
    assert delivery.delivered == 20
    assert delivery.dead_lettered == 0
    assert sorted(v["i"] for v in server.accepted.values()) == list(range(20))


async def test_server_down_dead_letters_after_backoff(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleep = Recorder()
    log = DeadLetterLog(tmp_path / "dead.jsonl")
    delivery = await run_items(
        f"http://127.0.0.1:{port}/hook",
        3,
        max_attempts=4,
        backoff_base=0.1,
        backoff_cap=5.0,
        sleep=sleep,
        dead_letter=log,
    )
    assert (delivery.delivered, delivery.dead_lettered) == (0, 3)
    assert len(sleep.delays) == 9
    assert all(0 <= d < 0.4 for d in sleep.delays)
    records = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in records} == {"sink_failed"}
    assert {r["attempts"] for r in records} == {4}
    assert sorted(r["payload"]["i"] for r in records) == [0, 1, 2]
    assert all("ClientConnector" in r["error"] for r in records)


async def test_slow_server_times_out_and_is_retried() -> None:
    server = Scripted(lambda key, n: "slow" if n == 0 else "ok")
    async with await serve(server.handle) as ts:
        delivery = await run_items(str(ts.make_url("/hook")), 4, timeout=0.2, max_attempts=3)
        server.release.set()
    assert (delivery.delivered, delivery.dead_lettered) == (4, 0)
    assert all(server.attempts[k] == 2 for k in server.accepted)


@pytest.mark.parametrize("status", ["500", "503", "502"])
async def test_5xx_is_retried_with_the_same_key(status: str) -> None:
    server = Scripted(lambda key, n: status if n < 2 else "ok")
    async with await serve(server.handle) as ts:
        delivery = await run_items(str(ts.make_url("/hook")), 5)
    assert (delivery.delivered, delivery.dead_lettered) == (5, 0)
    assert Counter(server.keys_seen) == Counter(dict.fromkeys(server.accepted, 3))


async def test_429_waits_at_least_retry_after() -> None:
    server = Scripted(lambda key, n: "429 2" if n == 0 else "ok")
    sleep = Recorder()
    async with await serve(server.handle) as ts:
        delivery = await run_items(str(ts.make_url("/hook")), 3, sleep=sleep)
    assert (delivery.delivered, delivery.dead_lettered) == (3, 0)
    assert sleep.delays
    assert all(d >= 2.0 for d in sleep.delays)


async def test_retry_after_is_capped() -> None:
    server = Scripted(lambda key, n: "429 3600" if n == 0 else "ok")
    sleep = Recorder()
    async with await serve(server.handle) as ts:
        await run_items(str(ts.make_url("/hook")), 1, sleep=sleep, retry_after_cap=7.0)
    assert sleep.delays == [7.0]


@pytest.mark.parametrize("status", ["400", "404", "422"])
async def test_4xx_is_not_retried(status: str) -> None:
    server = Scripted(lambda key, n: status)
    async with await serve(server.handle) as ts:
        delivery = await run_items(str(ts.make_url("/hook")), 3)
    assert (delivery.delivered, delivery.dead_lettered) == (0, 3)
    assert set(server.attempts.values()) == {1}
    assert {r["reason"] for r in delivery.dead_letters.records} == {"sink_rejected"}
    assert {r["status"] for r in delivery.dead_letters.records} == {int(status)}


async def test_connection_closed_mid_response_is_retried() -> None:
    server = Scripted(lambda key, n: "cut" if n == 0 else "ok")
    async with await serve(server.handle) as ts:
        delivery = await run_items(str(ts.make_url("/hook")), 3)
    assert (delivery.delivered, delivery.dead_lettered) == (3, 0)
    assert set(server.attempts.values()) == {2}


async def test_mixed_faults_add_up_exactly() -> None:
    """200 items under a seeded mix of faults: accepted + dead-lettered == submitted."""
    rng = random.Random(7)
    faults = ["ok", "ok", "500", "503", "429 0", "400", "cut"]
    server = Scripted(lambda key, n: rng.choice(faults))
    async with await serve(server.handle) as ts:
        delivery = await run_items(str(ts.make_url("/hook")), 200, max_in_flight=4, max_attempts=3)
    assert delivery.submitted == 200
    assert delivery.delivered == len(server.accepted)
    assert delivery.delivered + delivery.dead_lettered == 200
    dead = {r["key"] for r in delivery.dead_letters.records}
    assert dead.isdisjoint(server.accepted)
    assert server.peak <= 4


async def test_in_flight_is_bounded() -> None:
    server = Scripted(lambda key, n: "slow")
    async with await serve(server.handle) as ts:
        async with HttpDelivery(str(ts.make_url("/hook")), max_in_flight=3) as delivery:
            for i in range(3):
                await delivery.submit(item(i))
            blocked = asyncio.ensure_future(delivery.submit(item(3)))
            async with server.arrived:
                await server.arrived.wait_for(lambda: server.active == 3)
            assert not blocked.done()
            assert delivery.in_flight == 3
            server.release.set()
            await blocked
    assert (delivery.delivered, delivery.dead_lettered) == (4, 0)


async def test_close_dead_letters_what_is_still_in_flight() -> None:
    server = Scripted(lambda key, n: "slow")
    async with await serve(server.handle) as ts:
        delivery = await run_items(str(ts.make_url("/hook")), 2, close_timeout=0.1)
        server.release.set()
    assert (delivery.delivered, delivery.dead_lettered) == (0, 2)
    assert {r["reason"] for r in delivery.dead_letters.records} == {"shutdown"}


async def test_multipart_payload_sends_image_parts() -> None:
    parts: dict[str, Any] = {}

    async def handle(request: web.Request) -> web.Response:
        reader = await request.multipart()
        async for part in reader:
            parts[part.name or ""] = (part.headers.get("Content-Type"), await part.read())
        return web.Response()

    image = np.zeros((4, 6, 3), np.uint8)
    async with await serve(handle) as ts:
        async with HttpDelivery(str(ts.make_url("/hook")), payload="multipart") as delivery:
            await delivery.submit(item(0, {"image": image, "label": "face", "score": 0.5}))
    assert delivery.delivered == 1
    assert parts["image"][0] == "image/png"
    assert bytes(parts["image"][1][:4]) == b"\x89PNG"
    assert json.loads(parts["json"][1]) == {"label": "face", "score": 0.5}


class StubResolver:
    """Resolves every name to fixed addresses (DNS under the test's control)."""

    def __init__(self, *ips: str) -> None:
        self.ips = ips

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict[str, Any]]:
        return [
            {
                "hostname": host,
                "host": ip,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for ip in self.ips
        ]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("url_host", "allow", "resolver"),
    [
        pytest.param("127.0.0.1", ["10.0.0.0/8"], None, id="ip-literal"),
        pytest.param("localhost", ["localhost"], None, id="allowed-name-private-ip"),
        pytest.param(
            "hooks.example.com",
            ["hooks.example.com"],
            StubResolver("127.0.0.1"),
            id="rebinding-to-loopback",
        ),
        pytest.param("[::ffff:127.0.0.1]", ["example.org"], None, id="ipv4-mapped"),
    ],
)
async def test_allow_list_refuses_unlisted_addresses(
    url_host: str, allow: list[str], resolver: Any
) -> None:
    server = Scripted(lambda key, n: "ok")
    async with await serve(server.handle) as canary:
        delivery = await run_items(
            f"http://{url_host}:{canary.port}/hook", 2, allow=allow, resolver=resolver
        )
    assert server.keys_seen == []  # the canary was never reached
    assert (delivery.delivered, delivery.dead_lettered) == (0, 2)
    assert {r["reason"] for r in delivery.dead_letters.records} == {"ssrf_blocked"}
    assert all("127.0.0.1" in r["error"] for r in delivery.dead_letters.records)


async def test_allow_listed_network_is_reached() -> None:
    server = Scripted(lambda key, n: "ok")
    async with await serve(server.handle) as ts:
        delivery = await run_items(f"http://localhost:{ts.port}/hook", 2, allow=["127.0.0.0/8"])
    assert (delivery.delivered, delivery.dead_lettered) == (2, 0)


async def test_allow_list_permits_global_addresses_of_listed_names() -> None:
    allow = AllowList("hooks.example.com, 192.168.1.0/24")
    allow.check("hooks.example.com", "93.184.216.34")
    allow.check("anything", "192.168.1.7")
    with pytest.raises(SsrfBlocked, match=r"169\.254\.169\.254"):
        allow.check("hooks.example.com", "169.254.169.254")
    with pytest.raises(SsrfBlocked):
        allow.check("other.example.com", "93.184.216.34")


async def test_http_sink_unit_in_a_flow_accounts_for_every_packet(tmp_path: Path) -> None:
    """Through the runtime: delivered + dead-lettered == packets, and the file has the rest."""
    from actorflow.testing import UnitRunner

    rng = random.Random(11)
    server = Scripted(lambda key, n: rng.choice(["ok", "ok", "503", "400", "cut"]))
    async with await serve(server.handle) as ts:
        sink = HttpSink(
            url=str(ts.make_url("/hook")),
            max_attempts=2,
            sleep=Recorder(),
            dead_letter=str(tmp_path / "dead.jsonl"),
        )
        runner = UnitRunner(sink)
        await runner.run({"in": [{"frame": i} for i in range(40)]})
    assert sink.delivered == len(server.accepted)
    assert sink.delivered + sink.dead_lettered == 40
    lines = (tmp_path / "dead.jsonl").read_text().splitlines() if sink.dead_lettered else []
    assert len(lines) == sink.dead_lettered
    keys = set(server.accepted) | {json.loads(line)["key"] for line in lines}
    assert len(keys) == 40  # each packet's key is distinct and accounted for once


class FailingResolver(StubResolver):
    """DNS that fails: a retryable transport error naming the host."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[dict[str, Any]]:
        raise OSError(f"cannot resolve {host}")


async def test_dns_failure_is_retried_then_dead_lettered() -> None:
    sleep = Recorder()
    delivery = await run_items(
        "http://hooks.invalid/hook", 2, resolver=FailingResolver(), max_attempts=3, sleep=sleep
    )
    assert (delivery.delivered, delivery.dead_lettered) == (0, 2)
    assert len(sleep.delays) == 4
    assert all("hooks.invalid" in r["error"] for r in delivery.dead_letters.records)


async def test_hundred_open_close_cycles_leave_nothing_open() -> None:
    """One ClientSession per open; every close releases it (ResourceWarning is an error)."""
    server = Scripted(lambda key, n: "ok")
    async with await serve(server.handle) as ts:
        for i in range(100):
            async with HttpDelivery(str(ts.make_url("/hook"))) as delivery:
                await delivery.submit(item(i))
            assert delivery._session is None
    gc.collect()
    assert len(server.accepted) == 100
