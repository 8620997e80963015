"""Hostile clients against ``actorflow serve``: does a normal client still get answered?

The server (an echo graph behind ``actorflow.serve.start``, default ``Limits`` except a
``--header-timeout``) runs in its own process; the attackers and one normal client run
in this one. Each scenario first measures the normal client's ``POST /v1/infer``
latency with nobody attacking (the baseline, same run, same machine), then under
attack, and prints both as JSON:

* slowloris: ``--slowloris`` sockets (200) send a request head a byte every 0.1 s;
  reported: how many the server closed and the longest time from connect to close
  (to compare with the head timeout), and the normal client's latency meanwhile;
* half-open: the server runs under ``ulimit -n 1024`` (``RLIMIT_NOFILE``) and
  ``--half-open`` sockets (1,100) connect and send half a head; reported: how many of
  20 normal requests were answered, and their latency;
* slow WebSocket: one client streams 400 frames on ``/v1/stream`` and never reads its
  results (30 kB each); reported: the normal client's latency ratio, and whether the
  slow client was closed;
* multipart: one body of 100,000 tiny parts (about 5.6 MB); reported: the status and
  the time to the answer.

Run: ``python benchmarks/attack.py [--rounds 3]`` (medians over the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, ClassVar

HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4096


def serve(port: int, header_timeout: float, nofile: int | None) -> None:
    """The server process: an echo graph behind the guarded runner."""
    if nofile:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    from actorflow.runtime import Flow
    from actorflow.serve import Limits, build_app, start
    from actorflow.unit import Context, FlowUnit, Input, Output, Packet

    class Echo(FlowUnit):
        name: ClassVar[str] = "bench_attack_echo"
        x: ClassVar[Input[Any]] = Input("x", object)
        y: ClassVar[Output[Any]] = Output("y", object)

        async def process(self, ctx: Context, packet: Packet[Any]) -> None:
            await ctx.emit(self.y, packet.replace(packet.data))

    graph = {
        "name": "echo",
        "nodes": {
            "x": {"type": "input"},
            "echo": {"flowunit": "bench_attack_echo"},
            "y": {"type": "output"},
        },
        "edges": ["x -> echo:x", "echo:y -> y"],
    }
    limits = Limits(header_timeout=header_timeout)

    async def main() -> None:
        runner = await start(
            build_app(Flow(graph), limits=limits), "127.0.0.1", port, limits, handle_signals=True
        )
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(SystemExit):
        asyncio.run(main())


# -- the normal client ---------------------------------------------------------------------


async def latencies(port: int, n: int, gap: float = 0.0) -> list[float]:
    """``n`` sequential ``/v1/infer`` on one keep-alive connection, ``gap`` seconds
    apart: the seconds each answered one took."""
    import aiohttp

    out: list[float] = []
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for i in range(n):
            started = time.perf_counter()
            try:
                async with http.post(
                    f"http://127.0.0.1:{port}/v1/infer", json={"inputs": {"x": i}}
                ) as r:
                    await r.read()
                    if r.status == 200:
                        out.append(time.perf_counter() - started)
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(gap)
    return out


def p50_ms(values: list[float]) -> float | None:
    return round(1000 * statistics.median(values), 2) if values else None


# -- attacks ---------------------------------------------------------------------------------


async def slowloris(port: int, sockets: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    closed_after: list[float] = []

    async def one() -> None:
        started = loop.time()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for byte in HEAD:
                writer.write(bytes([byte]))
                await writer.drain()
                try:  # the next byte in 0.1 s, unless the server closes first
                    async with asyncio.timeout(0.1):
                        if not await reader.read(1):
                            break
                except TimeoutError:
                    continue
            closed_after.append(loop.time() - started)
        except ConnectionError:
            closed_after.append(loop.time() - started)
        finally:
            writer.close()

    tasks = [asyncio.ensure_future(one()) for _ in range(sockets)]
    during = await latencies(port, 50, gap=0.03)  # spread over most of the head timeout
    await asyncio.gather(*tasks)
    return {
        "sockets": sockets,
        "closed": len(closed_after),
        "max_close_s": round(max(closed_after), 2) if closed_after else None,
        "p50_ms_during": p50_ms(during),
        "answered_during": len(during),
    }


async def half_open(port: int, sockets: int) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, sockets + 256)), hard))
    conns = []
    for _ in range(sockets):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\n")
            conns.append(writer)
        except OSError:
            break
    during = await latencies(port, 20)
    for writer in conns:
        writer.close()
    return {"sockets": len(conns), "answered": f"{len(during)}/20", "p50_ms_during": p50_ms(during)}


def never_reading(port: int, frames: int, stop: threading.Event) -> bool:
    """Send ``frames`` WebSocket frames, never read; True when the server closed us
    (reading afterwards reaches end of stream rather than waiting for more)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(
        b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    payload = json.dumps({"inputs": {"x": "a" * 30_000}}).encode()
    frame = b"\x81" + bytes([0x80 | 126]) + len(payload).to_bytes(2, "big") + b"\0" * 4 + payload
    try:
        for _ in range(frames):
            sock.sendall(frame)
        stop.wait(30)
        sock.settimeout(10)
        while sock.recv(1 << 20):  # now drain: did the server close the connection?
            pass
        return True
    except ConnectionError:
        return True
    except TimeoutError:  # still open, nothing more to read: it was not closed
        return False
    finally:
        sock.close()


async def slow_websocket(port: int) -> dict[str, Any]:
    stop = threading.Event()
    attacker = asyncio.ensure_future(asyncio.to_thread(never_reading, port, 400, stop))
    await asyncio.sleep(1.0)  # let the attacker's results pile up before measuring
    during = await latencies(port, 50, gap=0.02)
    stop.set()
    closed = await attacker
    return {"p50_ms_during": p50_ms(during), "answered_during": len(during), "closed": closed}


async def multipart(port: int, parts: int) -> dict[str, Any]:
    import aiohttp

    boundary = "b0undary"
    one = f'--{boundary}\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n'.encode()
    body = one * parts + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        async with http.post(f"http://127.0.0.1:{port}/v1/infer", data=body, headers=headers) as r:
            status = r.status
            await r.read()
        elapsed = time.perf_counter() - started
    return {"parts": parts, "bytes": len(body), "status": status, "ms": round(1000 * elapsed, 1)}


# -- driver ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server(header_timeout: float, nofile: int | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", "--port", str(port)]
    cmd += ["--header-timeout", str(header_timeout)]
    if nofile:
        cmd += ["--nofile", str(nofile)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def scenario(name: str, args: argparse.Namespace, nofile: int | None = None) -> dict[str, Any]:
    proc, port = server(args.header_timeout, nofile)
    try:
        baseline = asyncio.run(latencies(port, 50))
        if name == "slowloris":
            result = asyncio.run(slowloris(port, args.slowloris))
        elif name == "half_open":
            result = asyncio.run(half_open(port, args.half_open))
        elif name == "slow_websocket":
            result = asyncio.run(slow_websocket(port))
        else:
            result = asyncio.run(multipart(port, args.parts))
        result["p50_ms_baseline"] = p50_ms(baseline)
        if result.get("p50_ms_during") and result["p50_ms_baseline"]:
            result["latency_ratio"] = round(result["p50_ms_during"] / result["p50_ms_baseline"], 2)
        return result
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        out[key] = statistics.median(values) if numeric else values[-1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--header-timeout", type=float, default=2.0)
    parser.add_argument("--slowloris", type=int, default=200)
    parser.add_argument("--half-open", type=int, default=1100)
    parser.add_argument("--parts", type=int, default=100_000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--nofile", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.header_timeout, args.nofile)
        return
    results = {
        "slowloris": median_of([scenario("slowloris", args) for _ in range(args.rounds)]),
        "half_open_ulimit_1024": median_of(
            [scenario("half_open", args, nofile=1024) for _ in range(args.rounds)]
        ),
        "slow_websocket": median_of([scenario("slow_websocket", args) for _ in range(args.rounds)]),
        "multipart": median_of([scenario("multipart", args) for _ in range(args.rounds)]),
    }
    doc = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "header_timeout_s": args.header_timeout,
        "rounds": args.rounds,
        "results": results,
    }
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
