"""How fast a flow with a stuck network sink stops, and whether its ledger closes.

A source yields 8 items (then stays open) into a sink; once the sink has accepted
them all, ``stop()`` is timed. Scenarios (``stop_grace=0.2``, flow ``close_timeout=0.5``,
so the promised bound is 0.2 + 0.5 + 0.2 = 0.9 s):

* ``retry_after``: ``http_sink`` against 503 + ``Retry-After: 3600``; baseline ``idle``,
  a sink unit that does nothing;
* ``never_answers``: ``http_sink`` against a server that never answers, sink
  ``close_timeout=10``, so the runtime cuts ``close()`` short at 0.5 s; baseline
  ``close_hangs``, a unit whose ``close()`` never returns;
* ``ws_handshake_stalls``: ``websocket_sink`` to a peer that accepts TCP and never
  answers the upgrade; baseline ``close_hangs``;
* ``blocked_in_submit``: ``never_answers`` with ``max_in_flight=2``, so ``process``
  itself waits for a slot when ``stop()`` comes; baseline ``process_hangs``, a unit
  whose ``process()`` (from the third item on) and ``close()`` never return.

Prints one JSON object: per scenario the median and maximum ``stop()`` time over the
runs (interleaved), the median's ratio to its baseline's and the difference (the sink's
own cost), whether every run stayed within the bound, whether ``delivered +
dead_lettered == accepted`` held exactly, the states the flow was in when ``stop()``
returned (should be ``stopped``), and how many ``actorflow-*`` tasks were left after
``stop()`` (should be 0).

    python benchmarks/sink_stop.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import structlog
from aiohttp import web

import actorflow as af
from actorflow.flowunits.sinks.http import HttpSink
from actorflow.flowunits.sinks.websocket import WebSocketSink

GRACE, CLOSE = 0.2, 0.5
BOUND = GRACE + CLOSE + 0.2
ITEMS = 8


class Items(af.SourceUnit):
    out = af.Output("out")

    async def generate(self, ctx: af.Context) -> AsyncIterator[dict[str, int]]:
        for i in range(ITEMS):
            yield {"i": i}
        await anyio.sleep_forever()


class Stuck(af.FlowUnit):
    """A baseline sink: counts items; may hang in ``process`` (from the third item on)
    and in ``close``."""

    inp = af.Input("in")

    def __init__(self, *, process_hangs: bool = False, close_hangs: bool = False) -> None:
        self.accepted = 0
        self.process_hangs, self.close_hangs = process_hangs, close_hangs

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        if self.process_hangs and self.accepted >= 2:
            await anyio.sleep_forever()
        self.accepted += 1

    async def close(self, ctx: af.Context) -> None:
        if self.close_hangs:
            await anyio.sleep_forever()


async def http_server(answer: bool) -> tuple[str, Callable[[], Awaitable[None]]]:
    """503 + ``Retry-After: 3600`` at once, or (``answer=False``) only at cleanup."""
    release = asyncio.Event()
    if answer:
        release.set()

    async def handle(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=503, headers={"Retry-After": "3600"})

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()

    async def cleanup() -> None:
        release.set()
        await runner.cleanup()

    return f"http://127.0.0.1:{runner.addresses[0][1]}/hook", cleanup


async def stalling_server() -> Any:
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, writers, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws"


async def expected(sink: Any, count: int) -> None:
    with anyio.fail_after(10):
        while sink.accepted < count:
            await asyncio.sleep(0.001)  # a benchmark may poll; tests may not


async def one(scenario: str) -> dict[str, Any]:
    cleanup: list[Callable[[], Awaitable[Any]]] = []
    accept = 2 if scenario in ("process_hangs", "blocked_in_submit") else ITEMS
    if scenario in BASELINES:
        hangs = {"idle": {}, "close_hangs": {"close_hangs": True}}
        sink: Any = Stuck(**hangs.get(scenario, {"process_hangs": True, "close_hangs": True}))
    elif scenario == "ws_handshake_stalls":
        server, writers, url = await stalling_server()
        sink = WebSocketSink(url=url, close_timeout=10)

        async def close_stalling() -> None:
            for writer in writers:
                writer.close()
            server.close()
            await server.wait_closed()

        cleanup.append(close_stalling)
    else:
        url, close_server = await http_server(answer=scenario == "retry_after")
        cleanup.append(close_server)
        sink = HttpSink(url=url, close_timeout=10, max_in_flight=accept)
    src = Items()
    flow = af.Flow([src], [sink(src)], stop_grace=GRACE, close_timeout=CLOSE)
    await flow.run_async()
    await expected(sink, accept)
    started = time.perf_counter()
    await flow.stop()
    elapsed = time.perf_counter() - started
    left = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("actorflow-")]
    for step in cleanup:
        await step()
    exact = scenario in BASELINES or sink.delivered + sink.dead_lettered == sink.accepted
    return {
        "s": elapsed,
        "exact": exact,
        "left": len(left),
        "accepted": sink.accepted,
        "state": flow.state,
    }


BASELINES = ("idle", "close_hangs", "process_hangs")
SCENARIOS = {
    "retry_after": "idle",
    "never_answers": "close_hangs",
    "ws_handshake_stalls": "close_hangs",
    "blocked_in_submit": "process_hangs",
}


async def main(runs: int) -> dict[str, Any]:
    names = [*BASELINES, *SCENARIOS]
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in range(runs):  # interleaved, so that load changes hit every scenario alike
        for name in names:
            results[name].append(await one(name))
    medians = {name: statistics.median(r["s"] for r in rs) for name, rs in results.items()}
    out: dict[str, Any] = {"benchmark": "sink_stop", "runs": runs, "bound_s": round(BOUND, 3)}
    for name, rs in results.items():
        out[name] = {
            "median_s": round(medians[name], 3),
            "max_s": round(max(r["s"] for r in rs), 3),
            "within_bound": all(r["s"] <= BOUND for r in rs),
            "states": sorted({r["state"] for r in rs}),
            "tasks_left": sum(r["left"] for r in rs),
        }
        if name in SCENARIOS:
            base = SCENARIOS[name]
            out[name] |= {
                "baseline": base,
                "vs_baseline": round(medians[name] / medians[base], 2),
                "overhead_s": round(medians[name] - medians[base], 3),
                "ledger_exact": all(r["exact"] for r in rs),
                "accepted": sorted({r["accepted"] for r in rs}),
            }
    return out


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    print(json.dumps(asyncio.run(main(parser.parse_args().runs)), indent=2))
