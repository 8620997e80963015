"""Wrong-typed requests among good ones against the real ``actorflow serve``.

Starts ``actorflow serve graphs/modelbox_hello.toml`` on 127.0.0.1 (a process of its
own, ended by its id), then sends ``--requests`` good and as many bad requests
(``{"inputs": {"input": "x"}}`` and other wrong types), shuffled, from ``--clients``
concurrent clients. Prints JSON: how many good answers were right, how many bad ones
were a 4xx naming the port, whether the flow was still ready and healthy at the end,
and the request rate with and without the bad ones mixed in (same run).

    python benchmarks/bad_requests.py [--requests 1000] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
BAD: list[Any] = ["x", [1.0], {"a": 1}, None, "0.5"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_ready(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(600):
        try:
            async with http.get(f"{base}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise SystemExit("the server did not become ready")


async def fire(
    http: aiohttp.ClientSession, base: str, items: list[Any], clients: int
) -> tuple[dict[str, int], float]:
    counts = {"good_ok": 0, "good_wrong": 0, "bad_4xx_naming_port": 0, "bad_other": 0}
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for value in items:
        queue.put_nowait(value)

    async def client() -> None:
        while not queue.empty():
            value = queue.get_nowait()
            async with http.post(f"{base}/v1/infer", json={"inputs": {"input": value}}) as r:
                body = await r.json()
            if isinstance(value, float):
                right = r.status == 200 and body["outputs"]["output"] == [value * 0.5]
                counts["good_ok" if right else "good_wrong"] += 1
            elif 400 <= r.status < 500 and body.get("field") == "input":
                counts["bad_4xx_naming_port"] += 1
            else:
                counts["bad_other"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return counts, time.perf_counter() - started


def start_server(port: int) -> subprocess.Popen[bytes]:
    actorflow = Path(sys.executable).with_name("actorflow")
    return subprocess.Popen(
        [str(actorflow), "serve", "graphs/modelbox_hello.toml", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def main(requests: int, clients: int) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port)
    try:
        async with aiohttp.ClientSession() as http:
            await wait_ready(http, base)
            rng = random.Random(1)
            good = [float(i) for i in range(requests)]
            mixed = good + [rng.choice(BAD) for _ in range(requests)]
            rng.shuffle(mixed)
            _, good_only_s = await fire(http, base, good, clients)
            counts, mixed_s = await fire(http, base, mixed, clients)
            async with http.get(f"{base}/readyz") as r:
                ready = r.status
            async with http.get(f"{base}/healthz") as r:
                healthy = r.status
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "requests_good": requests,
        "requests_bad": requests,
        **counts,
        "readyz_after": ready,
        "healthz_after": healthy,
        "good_only_req_per_s": round(requests / good_only_s, 1),
        "mixed_req_per_s": round(2 * requests / mixed_s, 1),
        "server_exit_code": server.returncode,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.requests, args.clients)), indent=2))
