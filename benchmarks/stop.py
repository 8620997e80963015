"""How fast a loaded flow stops: ``stop()`` and ``wait(timeout)`` under full load.

An endless source feeds a 1 ms async unit with 4 replicas into a sink; after 0.3 s of
full load the flow is stopped with ``stop()`` (grace 1 s), or ``wait(timeout=0.5)``
expires. Prints one JSON object: medians and maxima over the runs, whether every
ledger closed, and how many ``actorflow-*`` threads were left afterwards (should be 0).

    python benchmarks/stop.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from typing import Any

import structlog

import actorflow as af


@af.source(register=False)
async def forever() -> Any:
    i = 0
    while True:
        yield i
        i += 1


@af.flowunit(register=False)
async def work(x: int) -> int:
    await asyncio.sleep(0.001)
    return x


class Sink(af.FlowUnit):
    inp = af.Input("in")

    async def process(self, ctx: af.Context, packet: af.Packet[Any]) -> None:
        pass


async def one(mode: str, grace: float) -> tuple[float, bool, list[str]]:
    src = forever()
    flow = af.Flow([src], [Sink()(work().options(replicas=4)(src))], stop_grace=grace)
    await flow.run_async()
    await asyncio.sleep(0.3)  # full load before stopping
    started = time.perf_counter()
    if mode == "stop":
        await flow.stop()
    else:
        assert await flow.wait(timeout=0.5) is af.Status.TIMEOUT
    elapsed = time.perf_counter() - started
    left = [t.name for t in threading.enumerate() if t.name.startswith("actorflow-")]
    return elapsed, flow.statistics().balanced, left


async def main(runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": "stop", "runs": runs, "grace_s": 1.0}
    for mode in ("stop", "wait_timeout_0.5"):
        results = [await one(mode.split("_")[0], 1.0) for _ in range(runs)]
        out[mode] = {
            "median_s": round(statistics.median(r[0] for r in results), 3),
            "max_s": round(max(r[0] for r in results), 3),
            "ledgers_balanced": all(r[1] for r in results),
            "threads_left": sum(len(r[2]) for r in results),
        }
    return out


if __name__ == "__main__":
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    print(json.dumps(asyncio.run(main(parser.parse_args().runs)), indent=2))
